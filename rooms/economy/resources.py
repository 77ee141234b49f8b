"""Resources, regional scarcity and fields that deplete and regrow in closed form (issue 16).

**Resources** (``RESOURCES``): ferrite and silicates (common everywhere), ice, platinum,
helium-3 (fusion fuel) and exotics (rare). **Regions** by a star's distance from Sol
(``region_of``): the core (under ``CORE_PC`` parsecs), the mid rim (under ``MID_PC``) and the
outer rim (the rest of the 20-parsec catalogue). Scarcity is regional (``ABUNDANCE``): the core,
mined for centuries, is poor in platinum and helium-3; the outer rim is where helium-3,
platinum and exotics are found; so prices differ by region and hauling pays.

A **field** (an asteroid field or a planet's deposits) holds up to ``capacity`` units of each
of its resources, deterministic from the system id and the field's index (``field_deposits``:
every pilot finds the same field). Mining takes from ``amount``; a field regrows at
``REGROWTH_PER_HOUR`` of its capacity per hour up to its capacity, in closed form
(``Deposit.amount_at``): a room asleep for a week knows the field's amount without ticking.
"""

from __future__ import annotations

import dataclasses
import hashlib

RESOURCES = ("ferrite", "silicates", "ice", "platinum", "helium3", "exotics")
"""The resource kinds, in a fixed order."""
CORE, MID, OUTER = "core", "mid", "outer"
REGIONS = (CORE, MID, OUTER)
CORE_PC = 5.0
"""Parsecs from Sol under which a star is in the core."""
MID_PC = 12.0
"""Parsecs from Sol under which a star (not in the core) is in the mid rim."""
ABUNDANCE = {
    CORE: {"ferrite": 1.0, "silicates": 1.0, "ice": 0.6, "platinum": 0.1, "helium3": 0.05, "exotics": 0.0},
    MID: {"ferrite": 0.8, "silicates": 0.9, "ice": 1.0, "platinum": 0.4, "helium3": 0.3, "exotics": 0.02},
    OUTER: {"ferrite": 0.6, "silicates": 0.7, "ice": 1.0, "platinum": 0.8, "helium3": 1.0, "exotics": 0.1},
}
"""Region -> resource -> mean share of a field's base capacity (0: never found there)."""
BASE_CAPACITY = 1000
"""Units of a resource in a field of abundance 1.0 (before the field's own variation)."""
REGROWTH_PER_HOUR = 0.05
"""A depleted field regrows this share of its capacity per hour (so 20 h from empty to full)."""


def region_of(parsecs: float) -> str:
    """The region of a star ``parsecs`` from Sol. Raises ``ValueError`` for a negative distance."""
    if parsecs < 0:
        raise ValueError("a distance is never negative")
    return CORE if parsecs < CORE_PC else MID if parsecs < MID_PC else OUTER


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (SHA-256: the same on every node)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def field_deposits(system_id: str, field: int, parsecs: float) -> dict[str, int]:
    """Capacity (units) of each resource field ``field`` of system ``system_id`` holds, for a
    star ``parsecs`` from Sol: ``BASE_CAPACITY`` x the region's abundance x a factor in
    [0.5, 1.5) of the field's own; a resource is absent (not in the dict) when its share rolls
    under the region's chance of it (abundance below 1 is also rarity)."""
    abundance = ABUNDANCE[region_of(parsecs)]
    out = {}
    for name in RESOURCES:
        share = abundance[name]
        if share <= 0 or _unit(system_id, field, name, "present") >= min(1.0, share * 1.5):
            continue
        out[name] = max(1, int(BASE_CAPACITY * share * (0.5 + _unit(system_id, field, name, "size"))))
    return out


@dataclasses.dataclass(frozen=True)
class Deposit:
    """One resource of one field: ``capacity`` units, ``amount`` units at clock time ``t0``
    (seconds). Immutable: ``mine`` returns the new state."""

    capacity: int
    amount: float
    t0: float

    def amount_at(self, now: float) -> float:
        """Units at ``now`` (closed form: linear regrowth, capped at ``capacity``)."""
        grown = self.capacity * REGROWTH_PER_HOUR * max(0.0, now - self.t0) / 3600.0
        return min(float(self.capacity), self.amount + grown)

    def mine(self, wanted: int, now: float) -> tuple[int, "Deposit"]:
        """Take up to ``wanted`` whole units at ``now``: ``(units taken, the new deposit)``.
        Raises ``ValueError`` for a negative ``wanted``."""
        if wanted < 0:
            raise ValueError("cannot mine a negative quantity")
        available = self.amount_at(now)
        taken = min(int(wanted), int(available))
        return taken, Deposit(self.capacity, available - taken, now)

"""Pirate bounties and pirate loot (issue 16; docs/economy.md §4), pure and deterministic.

- ``BOUNTY``: credits a pirate's destruction pays (by its class, ``pirate_class``) to the
  player whose ship dealt the killing blow.
- ``pirate_loot(system_id, pirate_id, kill, region)``: the goods a destroyed pirate leaves in
  its wreck: 1-3 different goods, 2-10 units each, drawn among the goods found in the region
  (``resources.ABUNDANCE``, share above 0), from a SHA-256 seed of the system, the pirate and
  the kill count, so every node computes the same wreck for the same kill.
"""

from __future__ import annotations

import hashlib
import random

from .resources import ABUNDANCE, RESOURCES

BOUNTY = {"raider": 100}
"""Credits paid for a pirate of each class."""
DEFAULT_CLASS = "raider"
"""The class of a pirate ship that names none: every pirate today (one stats set,
``rooms.system.combat.PIRATE_STATS``)."""
LOOT_KINDS = (1, 3)
"""A pirate's wreck holds between this many different goods (inclusive)."""
LOOT_UNITS = (2, 10)
"""... and between this many units of each (inclusive)."""


def pirate_class(ship: dict) -> str:
    """The bounty class of a pirate ship dict: its ``class`` if it is one of ``BOUNTY``, else
    ``DEFAULT_CLASS``."""
    cls = ship.get("class")
    return cls if cls in BOUNTY else DEFAULT_CLASS


def bounty_for(ship: dict) -> int:
    """Credits the destruction of pirate ship dict ``ship`` pays (``BOUNTY`` of its class)."""
    return BOUNTY[pirate_class(ship)]


def pirate_loot(system_id: str, pirate_id: int, kill: int, region: str) -> dict[str, int]:
    """``{good: units}`` in the wreck of pirate ``pirate_id``'s ``kill``-th destruction (1, 2,
    ...) in system ``system_id`` of ``region`` (``resources.REGIONS``). Raises ``KeyError``
    for an unknown region."""
    found = [name for name in RESOURCES if ABUNDANCE[region][name] > 0]
    digest = hashlib.sha256(f"starhold-loot:{system_id}:{pirate_id}:{kill}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    kinds = rng.sample(found, min(len(found), rng.randint(*LOOT_KINDS)))
    return {name: rng.randint(*LOOT_UNITS) for name in RESOURCES if name in kinds}

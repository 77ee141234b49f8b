"""One star system of the galaxy: where it is, what it looks like, what it is called."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StarSystem:
    """One star system of the galaxy map.

    ``id``: ``"sol"``, ``"hip-<HIP>"`` or ``"gj-<n>"``. ``position``: (x, y, z) in parsecs from
    Sol on ICRS equatorial axes; ``distance``: its length, parsecs. ``bv``: B-V colour index
    (None if unknown); ``color``: ``#rrggbb`` from :func:`bv_to_color`; ``magnitude``:
    Hipparcos Hp magnitude (None for Sol and the non-Hipparcos stars).
    """

    id: str
    name: str
    hip: int | None
    position: tuple[float, float, float]
    distance: float
    bv: float | None
    color: str
    magnitude: float | None
    aliases: tuple[str, ...] = ()
    """Other names that resolve to this system (``"Alpha Centauri"``, ``"Rigil Kentaurus"``,
    ``"HIP 71683"``...)."""

    def to_json(self) -> dict:
        """The system's ``/api/galaxy`` entry (docs/protocol.md §1) without ``lanes``/``players``."""
        return {
            "id": self.id,
            "name": self.name,
            "hip": self.hip,
            "position": list(self.position),
            "distance": self.distance,
            "color": self.color,
            "bv": self.bv,
            "magnitude": self.magnitude,
            "aliases": list(self.aliases),
        }


def _dist(a: StarSystem, b: StarSystem) -> float:
    return math.dist(a.position, b.position)


# --- colour -------------------------------------------------------------------------------

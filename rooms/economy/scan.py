"""What a scan reveals, and the Knowledge Graph fragments it yields (issue 16; seed 000).

Everything here is a pure function of the galaxy's data (the star catalogue and the
procedural planets of ``rooms.galaxy.planets``), so every pilot who scans the same world
finds the same thing, on any node:

- ``spectral_class(bv)``: the star's class from its B-V colour index (O B A F G K M; the
  usual main-sequence boundaries of the Johnson B-V scale: -0.30, -0.02, 0.30, 0.58, 0.81,
  1.40);
- ``planet_kind(planet)``: hot rocky, temperate, gas giant or ice giant by its orbit (the
  zones ``rooms.galaxy.planets`` draws planets from; Sol's planets by name);
- ``scan_planet(system, planet)``: ``{"kind", "resources", "lore"}``: the planet's deposits
  (``rooms.economy.resources.field_deposits``, field ``PLANET_FIELD + planet id``) and a line
  of lore picked deterministically;
- ``fragments(system, planet)``: typed facts ``Fragment(subject, predicate, object)`` that
  link things: the star's class, the planet's kind, each resource found there. A fragment's
  ``id`` is the same for every discoverer (the galaxy records its first one).
"""

from __future__ import annotations

import dataclasses
import hashlib

from ..galaxy.planets import Planet
from ..galaxy.star import StarSystem
from .resources import field_deposits, region_of

PLANET_FIELD = 100
"""Planets' deposits are fields ``PLANET_FIELD + planet id`` (asteroid fields use 0..99)."""
_BV_CLASSES = ((-0.30, "O"), (-0.02, "B"), (0.30, "A"), (0.58, "F"), (0.81, "G"), (1.40, "K"))
_SOL_KINDS = {"Mercury": "hot rocky", "Venus": "hot rocky", "Earth": "temperate", "Mars": "temperate",
              "Jupiter": "gas giant", "Saturn": "gas giant", "Uranus": "ice giant", "Neptune": "ice giant"}
_ZONE_KINDS = ((260.0, "hot rocky"), (450.0, "temperate"), (760.0, "gas giant"))
_LORE = (
    "Survey beacons from the first expansion still ping from orbit, unanswered.",
    "Long-range scans show the scars of an impact older than the star's planets.",
    "Prospectors' claim markers litter the surface; none were ever renewed.",
    "An automated refinery sleeps on the night side, its reactor cold.",
    "The magnetosphere sings on the scanner's low bands, a steady, patient tone.",
    "Charts call it uncharted. Someone has been here and erased the records.",
    "Wreckage of a courier drifts in a slow orbit, its cargo bay open.",
    "The crust is veined with something the scanner cannot name.",
)


def spectral_class(bv: float | None) -> str | None:
    """The spectral class (``"O"`` .. ``"M"``) for the B-V index ``bv``, or None if unknown."""
    if bv is None:
        return None
    return next((cls for bound, cls in _BV_CLASSES if bv < bound), "M")


def planet_kind(planet: Planet) -> str:
    """``"hot rocky"``, ``"temperate"``, ``"gas giant"`` or ``"ice giant"``."""
    if planet.name in _SOL_KINDS:
        return _SOL_KINDS[planet.name]
    return next((kind for bound, kind in _ZONE_KINDS if planet.orbit <= bound), "ice giant")


def _pick(options: tuple, *parts: object):
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def scan_planet(system: StarSystem, planet: Planet) -> dict:
    """What a scan of ``planet`` reveals: ``{"kind", "region", "resources": {name: units},
    "lore"}``."""
    return {"kind": planet_kind(planet), "region": region_of(system.distance),
            "resources": field_deposits(system.id, PLANET_FIELD + planet.id, system.distance),
            "lore": _pick(_LORE, system.id, planet.id, "lore")}


@dataclasses.dataclass(frozen=True)
class Fragment:
    """A typed fact of the Knowledge Graph: ``subject`` -``predicate``-> ``object``, each a
    ``"type:id"`` string (``"star:hip-71683"``, ``"planet:hip-71683/2"``, ``"resource:ice"``)."""

    subject: str
    predicate: str
    object: str

    @property
    def id(self) -> str:
        """The fragment's id, the same for every discoverer."""
        return f"{self.subject}|{self.predicate}|{self.object}"


def fragments(system: StarSystem, planet: Planet) -> list[Fragment]:
    """The fragments a scan of ``planet`` yields, in a fixed order."""
    star, world = f"star:{system.id}", f"planet:{system.id}/{planet.id}"
    out = [Fragment(world, "orbits", star), Fragment(world, "is", f"kind:{planet_kind(planet)}")]
    cls = spectral_class(system.bv)
    if cls is not None:
        out.append(Fragment(star, "has_class", f"class:{cls}"))
    out += [Fragment(world, "holds", f"resource:{name}") for name in scan_planet(system, planet)["resources"]]
    return out

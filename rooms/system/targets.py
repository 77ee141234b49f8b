"""What a system's economy orders aim at: planets, asteroid fields and anomalies (issue 16).

A target is a string (docs/protocol.md §3 "Economy"):

- ``planet:<id>``: a planet of the welcome's ``system.planets`` (ids 1..n). It moves on its
  orbit (``Planet.position`` at the game time); distances are to its surface (centre
  distance minus its radius, at least 0). Its deposits are field ``PLANET_FIELD + id``.
- ``field:<index>``: an asteroid field, the ``index``-th cluster of rocks of
  ``navigation.asteroid_clusters`` (0-based; the welcome lists them in ``system.fields``).
  Distances are to the nearest rock's edge (at least 0). Its deposits are field ``index``.
- ``anomaly:<index>``: an anomaly of ``rooms.economy.anomalies`` (at most one, index 0);
  distances are to its point. Scannable, not mineable.

``Targets`` is sans-I/O and pure: built once per activation from the system id, the welcome
``system`` dict and the star (``StarSystem`` or None for an id the catalogue lacks: the system
then counts as ``parsecs`` 0 from Sol, the core, with no spectral class).
"""

from __future__ import annotations

import math
import re

from ..economy.anomalies import anomalies, anomaly_fragments, scan_anomaly
from ..economy.resources import field_deposits, region_of
from ..economy.scan import PLANET_FIELD, fragments as planet_fragments, scan_planet
from ..economy.survey import field_fragments, scan_field
from ..galaxy.planets import Planet
from ..galaxy.star import StarSystem
from ..ships.room import GAME_EPOCH
from .navigation import asteroid_clusters

PLANET, FIELD, ANOMALY = "planet", "field", "anomaly"
_TARGET = re.compile(r"^(planet|field|anomaly):(0|[1-9][0-9]{0,8})$")


class Targets:
    """The scan and mining targets of one system (module docstring)."""

    def __init__(self, system_id: str, system: dict, star: StarSystem | None):
        self.system_id = system_id
        self.parsecs = float(star.distance) if star is not None else 0.0
        self.region = region_of(self.parsecs)
        self.star = star or StarSystem(system_id, str(system.get("name", system_id)), None, (0.0, 0.0, 0.0), 0.0,
                                       None, str(system.get("color", "#ffffff")), None)
        self.clusters = asteroid_clusters(system_id)
        self.planets = {int(p["id"]): Planet(int(p["id"]), str(p["name"]), float(p["orbit"]), float(p["period"]),
                                             float(p["phase"]), float(p["radius"]), str(p.get("color", "")))
                        for p in system.get("planets") or ()}
        self.anomalies = anomalies(system_id)

    # ---- names -------------------------------------------------------------------------------
    def parse(self, target: str) -> tuple[str, int] | None:
        """``(kind, index)`` of an existing target, or None (malformed or no such thing)."""
        match = _TARGET.match(target or "")
        if match is None:
            return None
        kind, index = match.group(1), int(match.group(2))
        exists = {PLANET: index in self.planets, FIELD: index < len(self.clusters),
                  ANOMALY: index < len(self.anomalies)}[kind]
        return (kind, index) if exists else None

    @staticmethod
    def name(kind: str, index: int) -> str:
        """The target string of ``(kind, index)``."""
        return f"{kind}:{index}"

    # ---- geometry ----------------------------------------------------------------------------
    def distance(self, kind: str, index: int, x: float, y: float, now: float) -> float:
        """World units from ``(x, y)`` to the target at clock time ``now`` (module docstring)."""
        if kind == PLANET:
            planet = self.planets[index]
            px, py = planet.position(now - GAME_EPOCH)
            return max(0.0, math.hypot(x - px, y - py) - planet.radius)
        if kind == FIELD:
            return max(0.0, min(math.hypot(x - d["x"], y - d["y"]) - d["radius"] for d in self.clusters[index]))
        anomaly = self.anomalies[index]
        return math.hypot(x - anomaly.x, y - anomaly.y)

    def fields_json(self) -> list[dict]:
        """The welcome's ``system.fields``: per asteroid field ``{"index", "x", "y", "radius"}``:
        the mean of its rocks' centres and the radius of the disc around it that holds them all
        (world units, rounded to 0.1)."""
        out = []
        for index, discs in enumerate(self.clusters):
            cx = sum(d["x"] for d in discs) / len(discs)
            cy = sum(d["y"] for d in discs) / len(discs)
            radius = max(math.hypot(d["x"] - cx, d["y"] - cy) + d["radius"] for d in discs)
            out.append({"index": index, "x": round(cx, 1), "y": round(cy, 1), "radius": round(radius, 1)})
        return out

    def anomalies_json(self) -> list[dict]:
        """The welcome's ``system.anomalies``: ``[{"index", "x", "y"}]``."""
        return [a.to_json() for a in self.anomalies]

    # ---- scans and deposits --------------------------------------------------------------------
    def scan(self, kind: str, index: int) -> tuple[dict, list[list[str]]]:
        """``(result, fragments)`` of a scan of an existing target: ``result`` is ``{"kind",
        "region", "resources": {name: capacity units}, "lore"}`` (anomalies add ``"origin"``),
        ``fragments`` ``[[subject, predicate, object], ...]``. Pure: the same for every pilot."""
        if kind == PLANET:
            planet = self.planets[index]
            result, facts = scan_planet(self.star, planet), planet_fragments(self.star, planet)
        elif kind == FIELD:
            result = scan_field(self.system_id, index, self.parsecs)
            facts = field_fragments(self.system_id, index, self.parsecs)
        else:
            anomaly = self.anomalies[index]
            result, facts = scan_anomaly(anomaly, self.parsecs), anomaly_fragments(self.system_id, anomaly)
        return result, [[f.subject, f.predicate, f.object] for f in facts]

    @staticmethod
    def field_of(kind: str, index: int) -> int | None:
        """The deposits' field number of a mineable target (``field_deposits``), None for an
        anomaly."""
        return index if kind == FIELD else PLANET_FIELD + index if kind == PLANET else None

    def capacities(self, field: int) -> dict[str, int]:
        """``{resource: capacity units}`` of deposits field ``field``."""
        return field_deposits(self.system_id, field, self.parsecs)

    def mineable(self) -> list[tuple[str, int]]:
        """Every mineable target ``(kind, index)``: the asteroid fields, then the planets."""
        return [(FIELD, i) for i in range(len(self.clusters))] + [(PLANET, i) for i in sorted(self.planets)]

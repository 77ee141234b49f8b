"""Anomalies: rare scannable oddities of a system (issue 16), pure and deterministic.

About one system in three (``ANOMALY_CHANCE``) has one anomaly, index 0: a point of the
system's plane ``ANOMALY_ORBIT`` world units from the star, a ``kind`` (``KINDS``) and an
``origin`` (``ORIGINS``), all from a SHA-256 seed of the system id, so every pilot and node
finds the same anomaly. Scanning it (``scan_anomaly``) reveals its kind, origin and a line of
lore, and yields the Knowledge Graph fragments of ``anomaly_fragments``: where it is, what it
is and where it came from (its **origin fragment**).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random

from .resources import region_of
from .scan import Fragment

ANOMALY_CHANCE = 1.0 / 3.0
"""Share of the systems that have an anomaly."""
ANOMALY_ORBIT = (300.0, 900.0)
"""An anomaly lies between these distances from the star, world units."""
KINDS = ("derelict beacon", "gravitational lens", "ion storm remnant", "silent relay", "dark matter knot")
ORIGINS = ("precursor", "first expansion", "stellar", "unknown")
_LORE = {
    "derelict beacon": "A beacon repeats a call sign no registry knows, on a frequency no one uses.",
    "gravitational lens": "Starlight bends around nothing at all; the scanner finds no mass to blame.",
    "ion storm remnant": "A knot of charged gas still crackles, long after the storm that made it.",
    "silent relay": "A relay station drifts with its dish aimed at a star that is not there.",
    "dark matter knot": "The instruments disagree about how much is here, and where it ends.",
}


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One anomaly: ``index`` in its system, position ``(x, y)`` (world units, rounded to
    0.1), ``kind`` (one of ``KINDS``), ``origin`` (one of ``ORIGINS``)."""

    index: int
    x: float
    y: float
    kind: str
    origin: str

    def to_json(self) -> dict:
        """The welcome's ``system.anomalies`` entry: ``{"index", "x", "y"}`` (the kind and the
        origin are revealed by a scan)."""
        return {"index": self.index, "x": self.x, "y": self.y}


def anomalies(system_id: str) -> list[Anomaly]:
    """The anomalies of system ``system_id``: ``[]`` or one ``Anomaly`` (index 0)."""
    digest = hashlib.sha256(f"starhold-anomaly:{system_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    if rng.random() >= ANOMALY_CHANCE:
        return []
    angle, orbit = rng.uniform(0.0, 2.0 * math.pi), rng.uniform(*ANOMALY_ORBIT)
    return [Anomaly(0, round(orbit * math.cos(angle), 1), round(orbit * math.sin(angle), 1),
                    rng.choice(KINDS), rng.choice(ORIGINS))]


def scan_anomaly(anomaly: Anomaly, parsecs: float) -> dict:
    """What a scan of ``anomaly`` in a system ``parsecs`` from Sol reveals: ``{"kind",
    "region", "resources": {}, "lore", "origin"}``. Raises ``ValueError`` for a negative
    distance."""
    return {"kind": anomaly.kind, "region": region_of(parsecs), "resources": {}, "lore": _LORE[anomaly.kind],
            "origin": anomaly.origin}


def anomaly_fragments(system_id: str, anomaly: Anomaly) -> list[Fragment]:
    """The fragments a scan of ``anomaly`` yields, in a fixed order: it is in the system's
    star, it is of its kind, it originates from its origin."""
    node = f"anomaly:{system_id}/{anomaly.index}"
    return [Fragment(node, "in", f"star:{system_id}"), Fragment(node, "is", f"kind:{anomaly.kind}"),
            Fragment(node, "originates_from", f"origin:{anomaly.origin}")]

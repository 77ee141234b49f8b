"""What a scan of an asteroid field reveals, and its Knowledge Graph fragments (issue 16).

The asteroid-field twin of ``rooms.economy.scan.scan_planet``: a pure function of the system
id, the field's index (its cluster of rocks, ``rooms.system.navigation.asteroid_clusters``;
fields 0..99, planets use ``scan.PLANET_FIELD`` + their id) and the star's distance from Sol,
so every pilot finds the same field.
"""

from __future__ import annotations

import hashlib

from .resources import field_deposits, region_of
from .scan import Fragment

FIELD_KIND = "asteroid field"
_LORE = (
    "Tumbling rocks, pitted by a billion years of dust.",
    "Old drill scars run along the largest rocks; the claims were abandoned.",
    "The rocks ring faintly on the scanner, dense with metal.",
    "Ice glitters between the stones where the star's light reaches.",
    "A beacon from a forgotten survey still marks the field's edge.",
)


def scan_field(system_id: str, index: int, parsecs: float) -> dict:
    """What a scan of asteroid field ``index`` of system ``system_id`` (``parsecs`` from Sol)
    reveals: ``{"kind": "asteroid field", "region", "resources": {name: capacity units},
    "lore"}``. Raises ``ValueError`` for a negative distance."""
    digest = hashlib.sha256(f"{system_id}/{index}/field-lore".encode()).digest()
    return {"kind": FIELD_KIND, "region": region_of(parsecs),
            "resources": field_deposits(system_id, index, parsecs),
            "lore": _LORE[int.from_bytes(digest[:4], "big") % len(_LORE)]}


def field_fragments(system_id: str, index: int, parsecs: float) -> list[Fragment]:
    """The fragments a scan of asteroid field ``index`` yields, in a fixed order: the field is
    in the system's star, and holds each resource it has."""
    node = f"field:{system_id}/{index}"
    out = [Fragment(node, "in", f"star:{system_id}")]
    out += [Fragment(node, "holds", f"resource:{name}") for name in field_deposits(system_id, index, parsecs)]
    return out

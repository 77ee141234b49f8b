"""A system room's params from the galaxy: its star and planets, its lanes, and the star's
catalogue entry.

The gateway passes them when it creates the room (``system/http.py``), so the room actor
never loads the catalogue (``star_from_params``): parsing it costs ~1.7 s and ~30 MB in every
process that does. A room woken by another room (a pilot posting ``expect`` before anyone
joined), or whose stored params predate the ``star`` entry, builds them here from the
catalogue instead (``load_galaxy`` is cached per process).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..galaxy.planets import system_info
from ..galaxy.star import StarSystem

if TYPE_CHECKING:
    from ..galaxy.catalogue import Galaxy


def lanes_of(galaxy: Galaxy, system_id: str) -> list[dict]:
    """``[{"id", "name", "parsecs", "dx", "dy"}]``: the lanes of ``system_id`` with the other
    star's offset on the map (x, y, parsecs). ``KeyError`` for an unknown id."""
    here = galaxy.get(system_id)
    out = []
    for other_id in galaxy.lanes(system_id):
        other = galaxy.get(other_id)
        out.append({"id": other.id, "name": other.name, "parsecs": math.dist(here.position, other.position),
                    "dx": other.position[0] - here.position[0], "dy": other.position[1] - here.position[1]})
    return out


def system_params(system_id: str, galaxy: Galaxy | None = None) -> dict | None:
    """``{"system": system_info, "lanes": lanes_of, "star": StarSystem.to_json()}`` for a
    system of the galaxy (the cached ``load_galaxy()`` unless ``galaxy`` is given), or None for
    an id that is not one. Plain JSON/msgpack-serialisable data."""
    if galaxy is None:
        from ..galaxy.catalogue import load_galaxy

        galaxy = load_galaxy()
    if system_id not in galaxy:
        return None
    star = galaxy.get(system_id)
    return {"system": system_info(star), "lanes": lanes_of(galaxy, system_id), "star": star.to_json()}


def star_from_params(params: dict) -> StarSystem | None:
    """The ``StarSystem`` of ``params["star"]`` (a ``StarSystem.to_json()`` dict, as
    ``system_params`` gives), or None when the params have no ``star`` entry. Raises
    ``KeyError``/``TypeError``/``ValueError`` for a malformed entry."""
    entry = params.get("star")
    if entry is None:
        return None
    return StarSystem(str(entry["id"]), str(entry["name"]), entry["hip"], tuple(float(v) for v in entry["position"]),
                      float(entry["distance"]), entry["bv"], str(entry["color"]), entry["magnitude"],
                      tuple(entry.get("aliases") or ()))


def star_of(system_id: str, galaxy: Galaxy | None = None) -> StarSystem | None:
    """The catalogue's star of ``system_id`` (the cached ``load_galaxy()`` unless ``galaxy`` is
    given), or None for an id that is not one (a test's system): the economy then counts the
    system as the core, 0 pc from Sol."""
    if galaxy is None:
        from ..galaxy.catalogue import load_galaxy

        galaxy = load_galaxy()
    return galaxy.get(system_id) if system_id in galaxy else None

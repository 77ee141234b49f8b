"""A system room's params from the galaxy: its star and planets, and its lanes.

The gateway passes them when it creates the room (``system/http.py``); a room woken by
another room (a pilot posting ``expect`` before anyone joined) builds them here from the
catalogue instead (``load_galaxy`` is cached per process; ~1 s the first time).
"""

from __future__ import annotations

import math

from ..galaxy.catalogue import Galaxy, load_galaxy
from ..galaxy.planets import system_info
from ..galaxy.star import StarSystem


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
    """``{"system": system_info, "lanes": lanes_of}`` for a system of the galaxy, or None for
    an id that is not one."""
    galaxy = galaxy or load_galaxy()
    if system_id not in galaxy:
        return None
    return {"system": system_info(galaxy.get(system_id)), "lanes": lanes_of(galaxy, system_id)}


def star_of(system_id: str, galaxy: Galaxy | None = None) -> StarSystem | None:
    """The catalogue's star of ``system_id``, or None for an id that is not one (a test's
    system): the economy then counts the system as the core, 0 pc from Sol."""
    galaxy = galaxy or load_galaxy()
    return galaxy.get(system_id) if system_id in galaxy else None

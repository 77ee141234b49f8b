"""Travel between systems: jump points, transit times, the station, hit point regeneration.

The rules (docs/protocol.md §3 "Travel"):

- **Jump points.** A system has one jump point per lane, on the circle of radius
  ``JUMP_RADIUS`` world units around the star, in the direction of the other star on the
  galactic map (its x, y in parsecs, the direction of ``/api/galaxy``'s positions projected
  on the x-y plane; straight "up" when the two stars differ only in z). A ship jumps when it
  is within ``JUMP_RANGE`` of the point and not destroyed; a ``jump`` order flies it there
  around the obstacles first. It arrives at the target system's jump point toward the
  system it left (the matching point), at rest.
- **Transit.** ``transit_seconds(parsecs) = max(TRANSIT_MIN, TRANSIT_PER_PARSEC * parsecs)``
  (a 1.3 pc lane: 4 s; Sol to Alpha Centauri, 1.35 pc: 4 s; a 3 pc lane: 6 s). In transit
  the ship is in neither system.
- **Station.** Each system has one station at ``station_point(system_id, star_radius)``, on a
  circle ``STATION_GAP`` world units outside the star's exclusion zone, at an angle drawn
  from the system id. A ship within ``STATION_RADIUS`` of it is repaired to full hit points
  at once.
- **Regeneration.** Out of combat for ``REGEN_DELAY`` seconds, a ship regains
  ``REGEN_RATE`` hit points per second (whole points, up to its maximum).
"""

from __future__ import annotations

import math
import random

JUMP_RADIUS = 850.0
"""Distance of the jump points from the star, world units."""
JUMP_RANGE = 40.0
"""A ship this close to a jump point (world units) may jump through it."""
TRANSIT_PER_PARSEC = 2.0
"""Seconds in transit per parsec of lane."""
TRANSIT_MIN = 4.0
"""Shortest transit, seconds (hides the target room's wake)."""
STATION_GAP = 90.0
"""World units between the star's exclusion zone and the station."""
STATION_RADIUS = 60.0
"""A ship this close to the station (world units) is repaired."""
REGEN_DELAY = 10.0
"""Seconds without combat before hit points regenerate."""
REGEN_RATE = 2.0
"""Hit points regained per second out of combat."""


def transit_seconds(parsecs: float) -> float:
    """Seconds a jump along a lane of ``parsecs`` takes (see the module docstring)."""
    return max(TRANSIT_MIN, TRANSIT_PER_PARSEC * float(parsecs))


def jump_point(dx: float, dy: float) -> tuple[float, float]:
    """The jump point toward a star ``(dx, dy)`` parsecs away on the map, world units."""
    norm = math.hypot(dx, dy)
    if norm < 1e-9:
        return 0.0, JUMP_RADIUS
    return JUMP_RADIUS * dx / norm, JUMP_RADIUS * dy / norm


def station_point(system_id: str, exclusion_radius: float) -> tuple[float, float]:
    """The system's station, world units (deterministic from ``system_id``)."""
    angle = random.Random(f"station:{system_id}").uniform(0, 2 * math.pi)
    r = exclusion_radius + STATION_GAP
    return r * math.cos(angle), r * math.sin(angle)


def lane_entries(lanes: list[dict]) -> dict[str, dict]:
    """``params["lanes"]`` (``[{"id", "name", "parsecs", "dx", "dy"}]``) as id -> the
    welcome's lane entry ``{"id", "name", "parsecs", "x", "y"}`` (x, y: the jump point)."""
    out = {}
    for lane in lanes:
        x, y = jump_point(float(lane.get("dx", 0.0)), float(lane.get("dy", 0.0)))
        out[str(lane["id"])] = {"id": str(lane["id"]), "name": str(lane.get("name", lane["id"])),
                                "parsecs": float(lane["parsecs"]), "x": x, "y": y}
    return out


def regen(idle: float, dt: float) -> float:
    """Hit points regained (a float; whole points are applied) over ``dt`` seconds at whose
    end the ship has been out of combat for ``idle`` seconds: regeneration starts
    ``REGEN_DELAY`` s after combat, at ``REGEN_RATE`` per second."""
    return max(0.0, min(dt, idle - REGEN_DELAY)) * REGEN_RATE

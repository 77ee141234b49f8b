"""Navigation in a solar system: the occupancy grid, ``move_to`` planning, polyline flights.

**The grid.** A system's plane ``[-WORLD_LIMIT, WORLD_LIMIT]**2`` (world units) is cut into
square cells of ``CELL_SIZE`` (10) units: ``GRID_CELLS`` x ``GRID_CELLS`` (200 x 200). Cell
``(row, col)`` covers ``x in [col*CELL - L, (col+1)*CELL - L)``, ``y in [row*CELL - L, ...)``
with ``L = WORLD_LIMIT``: rows follow y, columns follow x. A cell is **blocked** when any
part of it lies inside an obstacle disc:

- the star's exclusion zone, a disc of ``exclusion_radius(star_radius)`` = star radius +
  ``STAR_MARGIN`` (30) around ``(0, 0)``;
- the asteroid fields (``asteroid_fields``): 2-4 seeded clusters of 3-6 discs (radius 20-45)
  per system, between ``FIELD_MIN_ORBIT`` and ``FIELD_MAX_ORBIT`` from the star. Deterministic
  from the system id (SHA-256 seed, never ``hash()``); sent to clients in the welcome
  ``system.asteroids`` list as ``{"x", "y", "radius"}`` so they can draw them;
- pockets: free cells that no path from the star's surroundings reaches (enclosed by
  asteroids) are blocked too, so in a system's grid every free cell is reachable from every
  other (moves without corner cutting connect exactly the 4-connected free regions).

**Planning** (``NavGrid.plan``): one ``kernels.pathfinding.GridPathfinder`` per grid (built once
per room activation), 8-connected with octile (sqrt 2) diagonals and no corner cutting (a ship
never squeezes diagonally between two blocked cells). The cell path is then simplified by
line-of-sight string pulling: a waypoint is dropped when the straight segment that skips it
stays at least ~0.3 cell clear of every blocked cell (``line_of_sight``), so a flight along
the returned polyline never enters a blocked cell (a planned flight has a few waypoints:
typically 1-4). Rules:

- a goal inside an obstacle is replaced by the centre of the nearest free cell (Euclidean
  distance to the goal point);
- a start inside an obstacle (combat steering may push a ship in) first flies straight to the
  centre of the nearest free cell, then on;
- no path: ``plan`` returns None (the room answers ``ERR_NO_PATH`` and the ship keeps its
  course).

**Polyline flights.** A ship's flight is its current straight leg ``(x0, y0) -> (tx, ty)``
started at ``t0`` (the closed form of ``kernels.motion``) plus ``path``, the waypoints after
``(tx, ty)``. ``advance_leg`` moves a ship dict to the leg it is on at a given time, in closed
form: the next leg starts at ``t0 + length / speed``, exactly when the previous one ended, so
a room that slept through a whole flight knows where the ship is (at the last waypoint).
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np

from .. import protocol
from starhold.kernels.pathfinding import GridPathfinder

CELL_SIZE = 10.0
"""Width of a grid cell, world units."""
GRID_CELLS = int(round(2 * protocol.WORLD_LIMIT / CELL_SIZE))
"""Cells per side of the grid (200)."""
STAR_MARGIN = 30.0
"""The star's exclusion zone reaches this many world units beyond its radius."""
FIELD_MIN_ORBIT = 380.0
FIELD_MAX_ORBIT = 860.0
"""Asteroid field centres lie between these distances from the star, world units (clear of
the spawn ring at ``solar_system.SPAWN_RADIUS``)."""
LOS_STEP = 0.25
"""Line-of-sight samples per cell along a segment (spacing in cells)."""
LOS_HALF_WIDTH = 0.45
"""Half width, in cells, of the box swept along a segment by ``line_of_sight``."""


def exclusion_radius(star_radius: float) -> float:
    """Radius of the star's no-fly disc, world units."""
    return float(star_radius) + STAR_MARGIN


def _rng(system_id: str, what: str) -> random.Random:
    digest = hashlib.sha256(f"starhold-{what}:{system_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def asteroid_clusters(system_id: str) -> list[list[dict]]:
    """The asteroid fields of a system, one list of discs per field: ``[[{"x", "y",
    "radius"}, ...], ...]`` (world units, rounded to 0.1), 2-4 fields of 3-6 overlapping discs
    each. Field ``k`` (the economy's ``field:<k>``, docs/economy.md §3-4) is the ``k``-th
    list. Deterministic from ``system_id``."""
    rng = _rng(system_id, "asteroids")
    clusters = []
    count = rng.randint(2, 4)
    base = rng.uniform(0.0, 2.0 * math.pi)
    for k in range(count):
        angle = base + 2.0 * math.pi * k / count + rng.uniform(-0.4, 0.4)
        orbit = rng.uniform(FIELD_MIN_ORBIT + 60.0, FIELD_MAX_ORBIT - 60.0)
        cx, cy = orbit * math.cos(angle), orbit * math.sin(angle)
        discs = []
        for _ in range(rng.randint(3, 6)):
            r = rng.uniform(0.0, 60.0)
            a = rng.uniform(0.0, 2.0 * math.pi)
            discs.append({"x": round(cx + r * math.cos(a), 1), "y": round(cy + r * math.sin(a), 1),
                          "radius": round(rng.uniform(20.0, 45.0), 1)})
        clusters.append(discs)
    return clusters


def asteroid_fields(system_id: str) -> list[dict]:
    """The asteroid discs of a system: ``[{"x", "y", "radius"}, ...]`` (world units, rounded
    to 0.1), the discs of ``asteroid_clusters`` in order. Deterministic from ``system_id``."""
    return [disc for cluster in asteroid_clusters(system_id) for disc in cluster]


def blocked_cells(discs: list[tuple[float, float, float]], cells: int = GRID_CELLS,
                  cell: float = CELL_SIZE) -> np.ndarray:
    """bool (cells, cells): True where a cell's square overlaps any disc ``(x, y, radius)``."""
    limit = cells * cell / 2.0
    lo = np.arange(cells, dtype=np.float64) * cell - limit  # cell lower edges, both axes
    hi = lo + cell
    blocked = np.zeros((cells, cells), dtype=bool)
    for x, y, r in discs:
        # distance from the disc centre to the nearest point of each cell's square
        dx = np.maximum(np.maximum(lo - x, x - hi), 0.0)  # per column
        dy = np.maximum(np.maximum(lo - y, y - hi), 0.0)  # per row
        blocked |= (dy[:, None] ** 2 + dx[None, :] ** 2) < r * r
    return blocked


class NavGrid:
    """The occupancy grid of one system and its pathfinder.

    ``blocked``: bool (GRID_CELLS, GRID_CELLS), rows = y; ``discs``: the obstacle discs
    ``(x, y, radius)`` it was built from. Build with ``NavGrid.for_system(system_id,
    star_radius)`` once per room activation (validating the map and building the pathfinder
    costs a few milliseconds; each ``plan`` then costs in proportion to the cells it expands).
    """

    def __init__(self, discs: list[tuple[float, float, float]], cells: int = GRID_CELLS,
                 cell: float = CELL_SIZE, fill_pockets: bool = True):
        self.cells, self.cell = cells, float(cell)
        self.limit = cells * self.cell / 2.0
        self.discs = [tuple(map(float, d)) for d in discs]
        self.blocked = blocked_cells(self.discs, cells, self.cell)
        if fill_pockets:
            self.blocked |= ~_reachable(~self.blocked, self._nearest(~self.blocked, 0.0, 0.0))
        self._flat = self.blocked.ravel()
        weights = np.where(self.blocked, np.float32(np.inf), np.float32(1.0)).astype(np.float32)
        self.pathfinder = GridPathfinder(np.ascontiguousarray(weights), allow_diagonal=True,
                                         diagonal="octile", corner_cutting=False)
        rows, cols = np.nonzero(~self.blocked)
        self._free = (rows, cols, (cols + 0.5) * self.cell - self.limit, (rows + 0.5) * self.cell - self.limit)

    @classmethod
    def for_system(cls, system_id: str, star_radius: float) -> "NavGrid":
        """The grid of a system: its star's exclusion zone and its asteroid fields."""
        discs = [(0.0, 0.0, exclusion_radius(star_radius))]
        discs += [(d["x"], d["y"], d["radius"]) for d in asteroid_fields(system_id)]
        return cls(discs)

    # ---- cells -------------------------------------------------------------------------------
    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """``(row, col)`` of the cell holding world point ``(x, y)`` (clamped to the grid)."""
        n = self.cells - 1
        col = min(max(int(math.floor((x + self.limit) / self.cell)), 0), n)
        row = min(max(int(math.floor((y + self.limit) / self.cell)), 0), n)
        return row, col

    def center(self, row: int, col: int) -> tuple[float, float]:
        """World ``(x, y)`` of a cell's centre."""
        return (col + 0.5) * self.cell - self.limit, (row + 0.5) * self.cell - self.limit

    def is_free(self, x: float, y: float) -> bool:
        """Whether the point's cell is free."""
        return not self.blocked[self.cell_of(x, y)]

    def nearest_free(self, x: float, y: float) -> tuple[int, int] | None:
        """The free cell whose centre is nearest to ``(x, y)``; None if every cell is blocked."""
        rows, cols, cx, cy = self._free
        if len(rows) == 0:
            return None
        i = int(np.argmin((cx - x) ** 2 + (cy - y) ** 2))
        return int(rows[i]), int(cols[i])

    def _nearest(self, free: np.ndarray, x: float, y: float) -> tuple[int, int] | None:
        rows, cols = np.nonzero(free)
        if len(rows) == 0:
            return None
        d = ((cols + 0.5) * self.cell - self.limit - x) ** 2 + ((rows + 0.5) * self.cell - self.limit - y) ** 2
        i = int(np.argmin(d))
        return int(rows[i]), int(cols[i])

    def clearance(self, x: float, y: float) -> float:
        """Distance from ``(x, y)`` to the nearest obstacle disc's edge, world units (< 0 inside)."""
        return min(math.hypot(x - dx, y - dy) - r for dx, dy, r in self.discs) if self.discs else math.inf

    # ---- planning ----------------------------------------------------------------------------
    def line_of_sight(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether the segment ``a -> b`` (world points) keeps clear of blocked cells: the box
        of half width ``LOS_HALF_WIDTH`` cells swept along it (sampled every ``LOS_STEP``
        cells; a unit cell overlapping a box contains one of its corners) touches none."""
        ax, ay = (a[0] + self.limit) / self.cell, (a[1] + self.limit) / self.cell
        bx, by = (b[0] + self.limit) / self.cell, (b[1] + self.limit) / self.cell
        n = int(math.ceil(math.hypot(bx - ax, by - ay) / LOS_STEP)) + 1
        f = np.arange(n, dtype=np.float64) * (1.0 / max(n - 1, 1))
        px, py = ax + (bx - ax) * f, ay + (by - ay) * f
        h, top, width = LOS_HALF_WIDTH, self.cells - 1, self.cells
        cl, ch, rl, rh = (np.minimum(np.maximum(np.floor(v).astype(np.intp), 0), top)
                          for v in (px - h, px + h, py - h, py + h))
        rl *= width
        rh *= width
        flat = self._flat
        return not (flat[rl + cl].any() or flat[rl + ch].any() or flat[rh + cl].any() or flat[rh + ch].any())

    def plan(self, start: tuple[float, float], goal: tuple[float, float]) -> list[tuple[float, float]] | None:
        """Waypoints (world points) from ``start`` to ``goal``, ``start`` excluded, the goal
        (or the centre of the free cell nearest to it, when it lies in an obstacle) last; a
        flight along ``start`` + waypoints never enters a blocked cell after leaving the
        start cell. None when no path exists. See the module docstring."""
        sx, sy = float(start[0]), float(start[1])
        gx, gy = float(goal[0]), float(goal[1])
        s_cell = self.cell_of(sx, sy)
        g_cell = self.cell_of(gx, gy)
        points: list[tuple[float, float]] = [(sx, sy)]
        if self.blocked[s_cell]:
            s_cell = self.nearest_free(sx, sy)
            if s_cell is None:
                return None
            points.append(self.center(*s_cell))
        if self.blocked[g_cell]:
            g_cell = self.nearest_free(gx, gy)
            if g_cell is None:
                return None
            gx, gy = self.center(*g_cell)
        if s_cell == g_cell:
            cells = np.array([s_cell])
        else:
            cells = self.pathfinder.find(s_cell, g_cell)
            if cells is None:
                return None
        escape = len(points)  # the straight escape from an obstacle is kept as is
        points += [self.center(int(r), int(c)) for r, c in cells]
        points.append((gx, gy))
        return _dedupe(self._string_pull(points, escape))[1:]

    def _string_pull(self, points: list[tuple[float, float]], keep: int) -> list[tuple[float, float]]:
        """Drop the points that a clear straight segment can skip; the first ``keep`` points
        stay. From each kept point the next one is the farthest point found clear by a
        binary search (consecutive points of a cell path are always safe to fly between, so
        the search always makes progress; every skipping segment is checked)."""
        out = list(points[:keep])
        anchor, last = keep - 1, len(points) - 1
        while anchor < last:
            if self.line_of_sight(points[anchor], points[last]):
                out.append(points[last])
                break
            lo, hi = anchor + 1, last
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.line_of_sight(points[anchor], points[mid]):
                    lo = mid
                else:
                    hi = mid
            out.append(points[lo])
            anchor = lo
        return out


def _reachable(free: np.ndarray, seed: tuple[int, int] | None) -> np.ndarray:
    """bool mask of the free cells 4-connected to ``seed`` (all False without a seed), by
    repeated dilation (a few hundred numpy passes on a 200 x 200 grid, ~10 ms)."""
    reached = np.zeros_like(free)
    if seed is None:
        return reached
    reached[seed] = True
    while True:
        grown = reached.copy()
        grown[1:, :] |= reached[:-1, :]
        grown[:-1, :] |= reached[1:, :]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= free
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = [points[0]]
    for p in points[1:]:
        if p != out[-1]:
            out.append(p)
    return out


# ---- polyline flights ---------------------------------------------------------------------------
def flight(x: float, y: float, waypoints: list[tuple[float, float]], t0: float) -> dict:
    """The leg fields of a ship leaving ``(x, y)`` at clock time ``t0`` along ``waypoints``:
    ``{"x0", "y0", "tx", "ty", "t0", "path"}`` (``path``: the waypoints after the first, as
    ``[x, y]`` lists). No waypoints: at rest at ``(x, y)``."""
    if not waypoints:
        return {"x0": x, "y0": y, "tx": x, "ty": y, "t0": t0, "path": []}
    (tx, ty), rest = waypoints[0], waypoints[1:]
    return {"x0": x, "y0": y, "tx": float(tx), "ty": float(ty), "t0": t0, "path": [[float(a), float(b)] for a, b in rest]}


def leg_end(ship: dict, speed: float = protocol.SHIP_SPEED) -> float:
    """Clock time at which a ship dict's current leg ends (its ``t0`` plus length / speed)."""
    dx, dy = ship["tx"] - ship["x0"], ship["ty"] - ship["y0"]
    return ship["t0"] + math.sqrt(dx * dx + dy * dy) / speed


def advance_leg(ship: dict, at: float, speed: float = protocol.SHIP_SPEED) -> dict | None:
    """The ship dict moved on to the leg it flies at clock time ``at`` (a new dict), or None if
    it is still on its current leg (or has no further waypoints). Closed form: leg k+1 starts
    at ``t0_k + length_k / speed`` from leg k's end point."""
    path = ship.get("path")
    if not path:
        return None
    x0, y0, tx, ty, t0 = ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"]
    i = 0
    while i < len(path):
        end = leg_end({"x0": x0, "y0": y0, "tx": tx, "ty": ty, "t0": t0}, speed)
        if end > at:
            break
        x0, y0, t0 = tx, ty, end
        tx, ty = path[i]
        i += 1
    if i == 0:
        return None
    return {**ship, "x0": x0, "y0": y0, "tx": tx, "ty": ty, "t0": t0, "path": path[i:]}


__all__ = ["CELL_SIZE", "GRID_CELLS", "STAR_MARGIN", "NavGrid", "asteroid_fields", "exclusion_radius",
           "blocked_cells", "flight", "advance_leg", "leg_end"]

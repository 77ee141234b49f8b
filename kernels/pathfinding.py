"""Grid and lane-graph pathfinding (contract: ``specs/pathfinding.md`` v1).

**Grid A*.** ``astar_grid(weights, start, goal, allow_diagonal=False, *, diagonal="unit",
corner_cutting=True)`` is a drop-in superset of ``pyastar2d.astar_path``: same arguments, same
result shape, same errors where pyastar2d has them. ``GridPathfinder`` validates and keeps a map
once and answers many ``find(start, goal)`` queries, each costing in proportion to the cells it
expands (per-cell state is allocated once and stamped with a query generation, never cleared).

**Lane graph.** ``route(adjacency, positions, start, goal)``: A* over the jump-lane graph.

Algorithm: A* (P. E. Hart, N. J. Nilsson, B. Raphael, "A Formal Basis for the Heuristic
Determination of Minimum Cost Paths", IEEE Trans. SSC 4(2), 1968) with a consistent heuristic
and a closed set, so the first expansion of the goal gives a minimum-cost path. Grid
heuristics (scaled by the minimum free weight ``m``, so that they stay admissible and become
more informed when every cell costs more than 1):

* 4-connected: Manhattan distance, ``m * (|dr| + |dc|)``;
* 8-connected, ``diagonal="unit"`` (pyastar2d: a diagonal step costs ``weights[v]``):
  Chebyshev distance, ``m * max(|dr|, |dc|)``;
* 8-connected, ``diagonal="octile"`` (a diagonal step costs ``sqrt(2) * weights[v]``): octile
  distance, ``m * ((max - min) + sqrt(2) * min)`` of ``|dr|, |dc|``.

Costs are accumulated in float64. Open list order: f, then the entry queued last first (LIFO
among equal f: on open maps the newest entries are the deepest, which expands fewer cells),
as ``(f, 0xFFFFFFFF - seq, index)`` with ``seq`` the number of entries queued before it. That
is a total order, so the result is deterministic, and the compiled kernel
(``_pathfinding.pyx``) and the pure-Python twins here (``astar_grid_py``, ``GridPathfinderPy``,
``route_py``: ``heapq`` of those tuples) return the same paths: same float operations in the
same order (the extension is built without FMA contraction), same pop order. In the grid
search, entries whose f does not exceed the f being expanded (minimal, with a consistent
heuristic) go to a LIFO popped before the heap, in both. The compiled grid kernel holds the others in buckets of f (a small
4-ary heap of 128-bit keys for the current one, unordered vectors for the later ones), or --
integer weights, 4-connected or unit diagonals, max + min weight < 4096 -- in Dial's circular
LIFO buckets indexed by the (then integer) f: O(1) a push or a pop. Same order in all.

The compiled kernel is used unless it is missing or ``STARHOLD_NO_EXTENSIONS=1`` (``COMPILED``
says which). Measured against pyastar2d, tcod, ``pathfinding`` and networkx by
``benchmarks/kernels_astar.py``.
"""

from __future__ import annotations

import heapq
import math
import operator
import threading

import numpy as np

from ._extensions import load

__all__ = [
    "COMPILED",
    "GridPathfinder",
    "GridPathfinderPy",
    "astar_grid",
    "astar_grid_py",
    "route",
    "route_py",
]

SQRT2 = 1.4142135623730951   # math.sqrt(2.0), the constant the compiled kernel uses
_MODES = {"unit": 1, "octile": 2}
_MAX_CELLS = 2**31 - 1       # cell indices are 31-bit in the compiled heap keys
_SEQ_TOP = 0xFFFFFFFF        # tie-break among equal f: 0xFFFFFFFF - (queue order mod 2**32)


# ----------------------------------------------------------------------------- validation

def _check_weights(weights):
    """-> (C-contiguous float32 (H, W) array, minimum free weight as float).

    Raises TypeError unless the dtype is float32 (no silent conversion, like pyastar2d, which
    asserts it), ValueError for a non-2-D array, a NaN, or a weight < 1 (including -inf).
    A non-contiguous float32 array is accepted and copied. One pass over the map
    (``ndarray.min`` propagates NaN, so it checks NaN and the minimum together).
    """
    if not isinstance(weights, np.ndarray):
        weights = np.asarray(weights)
    if weights.dtype != np.float32:
        raise TypeError(f"weights must have dtype float32, got {weights.dtype}")
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (H, W), got shape {weights.shape}")
    if weights.size > _MAX_CELLS:
        raise ValueError(f"grids of more than {_MAX_CELLS} cells are not supported")
    if weights.size == 0:
        return np.ascontiguousarray(weights), math.inf
    lowest = float(weights.min())
    if math.isnan(lowest):
        raise ValueError("weights contain NaN")
    if lowest < 1.0:
        raise ValueError(f"minimum cost to move must be 1, but got {lowest}")
    return np.ascontiguousarray(weights), lowest


def _check_point(point, shape, name):
    """``point`` as a (row, col) pair of Python ints inside ``shape``, else ValueError."""
    try:
        r, c = point
        r, c = operator.index(r), operator.index(c)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (row, col) pair of integers, got {point!r}") from None
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise ValueError(f"{name} of {(r, c)} lies outside grid of shape {tuple(shape)}")
    return r, c


def _check_moves(allow_diagonal, diagonal):
    """-> mode: 0 (4-connected), 1 (unit diagonals), 2 (octile diagonals)."""
    if diagonal not in _MODES:
        raise ValueError(f"diagonal must be 'unit' or 'octile', got {diagonal!r}")
    return _MODES[diagonal] if allow_diagonal else 0


# ----------------------------------------------------------------------------- grid twin

class _GridSearchPy:
    """Pure-Python twin of the compiled ``GridSearch`` (same constructor and ``find``).

    The map is kept as a flat list; each query uses dicts and a set, so it costs in proportion
    to the cells it touches. Same expansion order and float operations as the compiled kernel.
    """

    def __init__(self, weights, minw, mode, corner):
        self.H, self.W = weights.shape
        self.w = weights.ravel().tolist()
        self.minw = float(minw)
        self.mode = mode
        self.corner = bool(corner)
        self.expanded = 0

    def _heur(self, r, c, gr, gc):
        dr, dc = abs(r - gr), abs(c - gc)
        if self.mode == 0:
            return self.minw * (dr + dc)
        mx, mn = max(dr, dc), min(dr, dc)
        if self.mode == 1:
            return self.minw * mx
        return self.minw * ((mx - mn) + SQRT2 * mn)

    def find(self, sr, sc, gr, gc):
        H, W, w, inf = self.H, self.W, self.w, math.inf
        start, goal = sr * W + sc, gr * W + gc
        self.expanded = 0
        if w[start] == inf or w[goal] == inf:
            return None
        diag, octile, corner = self.mode != 0, self.mode == 2, self.corner
        g = {start: 0.0}
        parent = {start: -1}
        closed = set()
        h = self._heur(sr, sc, gr, gc)
        heap = [(h, _SEQ_TOP, start)]   # (f, newer entries first, cell): a total order
        seq = 1
        stack = []     # entries with f <= the f being expanded: minimal, they skip the heap
        while stack or heap:
            cur_f, _, u = stack.pop() if stack else heapq.heappop(heap)
            if u in closed:
                continue                      # stale entry
            closed.add(u)
            self.expanded += 1
            if u == goal:
                path = []
                while u >= 0:
                    path.append(divmod(u, W))
                    u = parent[u]
                return np.array(path[::-1], dtype=np.int32).reshape(-1, 2)
            gu = g[u]
            r, c = divmod(u, W)
            up, down, left, right = r > 0, r < H - 1, c > 0, c < W - 1
            steps = []                        # (v, row, col, diagonal step?) in kernel order
            if up:
                steps.append((u - W, r - 1, c, False))
            if left:
                steps.append((u - 1, r, c - 1, False))
            if right:
                steps.append((u + 1, r, c + 1, False))
            if down:
                steps.append((u + W, r + 1, c, False))
            if diag:
                for ok, dr, dc in ((up and left, -1, -1), (up and right, -1, 1),
                                   (down and left, 1, -1), (down and right, 1, 1)):
                    # no corner cutting: both orthogonal neighbours must be free
                    if ok and (corner or (w[u + dr * W] != inf and w[u + dc] != inf)):
                        steps.append((u + dr * W + dc, r + dr, c + dc, True))
            for v, vr, vc, is_diag in steps:
                wv = w[v]
                if wv == inf or v in closed:
                    continue
                ng = gu + SQRT2 * wv if (is_diag and octile) else gu + wv
                if v in g and ng >= g[v]:
                    continue
                g[v] = ng
                parent[v] = u
                f = ng + self._heur(vr, vc, gr, gc)
                entry = (f, _SEQ_TOP - (seq & _SEQ_TOP), v)
                seq += 1
                if f <= cur_f:
                    stack.append(entry)
                else:
                    heapq.heappush(heap, entry)
        return None


_ext = load("_pathfinding")
COMPILED = _ext is not None
_GridSearch = _ext.GridSearch if COMPILED else _GridSearchPy
_astar_once = _ext.astar_once if COMPILED else None
_route_search = _ext.route_search if COMPILED else None


# ----------------------------------------------------------------------------- grid API

def astar_grid(weights, start, goal, allow_diagonal=False, *, diagonal="unit", corner_cutting=True):
    """Minimum-cost path on a weighted grid (pyastar2d-compatible; ``specs/pathfinding.md``).

    Arguments:
        weights: ``np.float32`` array of shape (H, W); ``np.inf`` marks a blocked cell, every
            free cell must weigh >= 1. Not copied when C-contiguous (a non-contiguous float32
            array is copied); never modified.
        start, goal: ``(row, col)`` integer pairs inside the grid.
        allow_diagonal: False: 4-connected moves; True: 8-connected.
        diagonal: ``"unit"`` (default, pyastar2d): a diagonal move into v costs ``weights[v]``;
            ``"octile"``: it costs ``sqrt(2) * weights[v]``. Checked even when
            ``allow_diagonal`` is False.
        corner_cutting: True (default, pyastar2d): a diagonal move is legal when its target is
            free; False: only when both orthogonally adjacent cells are free too.

    Returns an ``np.int32`` array of shape (K, 2) of (row, col), from ``start`` to ``goal``
    inclusive, whose cost (the sum of the weights of the cells entered, diagonal moves scaled
    as above, the start not counted; float64) is minimal; ``start == goal`` gives one row.
    ``None`` when the start or the goal is blocked (even when they are the same cell) or the
    goal is unreachable.

    Raises ``TypeError`` when ``weights`` is not float32 (no conversion: pyastar2d asserts
    float32 too; call ``weights.astype(np.float32)``); ``ValueError`` when it is not 2-D, holds
    a NaN or a weight < 1, or has more than 2**31 - 1 cells; when ``start``/``goal`` is not an
    integer pair inside the grid; when ``diagonal`` is not ``"unit"``/``"octile"``.

    Where pyastar2d 1.1 differs (the spec wins): it raises ``AssertionError`` for a dtype
    other than float32 (here ``TypeError``); it accepts NaN weights (its ``min() < 1`` check
    misses them); it searches from a blocked start, and returns ``[start]`` for a blocked
    start == goal (here ``None``); it accumulates costs in float32, so its paths can be a
    little more expensive than the optimum; its heuristic ignores the minimum weight.
    Like pyastar2d: ``ValueError`` for a weight < 1 or a point outside the grid (negative
    indices included), int32 (K, 2) paths.

    Algorithm: A* (Hart, Nilsson & Raphael 1968) with the Manhattan / Chebyshev / octile
    distance times the minimum free weight as heuristic; see the module docstring. Work: two
    passes over the map (numpy's minimum, which also detects NaN; the kernel's SSE2 scan that
    flags blocked cells in 1 byte a cell and checks whether the weights are integers), then
    the search, which touches only the cells it reaches (g, 8 bytes a cell, is allocated
    without being initialised: its pages are mapped as the search writes them).
    """
    w, minw = _check_weights(weights)
    mode = _check_moves(allow_diagonal, diagonal)
    sr, sc = _check_point(start, w.shape, "start")
    gr, gc = _check_point(goal, w.shape, "goal")
    if _astar_once is None:  # pragma: no cover - twin forced
        return _GridSearchPy(w, minw, mode, corner_cutting).find(sr, sc, gr, gc)
    return _astar_once(w, minw, sr, sc, gr, gc, mode, bool(corner_cutting))[0]


def astar_grid_py(weights, start, goal, allow_diagonal=False, *, diagonal="unit", corner_cutting=True):
    """Pure-Python twin of ``astar_grid``: same arguments, errors and (identical) paths."""
    w, minw = _check_weights(weights)
    mode = _check_moves(allow_diagonal, diagonal)
    sr, sc = _check_point(start, w.shape, "start")
    gr, gc = _check_point(goal, w.shape, "goal")
    return _GridSearchPy(w, minw, mode, corner_cutting).find(sr, sc, gr, gc)


class GridPathfinder:
    """A grid map validated once, for many A* queries (``specs/pathfinding.md``, "Reuse").

    ``GridPathfinder(weights, allow_diagonal=False, *, diagonal="unit", corner_cutting=True)``
    takes the arguments of ``astar_grid`` (same rules, same errors), copies ``weights`` once
    into a private read-only float32 array (later changes to the caller's array are not seen)
    and computes its minimum free weight once. The compiled engine keeps one 16-byte record a
    cell (weight, float64 g, uint32 tag: the move that reached the cell, an expanded bit and
    the generation of the query that wrote it), built once and never cleared: a cell's g
    counts only when its generation is the current query's, so ``find`` costs in proportion
    to the cells it expands, not H*W. Memory: 4 (``weights``) + 16 bytes a cell.

    ``find(start, goal)`` -> ``np.int32`` (K, 2) path or None, exactly as ``astar_grid``;
    ``ValueError`` when a point is not an integer pair inside the grid.
    ``expanded``: the number of cells the last ``find`` expanded (closed), the goal included;
    0 when it returned None without searching (blocked start or goal).

    Thread-safe (``find`` calls on one instance are serialised by a lock; the search itself
    releases the GIL, so use one instance per thread for parallel queries).
    """

    _engine = _GridSearch

    def __init__(self, weights, allow_diagonal=False, *, diagonal="unit", corner_cutting=True):
        w, minw = _check_weights(weights)
        self.mode = _check_moves(allow_diagonal, diagonal)
        self.allow_diagonal = bool(allow_diagonal)
        self.diagonal = diagonal
        self.corner_cutting = bool(corner_cutting)
        w = np.array(w, dtype=np.float32, order="C", copy=True)
        w.flags.writeable = False
        self.weights = w
        self.shape = w.shape
        self.min_weight = minw
        self._search = self._engine(w, minw, self.mode, self.corner_cutting)
        self._lock = threading.Lock()

    @property
    def expanded(self) -> int:
        return self._search.expanded

    def find(self, start, goal):
        sr, sc = _check_point(start, self.shape, "start")
        gr, gc = _check_point(goal, self.shape, "goal")
        with self._lock:
            return self._search.find(sr, sc, gr, gc)


class GridPathfinderPy(GridPathfinder):
    """``GridPathfinder`` on the pure-Python twin (a reference; same paths, same ``expanded``)."""

    _engine = _GridSearchPy


# ----------------------------------------------------------------------------- lane graph

def _check_graph(adjacency, positions, start, goal):
    """-> (indptr int64, indices int64, weights float64, positions float64 (N, 3) C-contiguous,
    start, goal, heuristic scale)."""
    if hasattr(adjacency, "indptr") and hasattr(adjacency, "indices") and hasattr(adjacency, "data"):
        indptr, indices, weights = adjacency.indptr, adjacency.indices, adjacency.data
    else:
        try:
            indptr, indices, weights = adjacency
        except (TypeError, ValueError):
            raise ValueError("adjacency must be (indptr, indices, weights) or a CSR matrix") from None
    try:
        pos = np.ascontiguousarray(positions, dtype=np.float64)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        indptr = np.asarray(indptr)
        indices = np.asarray(indices)
    except (TypeError, ValueError):
        raise ValueError("positions and adjacency weights must be numeric arrays") from None
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions must be finite")
    n = pos.shape[0]
    if n > 2**31 - 1:
        raise ValueError("graphs of more than 2**31 - 1 stars are not supported")
    for name, arr in (("indptr", indptr), ("indices", indices)):
        if arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
            raise ValueError(f"{name} must be a 1-D integer array")
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if weights.ndim != 1:
        raise ValueError("adjacency weights must be 1-D")
    if indptr.shape[0] != n + 1:
        raise ValueError(f"indptr must have N + 1 = {n + 1} entries, got {indptr.shape[0]}")
    m = indices.shape[0]
    if weights.shape[0] != m:
        raise ValueError("indices and weights must have the same length")
    if indptr[0] != 0 or indptr[-1] != m or (np.diff(indptr) < 0).any():
        raise ValueError("indptr must start at 0, be non-decreasing and end at len(indices)")
    if m and (indices.min() < 0 or indices.max() >= n):
        raise ValueError("indices must lie in [0, N)")
    if np.isnan(weights).any() or (weights < 0).any():
        raise ValueError("lane weights must be >= 0 (parsecs; +inf closes a lane), no NaN")
    s, t = [], []
    for name, p in (("start", start), ("goal", goal)):
        try:
            p = operator.index(p)
        except TypeError:
            raise ValueError(f"{name} must be an integer star index, got {p!r}") from None
        if not 0 <= p < n:
            raise ValueError(f"{name} {p} is not a star index in [0, {n})")
        (s if name == "start" else t).append(p)
    # heuristic scale: 1 when every lane is at least as long as the straight line between its
    # stars (the spec's heuristic); smaller otherwise, so the heuristic stays admissible
    scale = 1.0
    if m:
        src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        d = np.sqrt(((pos[src] - pos[indices]) ** 2).sum(axis=1))
        ok = d > 0
        if ok.any():
            scale = min(1.0, float((weights[ok] / d[ok]).min()))
    return indptr, indices, weights, pos, s[0], t[0], scale


def route_py(adjacency, positions, start, goal):
    """Pure-Python twin of ``route`` (``heapq``): same arguments, errors and paths."""
    indptr, indices, weights, pos, start, goal, scale = _check_graph(adjacency, positions, start, goal)
    indptr, indices, weights = indptr.tolist(), indices.tolist(), weights.tolist()
    P = pos.tolist()
    gx, gy, gz = P[goal]

    def h(v):
        x, y, z = P[v]
        dx, dy, dz = x - gx, y - gy, z - gz
        return scale * math.sqrt(dx * dx + dy * dy + dz * dz)

    g = {start: 0.0}
    parent = {start: -1}
    closed = set()
    heap = [(h(start), _SEQ_TOP, start)]   # (f, newer entries first, star): a total order
    seq = 1
    while heap:
        _, _, u = heapq.heappop(heap)
        if u in closed:
            continue
        closed.add(u)
        if u == goal:
            out = []
            while u >= 0:
                out.append(u)
                u = parent[u]
            return out[::-1]
        gu = g[u]
        for k in range(indptr[u], indptr[u + 1]):
            v, wv = indices[k], weights[k]
            if v in closed or wv == math.inf:
                continue
            ng = gu + wv
            if v in g and ng >= g[v]:
                continue
            g[v] = ng
            parent[v] = u
            heapq.heappush(heap, (ng + h(v), _SEQ_TOP - (seq & _SEQ_TOP), v))
            seq += 1
    return None


def route(adjacency, positions, start, goal):
    """Cheapest route between two stars over the jump-lane graph (``specs/pathfinding.md``).

    Arguments:
        adjacency: CSR structure ``(indptr, indices, weights)`` — or any object with
            ``.indptr``, ``.indices``, ``.data`` such as a ``scipy.sparse.csr_array`` — of a
            directed graph over N stars: the lanes out of star ``u`` go to
            ``indices[indptr[u]:indptr[u+1]]`` with lengths ``weights[...]`` in parsecs
            (float, >= 0; ``+inf`` closes a lane). Integer index arrays; duplicates allowed.
            An undirected lane is stored in both rows.
        positions: (N, 3) star positions in parsecs (converted to float64).
        start, goal: star indices in [0, N).

    Returns a ``list[int]`` of star indices from ``start`` to ``goal`` inclusive whose total
    length is minimal (``[start]`` when start == goal), or ``None`` when no route exists.

    Raises ``ValueError`` on bad input: shapes (positions not (N, 3), indptr not N + 1 long,
    indices and weights of different lengths, indptr not non-decreasing from 0 to
    len(indices)), non-finite positions, negative or NaN weights, an index outside [0, N).

    Algorithm: A* (Hart, Nilsson & Raphael 1968), heuristic the straight-line distance to the
    goal. If a lane is shorter than the straight line between its stars (a shortcut), the
    heuristic is multiplied by ``min(lane / straight line)`` over all lanes, so it stays
    admissible and consistent and the route stays the cheapest (O(E) per call to compute).
    Validation is O(N + E) numpy work per call; the search is compiled (``_pathfinding.pyx``)
    unless the extensions are disabled.
    """
    if _route_search is None:  # pragma: no cover - twin forced
        return route_py(adjacency, positions, start, goal)
    indptr, indices, weights, pos, start, goal, scale = _check_graph(adjacency, positions, start, goal)
    return _route_search(indptr, indices, weights, pos, start, goal, scale)[0]

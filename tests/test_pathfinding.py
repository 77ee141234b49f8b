"""Pathfinding kernels (specs/pathfinding.md): legal and optimal paths, checked against
scipy's Dijkstra; the compiled kernel and its pure-Python twin return identical paths."""

import itertools
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starhold.kernels import pathfinding as pf

scipy_sparse = pytest.importorskip("scipy.sparse")
from scipy.sparse.csgraph import dijkstra

INF = np.float32(np.inf)
SQRT2 = math.sqrt(2.0)
MOVES = [  # (allow_diagonal, diagonal, corner_cutting): every combination
    (a, d, c) for a in (False, True) for d in ("unit", "octile") for c in (True, False)
]


# ----------------------------------------------------------------------------- references

def grid_graph(w, allow_diagonal, diagonal, corner_cutting):
    """CSR graph of the free cells: edge u -> v weighs w[v] (sqrt(2) * w[v] for an octile
    diagonal); no diagonal past a blocked orthogonal neighbour without corner cutting."""
    H, W = w.shape
    free = np.isfinite(w)
    idx = np.arange(H * W).reshape(H, W)
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if allow_diagonal:
        moves += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    rows, cols, data = [], [], []
    for dr, dc in moves:
        r0, r1, c0, c1 = max(0, -dr), H - max(0, dr), max(0, -dc), W - max(0, dc)
        if r0 >= r1 or c0 >= c1:
            continue
        tgt = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
        ok = free[r0:r1, c0:c1] & free[tgt]
        if dr and dc and not corner_cutting:
            ok &= free[r0 + dr:r1 + dr, c0:c1] & free[r0:r1, c0 + dc:c1 + dc]
        cost = w[tgt].astype(np.float64)
        if dr and dc and diagonal == "octile":
            cost = SQRT2 * cost
        rows.append(idx[r0:r1, c0:c1][ok])
        cols.append(idx[tgt][ok])
        data.append(cost[ok])
    n = H * W
    if not rows:
        return scipy_sparse.csr_matrix((n, n))
    return scipy_sparse.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def shortest(w, start, goal, allow_diagonal, diagonal, corner_cutting):
    """Dijkstra's distance (inf when unreachable or an end is blocked)."""
    if not (np.isfinite(w[start]) and np.isfinite(w[goal])):
        return math.inf
    W = w.shape[1]
    g = grid_graph(w, allow_diagonal, diagonal, corner_cutting)
    return float(dijkstra(g, indices=start[0] * W + start[1])[goal[0] * W + goal[1]])


def path_cost(w, path, allow_diagonal, diagonal, corner_cutting, start, goal):
    """Check the path's legality and return its cost (the spec's definition, float64)."""
    assert isinstance(path, np.ndarray) and path.ndim == 2 and path.shape[1] == 2
    assert path.dtype.kind == "i"
    assert tuple(path[0]) == tuple(start) and tuple(path[-1]) == tuple(goal)
    cost = 0.0
    for (r0, c0), (r1, c1) in zip(path[:-1].tolist(), path[1:].tolist()):
        dr, dc = r1 - r0, c1 - c0
        assert 0 <= r1 < w.shape[0] and 0 <= c1 < w.shape[1]
        assert np.isfinite(w[r1, c1]), "path enters a blocked cell"
        if dr and dc:
            assert allow_diagonal and abs(dr) == abs(dc) == 1, "illegal diagonal"
            if not corner_cutting:
                assert np.isfinite(w[r0, c1]) and np.isfinite(w[r1, c0]), "cut a corner"
            cost += SQRT2 * float(w[r1, c1]) if diagonal == "octile" else float(w[r1, c1])
        else:
            assert abs(dr) + abs(dc) == 1, "not a move to an adjacent cell"
            cost += float(w[r1, c1])
    assert np.isfinite(w[tuple(start)])
    return cost


def check_grid(w, start, goal, allow_diagonal=False, diagonal="unit", corner_cutting=True,
               expect=None):
    """Both implementations: identical results, legal, optimal. Returns the path."""
    kw = {"diagonal": diagonal, "corner_cutting": corner_cutting}
    a = pf.astar_grid(w, start, goal, allow_diagonal, **kw)
    b = pf.astar_grid_py(w, start, goal, allow_diagonal, **kw)
    assert (a is None) == (b is None)
    best = shortest(w, tuple(start), tuple(goal), allow_diagonal, diagonal, corner_cutting)
    if a is None:
        assert best == math.inf
    else:
        assert np.array_equal(a, b)
        cost = path_cost(w, a, allow_diagonal, diagonal, corner_cutting, start, goal)
        assert abs(cost - best) <= 1e-9 * max(1.0, best), (cost, best)
    if expect is not None:
        assert (a is None and expect is None) or (a is not None and len(a) == expect)
    return a


def grid(text):
    """'.' free (1), '#' blocked, a digit that weight."""
    rows = [line.strip() for line in text.strip().splitlines()]
    return np.array([[np.inf if ch == "#" else (1.0 if ch == "." else float(ch)) for ch in row]
                     for row in rows], dtype=np.float32)


# ----------------------------------------------------------------------------- import

def test_compiled_pathfinding_kernel_is_imported_in_ci():
    if os.environ.get("STARHOLD_NO_EXTENSIONS") == "1":
        pytest.skip("twin forced by STARHOLD_NO_EXTENSIONS=1")
    assert pf.COMPILED


# ----------------------------------------------------------------------------- hand-made grids

@pytest.mark.parametrize("moves", MOVES)
def test_walls_and_corridors(moves):
    allow, diag, corner = moves
    w = grid("""
        .....#....
        .###.#.##.
        .#...#..#.
        .#.###..#.
        .#......#.
        .######.#.
        ........#.
        """)
    for s, g in [((0, 0), (0, 9)), ((2, 2), (6, 9)), ((4, 4), (0, 6)), ((6, 0), (2, 7))]:
        check_grid(w, s, g, allow, diag, corner)


@pytest.mark.parametrize("moves", MOVES)
def test_weighted_detour_beats_expensive_shortcut(moves):
    allow, diag, corner = moves
    w = grid("""
        .....
        .999.
        .999.
        .999.
        .....
        """)
    p = check_grid(w, (2, 0), (2, 4), allow, diag, corner)
    assert not any(w[r, c] == 9 for r, c in p.tolist())


@pytest.mark.parametrize("moves", MOVES)
def test_unreachable_blocked_ends_and_trivial_paths(moves):
    allow, diag, corner = moves
    w = grid("""
        ..#..
        ..#..
        ..#..
        """)
    check_grid(w, (0, 0), (2, 4), allow, diag, corner, expect=None)
    check_grid(w, (0, 0), (0, 2), allow, diag, corner, expect=None)   # goal blocked
    check_grid(w, (1, 2), (0, 0), allow, diag, corner, expect=None)   # start blocked
    check_grid(w, (1, 2), (1, 2), allow, diag, corner, expect=None)   # start == goal, blocked
    p = check_grid(w, (1, 1), (1, 1), allow, diag, corner, expect=1)  # start == goal
    assert p.tolist() == [[1, 1]]
    check_grid(w, (0, 0), (0, 1), allow, diag, corner, expect=2)
    one = np.ones((1, 1), dtype=np.float32)
    assert pf.astar_grid(one, (0, 0), (0, 0)).tolist() == [[0, 0]]


def test_corner_cutting_rules():
    w = grid("""
        .#
        #.
        """)
    # the only way is the diagonal between two blocked cells
    assert check_grid(w, (0, 0), (1, 1), True, "unit", True, expect=2) is not None
    assert check_grid(w, (0, 0), (1, 1), True, "octile", True, expect=2) is not None
    check_grid(w, (0, 0), (1, 1), True, "unit", False, expect=None)
    check_grid(w, (0, 0), (1, 1), True, "octile", False, expect=None)
    check_grid(w, (0, 0), (1, 1), False, expect=None)
    # one blocked orthogonal neighbour is enough to forbid the diagonal
    w = grid("""
        .#
        ..
        """)
    check_grid(w, (0, 0), (1, 1), True, "unit", False, expect=3)
    check_grid(w, (0, 0), (1, 1), True, "unit", True, expect=2)


def test_diagonal_costs():
    w = np.ones((5, 5), dtype=np.float32)
    unit = pf.astar_grid(w, (0, 0), (4, 4), True)
    assert len(unit) == 5                                   # 4 unit diagonals, cost 4
    octile = pf.astar_grid(w, (0, 0), (4, 4), True, diagonal="octile")
    assert len(octile) == 5
    assert path_cost(w, octile, True, "octile", True, (0, 0), (4, 4)) == pytest.approx(4 * SQRT2)
    # octile: a diagonal costs more than an orthogonal step, so (0,0)->(0,4) stays straight
    p = pf.astar_grid(w, (0, 0), (0, 4), True, diagonal="octile")
    assert p.tolist() == [[0, c] for c in range(5)]
    # unit diagonals are never worse than orthogonal steps: Chebyshev distance
    for goal in [(4, 1), (2, 3), (0, 4)]:
        p = check_grid(w, (0, 0), goal, True, "unit", True)
        assert len(p) - 1 == max(goal)


def test_min_weight_scales_the_heuristic_and_stays_optimal():
    rng = np.random.default_rng(3)
    w = rng.uniform(4, 9, (25, 25)).astype(np.float32)
    w[rng.random(w.shape) < 0.2] = np.inf
    w[0, 0] = w[24, 24] = 4
    for allow, diag, corner in MOVES:
        check_grid(w, (0, 0), (24, 24), allow, diag, corner)


@pytest.mark.parametrize("moves", MOVES)
def test_integer_float_and_huge_weights(moves):
    """Each open list of the compiled kernel (buckets for integer weights, the heap for the
    others) on the same layout, checked against Dijkstra and the twin."""
    allow, diag, corner = moves
    rng = np.random.default_rng(8)
    blocked = rng.random((30, 40)) < 0.3
    for w in (rng.integers(1, 6, (30, 40)), rng.uniform(1, 5, (30, 40)),
              rng.integers(1, 5000, (30, 40)), np.full((30, 40), 4095.0),
              rng.integers(1, 3, (30, 40)) * 1e9, rng.choice([1.0, 1.5, 3e38], (30, 40))):
        w = w.astype(np.float32)
        w[blocked] = np.inf
        w[0, 0] = w[29, 39] = 2
        check_grid(w, (0, 0), (29, 39), allow, diag, corner)
        check_grid(w, (29, 39), (0, 0), allow, diag, corner)


def test_integer_weights_use_the_bucket_open_list():
    if not pf.COMPILED:
        pytest.skip("the bucket open list is the compiled engine's")
    ints = np.ones((4, 4), dtype=np.float32) * 3
    assert pf.GridPathfinder(ints)._search.integer_mode
    assert pf.GridPathfinder(ints, True)._search.integer_mode
    assert not pf.GridPathfinder(ints, True, diagonal="octile")._search.integer_mode
    assert not pf.GridPathfinder(ints + 0.5)._search.integer_mode
    assert not pf.GridPathfinder(ints * 2000)._search.integer_mode     # 6000 + 6000 buckets


def test_layouts_and_return_type_like_pyastar2d():
    rng = np.random.default_rng(5)
    w = rng.uniform(1, 3, (12, 20)).astype(np.float32)
    ref = pf.astar_grid(w, (1, 2), (10, 17), True)
    assert ref.dtype == np.int32 and ref.shape[1] == 2                  # as pyastar2d
    assert np.array_equal(pf.astar_grid(np.asfortranarray(w), (1, 2), (10, 17), True), ref)
    wide = np.repeat(w, 2, axis=1)
    assert np.array_equal(pf.astar_grid(wide[:, ::2], (1, 2), (10, 17), True), ref)
    ro = w.copy()
    ro.flags.writeable = False
    assert np.array_equal(pf.astar_grid(ro, np.array([1, 2]), (np.int64(10), np.int8(17)), True), ref)
    before = w.copy()
    pf.astar_grid(w, (1, 2), (10, 17), True)
    assert np.array_equal(w, before)                                   # never modified


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("fn", [pf.astar_grid, pf.astar_grid_py, pf.GridPathfinder, pf.GridPathfinderPy])
def test_weight_errors(fn):
    def call(w, *a, **k):
        return fn(w, *a, **k) if fn in (pf.GridPathfinder, pf.GridPathfinderPy) else fn(w, (0, 0), (0, 1), *a, **k)

    ok = np.ones((3, 3), dtype=np.float32)
    for bad in (ok.astype(np.float64), ok.astype(np.int32), ok.astype(np.float16), ok.tolist()):
        with pytest.raises(TypeError):
            call(bad)
    for shape in [(9,), (3, 3, 1), ()]:
        with pytest.raises(ValueError):
            call(np.ones(shape, dtype=np.float32))
    for value in (np.nan, 0.5, 0.0, -1.0, -np.inf):
        w = ok.copy()
        w[2, 2] = value
        with pytest.raises(ValueError):
            call(w)
    with pytest.raises(ValueError):
        call(ok, True, diagonal="euclid")
    with pytest.raises(ValueError):
        call(ok, False, diagonal=None)


@pytest.mark.parametrize("which", ["compiled", "twin", "finder", "finder_py"])
def test_point_errors(which):
    w = np.ones((4, 5), dtype=np.float32)
    if which == "finder":
        fn = pf.GridPathfinder(w).find
    elif which == "finder_py":
        fn = pf.GridPathfinderPy(w).find
    else:
        impl = pf.astar_grid if which == "compiled" else pf.astar_grid_py

        def fn(s, g):
            return impl(w, s, g)

    for bad in [(-1, 0), (0, -1), (4, 0), (0, 5), (1,), (1, 2, 3), (1.0, 2), ("a", 1), None, 3]:
        with pytest.raises(ValueError):
            fn(bad, (0, 0))
        with pytest.raises(ValueError):
            fn((0, 0), bad)
    with pytest.raises(ValueError):
        pf.astar_grid(np.ones((0, 3), dtype=np.float32), (0, 0), (0, 0))


# ----------------------------------------------------------------------------- random grids

@st.composite
def grids(draw):
    h = draw(st.integers(1, 30))
    w_ = draw(st.integers(1, 30))
    density = draw(st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.6]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    style = draw(st.sampled_from(["int", "float", "big-int", "min-above-1"]))
    if style == "int":          # the compiled kernel's bucket open list (but octile)
        w = rng.integers(1, 6, (h, w_)).astype(np.float32)
    elif style == "float":      # its heap
        w = rng.uniform(1, 5, (h, w_)).astype(np.float32)
    elif style == "big-int":    # integers, but too many buckets: the heap again
        w = rng.integers(1, 10_000, (h, w_)).astype(np.float32)
    else:                       # a heuristic scaled by a minimum weight above 1
        w = rng.integers(3, 9, (h, w_)).astype(np.float32)
    w[rng.random((h, w_)) < density] = np.inf
    start = (draw(st.integers(0, h - 1)), draw(st.integers(0, w_ - 1)))
    goal = (draw(st.integers(0, h - 1)), draw(st.integers(0, w_ - 1)))
    if draw(st.booleans()):   # usually keep the ends free, sometimes not
        w[start] = min(w[start], 8)
        w[goal] = min(w[goal], 8)
    return w, start, goal


@pytest.mark.parametrize("moves", MOVES)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=grids())
def test_random_grids_are_legal_and_optimal(moves, case):
    w, start, goal = case
    check_grid(w, start, goal, *moves)


# ----------------------------------------------------------------------------- GridPathfinder

@pytest.mark.parametrize("moves", MOVES)
def test_pathfinder_many_queries_match_astar_grid(moves):
    allow, diag, corner = moves
    rng = np.random.default_rng(11)
    w = rng.uniform(1, 5, (40, 50)).astype(np.float32)
    w[rng.random(w.shape) < 0.3] = np.inf
    kw = {"diagonal": diag, "corner_cutting": corner}
    finders = [pf.GridPathfinder(w, allow, **kw), pf.GridPathfinderPy(w, allow, **kw)]
    graph = grid_graph(w, allow, diag, corner)
    for _ in range(40):
        s = (int(rng.integers(40)), int(rng.integers(50)))
        g = (int(rng.integers(40)), int(rng.integers(50)))
        one = pf.astar_grid(w, s, g, allow, **kw)
        a, b = (f.find(s, g) for f in finders)
        assert finders[0].expanded == finders[1].expanded
        for p in (a, b):
            assert (p is None) == (one is None)
            if p is not None:
                assert np.array_equal(p, one)
        if one is not None:
            best = dijkstra(graph, indices=s[0] * 50 + s[1])[g[0] * 50 + g[1]]
            cost = path_cost(w, one, allow, diag, corner, s, g)
            assert abs(cost - best) <= 1e-9 * best


def test_pathfinder_keeps_its_own_copy_of_the_map():
    w = np.ones((6, 6), dtype=np.float32)
    for cls in (pf.GridPathfinder, pf.GridPathfinderPy):
        f = cls(w.copy())
        src = np.ones((6, 6), dtype=np.float32)
        f2 = cls(src)
        src[:, 3] = np.inf                     # changing the caller's array changes nothing
        assert len(f2.find((0, 0), (0, 5))) == 6
        assert f.find((0, 0), (0, 5)) is not None
        assert f.min_weight == 1.0 and f.shape == (6, 6)
        with pytest.raises(ValueError):
            f.weights[0, 0] = 2                 # read-only


@pytest.mark.parametrize("cls", [pf.GridPathfinder, pf.GridPathfinderPy])
def test_short_query_on_a_big_map_expands_few_cells(cls):
    """Structural, not timed: a short path on a 2048 x 2048 map touches only cells near it."""
    w = np.ones((2048, 2048), dtype=np.float32)
    w[1000:1040, 1020] = np.inf                # a wall in the way
    for allow, diag, corner in [(False, "unit", True), (True, "unit", True), (True, "octile", False)]:
        f = cls(w, allow, diagonal=diag, corner_cutting=corner)
        p = f.find((1010, 1000), (1012, 1040))
        assert p is not None and tuple(p[-1]) == (1012, 1040)
        assert 0 < f.expanded < 5000, f.expanded          # vs 4 194 304 cells
        p = f.find((5, 5), (5, 30))
        assert len(p) == 26 and f.expanded <= 26          # straight line: only the path
        assert f.find((0, 0), (0, 0)).tolist() == [[0, 0]] and f.expanded == 1


def test_generation_stamps_wrap_safely():
    if not pf.COMPILED:
        pytest.skip("generation stamps are the compiled engine's")
    rng = np.random.default_rng(2)
    w = rng.uniform(1, 4, (30, 30)).astype(np.float32)
    w[rng.random(w.shape) < 0.25] = np.inf
    f = pf.GridPathfinder(w, True)
    queries = [((int(rng.integers(30)), int(rng.integers(30))),
                (int(rng.integers(30)), int(rng.integers(30)))) for _ in range(12)]
    expected = [pf.astar_grid(w, s, g, True) for s, g in queries]
    f._search.gen = 0x7FFFFFFE - 5
    for (s, g), e in zip(queries, expected):
        p = f.find(s, g)
        assert (p is None and e is None) or np.array_equal(p, e)
    assert f._search.gen < 100


# ----------------------------------------------------------------------------- lane graph

def random_lanes(rng, n, p_edge, shortcut=False):
    pos = rng.uniform(-50, 50, (n, 3))
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (int(p_edge * n * n), 2)) if a != b}
    pairs |= {(b, a) for a, b in pairs}
    src = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    d = np.linalg.norm(pos[src[:, 0]] - pos[src[:, 1]], axis=1)
    w = d * rng.uniform(1.0, 1.6, len(d))
    if shortcut and len(w):
        w[: max(1, len(w) // 20)] *= 0.2          # a few lanes shorter than the straight line
    mat = scipy_sparse.csr_matrix((w, (src[:, 0], src[:, 1])), shape=(n, n))
    mat.sort_indices()
    return mat, pos


def check_route(mat, pos, s, t):
    adj = (mat.indptr, mat.indices, mat.data)
    a = pf.route(adj, pos, s, t)
    b = pf.route_py(adj, pos, s, t)
    assert a == b
    assert pf.route(mat, pos, s, t) == a
    best = dijkstra(mat, indices=s)[t]
    if a is None:
        assert best == math.inf
        return
    assert isinstance(a, list) and a[0] == s and a[-1] == t
    cost = 0.0
    for u, v in itertools.pairwise(a):
        row = slice(mat.indptr[u], mat.indptr[u + 1])
        hits = mat.data[row][mat.indices[row] == v]
        assert len(hits), "not a lane"
        cost += float(hits.min())
    assert abs(cost - best) <= 1e-9 * max(1.0, best), (cost, best)


@pytest.mark.parametrize("shortcut", [False, True])
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), p=st.sampled_from([0.005, 0.02, 0.08]))
def test_route_is_optimal_on_random_lane_graphs(shortcut, seed, n, p):
    rng = np.random.default_rng(seed)
    mat, pos = random_lanes(rng, n, p, shortcut)
    for _ in range(4):
        check_route(mat, pos, int(rng.integers(n)), int(rng.integers(n)))


def test_route_trivial_and_unreachable():
    pos = np.zeros((3, 3))
    pos[:, 0] = [0, 1, 5]
    adj = (np.array([0, 1, 2, 2]), np.array([1, 0]), np.array([1.0, 1.0]))
    for fn in (pf.route, pf.route_py):
        assert fn(adj, pos, 1, 1) == [1]
        assert fn(adj, pos, 0, 1) == [0, 1]
        assert fn(adj, pos, 0, 2) is None
        closed = (adj[0], adj[1], np.array([np.inf, 1.0]))
        assert fn(closed, pos, 0, 1) is None


@pytest.mark.parametrize("fn", [pf.route, pf.route_py])
def test_route_errors(fn):
    pos = np.zeros((3, 3))
    indptr, indices, w = np.array([0, 1, 2, 2]), np.array([1, 0]), np.array([1.0, 1.0])
    bad = [
        ((indptr, indices, np.array([-1.0, 1.0])), pos, 0, 1),          # negative weight
        ((indptr, indices, np.array([np.nan, 1.0])), pos, 0, 1),        # NaN weight
        ((indptr, indices, w), np.zeros((3, 2)), 0, 1),                  # positions not (N, 3)
        ((indptr, indices, w), np.full((3, 3), np.nan), 0, 1),           # non-finite positions
        ((indptr[:-1], indices, w), pos, 0, 1),                          # indptr length
        ((indptr, np.array([1, 3]), w), pos, 0, 1),                      # index out of range
        ((indptr, np.array([1, -1]), w), pos, 0, 1),
        ((indptr, indices, w[:1]), pos, 0, 1),                           # lengths differ
        ((np.array([0, 2, 1, 2]), indices, w), pos, 0, 1),               # indptr decreasing
        ((np.array([0, 1, 2, 3]), indices, w), pos, 0, 1),               # indptr end
        ((indptr, indices.astype(float), w), pos, 0, 1),                 # float indices
        ((indptr, indices), pos, 0, 1),                                  # not a triple
        ((indptr, indices, w), pos, 0, 3),                               # goal out of range
        ((indptr, indices, w), pos, -1, 1),                              # start out of range
        ((indptr, indices, w), pos, 0.0, 1),                             # not an integer
    ]
    for args in bad:
        with pytest.raises(ValueError):
            fn(*args)

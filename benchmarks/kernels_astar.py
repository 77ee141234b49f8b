"""Grid A*: Starhold's ``astar_grid`` / ``GridPathfinder`` against pyastar2d, tcod, the
pure-Python ``pathfinding`` package and networkx; every path's cost checked with scipy.

Maps (seeded, deterministic), start near one corner and goal near the opposite one, both in
the same 4-connected component:

- ``random``: 25 % random obstacles, integer costs 1-5 (integers so tcod's integer cost
  arrays express the same map exactly);
- ``maze``: a perfect maze (randomised depth-first search) with 1-cell corridors, cost 1;
- ``walls``: an open field of cost 1 with long random walls;
- ``random-float``: as ``random`` with real costs uniform in [1, 5) (tcod: n/a, integer costs).

Each at 1024 x 1024, 4-connected and 8-connected with unit diagonals (pyastar2d's semantics):
starhold ``astar_grid`` vs ``pyastar2d.astar_path`` vs tcod (``tcod.path.SimpleGraph`` with
``cardinal=1, diagonal=1`` (0 for 4-connected) and ``greed=1``, a ``Pathfinder`` rooted at the
start, ``path_to(goal)``: the same move costs, ``cost[v]`` per move, corner cutting allowed).
At 256 x 256 (the same generators) also the pure-Python ``pathfinding`` package
(``AStarFinder``; its diagonal moves cost sqrt(2) x weight, fixed: its 8-connected rows are
checked against the octile reference and their ratio compares different semantics) and
networkx ``astar_path`` on a prebuilt ``DiGraph`` whose edge u -> v weighs ``weights[v]``
(graph construction excluded from the time, reported in ``notes``).

A one-off query's time includes everything its API needs from a numpy map (pyastar2d copies
and scans the map, tcod builds its graph and pathfinder, starhold validates in one pass).
Then short paths (<= 50 cells apart, Manhattan) on a 2048 x 2048 ``random`` map: starhold
``GridPathfinder.find`` (map validated once) vs ``pyastar2d.astar_path`` per query, median
over ``short_queries`` queries; each starhold path is checked against scipy's Dijkstra on a
window around the start wide enough to be exact (any path leaving it costs more than the
path found, since every move costs >= 1).

Costs are checked against ``scipy.sparse.csgraph.dijkstra`` from the start on the same grid
graph (one run per map and move rule). ``ratio_vs_pyastar2d`` = median / pyastar2d's median
on the same map and connectivity (< 1: faster). Runs are interleaved across implementations.

    python benchmarks/kernels_astar.py [--size 1024] [--small 256] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time

import numpy as np

SQRT2 = math.sqrt(2.0)
COST_RTOL = 1e-6   # pyastar2d accumulates in float32; starhold is exact to ~1e-12


# ----------------------------------------------------------------------------- maps

def _free_pair(w):
    """A start near (0, 0) and a goal near the far corner, in the same 4-connected component."""
    from scipy import ndimage

    labels, _ = ndimage.label(np.isfinite(w))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    big = labels == sizes.argmax()
    rows, cols = np.nonzero(big)
    s = np.argmin(rows + cols)
    g = np.argmax(rows + cols)
    return (int(rows[s]), int(cols[s])), (int(rows[g]), int(cols[g]))


def random_map(size, seed=1):
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 6, (size, size)).astype(np.float32)
    w[rng.random((size, size)) < 0.25] = np.inf
    return w


def random_float_map(size, seed=4):
    """As ``random_map`` with real-valued costs, uniform in [1, 5) (no integer fast path)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(1, 5, (size, size)).astype(np.float32)
    w[rng.random((size, size)) < 0.25] = np.inf
    return w


def maze_map(size, seed=2):
    """A perfect maze on ((size - 1) // 2)^2 cells, drawn on a size x size grid."""
    rng = np.random.default_rng(seed)
    n = (size - 1) // 2
    w = np.full((size, size), np.inf, dtype=np.float32)
    seen = np.zeros((n, n), dtype=bool)
    stack = [(0, 0)]
    seen[0, 0] = True
    w[1, 1] = 1
    dirs = ((0, 1), (1, 0), (0, -1), (-1, 0))
    order = rng.integers(0, 24, n * n * 2).tolist()   # random permutations of the 4 directions
    perms = [p for p in __import__("itertools").permutations(range(4))]
    k = 0
    while stack:
        r, c = stack[-1]
        perm = perms[order[k % len(order)]]
        k += 1
        for d in perm:
            dr, dc = dirs[d]
            nr, nc = r + dr, c + dc
            if 0 <= nr < n and 0 <= nc < n and not seen[nr, nc]:
                seen[nr, nc] = True
                w[2 * r + 1 + dr, 2 * c + 1 + dc] = 1
                w[2 * nr + 1, 2 * nc + 1] = 1
                stack.append((nr, nc))
                break
        else:
            stack.pop()
    return w


def walls_map(size, seed=3):
    rng = np.random.default_rng(seed)
    w = np.ones((size, size), dtype=np.float32)
    for _ in range(max(4, size // 40)):
        length = int(rng.integers(size // 5, size * 3 // 5))
        r, c = (int(x) for x in rng.integers(0, size, 2))
        if rng.random() < 0.5:
            w[r, max(0, c - length // 2):c + length // 2] = np.inf
        else:
            w[max(0, r - length // 2):r + length // 2, c] = np.inf
    return w


MAPS = {"random": random_map, "maze": maze_map, "walls": walls_map, "random-float": random_float_map}


# ----------------------------------------------------------------------------- references

def grid_graph(w, diag, octile=False):
    """scipy CSR graph of the free cells: u -> v weighs w[v] (sqrt(2) w[v] octile diagonals)."""
    from scipy import sparse

    H, W = w.shape
    free = np.isfinite(w)
    idx = np.arange(H * W, dtype=np.int32).reshape(H, W)
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1)] + ([(-1, -1), (-1, 1), (1, -1), (1, 1)] if diag else [])
    rows, cols, data = [], [], []
    for dr, dc in moves:
        r0, r1, c0, c1 = max(0, -dr), H - max(0, dr), max(0, -dc), W - max(0, dc)
        tgt = (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))
        ok = free[r0:r1, c0:c1] & free[tgt]
        cost = w[tgt].astype(np.float64)
        if dr and dc and octile:
            cost *= SQRT2
        rows.append(idx[r0:r1, c0:c1][ok])
        cols.append(idx[tgt][ok])
        data.append(cost[ok])
    n = H * W
    return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n))


def dijkstra_from(w, start, diag, octile=False):
    from scipy.sparse.csgraph import dijkstra

    return dijkstra(grid_graph(w, diag, octile), indices=start[0] * w.shape[1] + start[1])


def path_cost(w, path, start, goal, diag, octile=False):
    """The path's cost (float64) or None when it is not a legal path from start to goal."""
    if path is None or len(path) == 0:
        return None
    p = np.asarray(path, dtype=np.int64)
    if tuple(p[0]) != tuple(start) or tuple(p[-1]) != tuple(goal):
        return None
    step = np.abs(np.diff(p, axis=0))
    is_diag = (step[:, 0] == 1) & (step[:, 1] == 1)
    if (step.max(initial=0) > 1 or (step.sum(axis=1) == 0).any()
            or (is_diag.any() and not diag)):
        return None
    cw = w[p[1:, 0], p[1:, 1]].astype(np.float64)
    if not np.isfinite(cw).all() or not np.isfinite(w[tuple(start)]):
        return None
    if octile:
        cw = np.where(is_diag, SQRT2 * cw, cw)
    return float(cw.sum())


# ----------------------------------------------------------------------------- adapters

def _starhold():
    from starhold.kernels.pathfinding import astar_grid
    return lambda w, s, g, diag: astar_grid(w, s, g, diag)


def _pyastar2d():
    import pyastar2d
    return lambda w, s, g, diag: pyastar2d.astar_path(w, s, g, allow_diagonal=diag)


def _tcod():
    import tcod.path

    def run(w, s, g, diag):
        cost = np.where(np.isfinite(w), w, 0).astype(np.int32)
        graph = tcod.path.SimpleGraph(cost=cost, cardinal=1, diagonal=1 if diag else 0, greed=1)
        pf = tcod.path.Pathfinder(graph)
        pf.add_root(s)
        p = pf.path_to(g)
        return p if len(p) and tuple(p[-1]) == tuple(g) else None
    return run


def _pathfinding():
    from pathfinding.core.diagonal_movement import DiagonalMovement
    from pathfinding.core.grid import Grid
    from pathfinding.finder.a_star import AStarFinder

    def run(w, s, g, diag):
        grid = Grid(matrix=np.where(np.isfinite(w), w, 0).tolist())
        finder = AStarFinder(diagonal_movement=DiagonalMovement.always if diag else DiagonalMovement.never)
        path, _ = finder.find_path(grid.node(s[1], s[0]), grid.node(g[1], g[0]), grid)
        return np.array([(n.y, n.x) for n in path]) if path else None
    return run


def _networkx_graph(w, diag):
    import networkx as nx

    t0 = time.perf_counter()
    csr = grid_graph(w, diag).tocoo()
    G = nx.DiGraph()
    G.add_nodes_from(range(w.size))
    G.add_weighted_edges_from(zip(csr.row.tolist(), csr.col.tolist(), csr.data.tolist()))
    return G, (time.perf_counter() - t0) * 1e3


def _networkx(G, w, diag):
    import networkx as nx

    W = w.shape[1]
    minw = float(w[np.isfinite(w)].min())

    def h(u, v):
        ur, uc = divmod(u, W)
        vr, vc = divmod(v, W)
        dr, dc = abs(ur - vr), abs(uc - vc)
        return minw * (max(dr, dc) if diag else dr + dc)

    def run(_w, s, g, _diag):
        try:
            nodes = nx.astar_path(G, s[0] * W + s[1], g[0] * W + g[1], heuristic=h, weight="weight")
        except nx.NetworkXNoPath:
            return None
        return np.array([divmod(v, W) for v in nodes])
    return run


# ----------------------------------------------------------------------------- runner

def _time_interleaved(impls, w, s, g, diag, repeats):
    """{name: (median_ms, last path)}; one call of each implementation per round."""
    times = {name: [] for name in impls}
    paths = {}
    for _ in range(repeats):
        for name, fn in impls.items():
            gc.collect()
            t0 = time.perf_counter()
            p = fn(w, s, g, diag)
            times[name].append((time.perf_counter() - t0) * 1e3)
            paths[name] = p
    return {name: (statistics.median(ts), paths[name]) for name, ts in times.items()}


def _load(factory):
    try:
        return factory(), None
    except ImportError as exc:
        return None, f"not installed ({exc})"


def _row(map_name, size, conn, impl, median, base, cost, ref, notes="", repeats=0, extra=None):
    ok = cost is not None and math.isfinite(ref) and abs(cost - ref) <= COST_RTOL * max(1.0, ref)
    row = {
        "map": map_name, "size": size, "connectivity": conn, "impl": impl,
        "median_ms": None if median is None else round(median, 3),
        "ratio_vs_pyastar2d": None if (median is None or not base) else round(median / base, 3),
        "cost_ok": None if median is None else bool(ok), "cost": cost, "ref_cost": ref,
        "cost_rel_err": None if cost is None else abs(cost - ref) / max(1.0, ref),
        "repeats": repeats, "notes": notes,
    }
    if extra:
        row.update(extra)
    return row


def _one_off_rows(map_name, w, size, repeats, slow_repeats, with_slow):
    rows = []
    start, goal = _free_pair(w)
    for diag in (False, True):
        conn = "8 (unit diag)" if diag else "4"
        ref = float(dijkstra_from(w, start, diag)[goal[0] * w.shape[1] + goal[1]])
        fast = {}
        notes = {}
        integral = bool(np.all(np.floor(w[np.isfinite(w)]) == w[np.isfinite(w)]))
        for name, factory in (("starhold", _starhold), ("pyastar2d", _pyastar2d), ("tcod", _tcod)):
            fn, err = _load(factory)
            if fn is None:
                notes[name] = err
            elif name == "tcod" and not integral:
                notes[name] = "n/a: tcod's cost arrays are integers"
            else:
                fast[name] = fn
        res = _time_interleaved(fast, w, start, goal, diag, repeats)
        base = res.get("pyastar2d", (None,))[0]
        for name in ("starhold", "pyastar2d", "tcod"):
            if name not in res:
                rows.append(_row(map_name, size, conn, name, None, base, None, ref, notes[name]))
                continue
            med, p = res[name]
            cost = path_cost(w, p, start, goal, diag)
            rows.append(_row(map_name, size, conn, name, med, base, cost, ref, repeats=repeats,
                             extra={"path_len": None if p is None else len(p)}))
        if not with_slow:
            continue
        # pure-Python peers (small maps only)
        fn, err = _load(_pathfinding)
        if fn is None:
            rows.append(_row(map_name, size, conn, "pathfinding", None, base, None, ref, err))
        else:
            res = _time_interleaved({"pathfinding": fn}, w, start, goal, diag, slow_repeats)
            med, p = res["pathfinding"]
            if diag:   # its diagonal moves cost sqrt(2) x weight: check against octile costs
                oref = float(dijkstra_from(w, start, True, octile=True)[goal[0] * w.shape[1] + goal[1]])
                cost = path_cost(w, p, start, goal, True, octile=True)
                rows.append(_row(map_name, size, "8 (octile)", "pathfinding", med, base, cost, oref,
                                 "its diagonals cost sqrt(2) x weight (fixed); checked against "
                                 "the octile optimum; ratio vs pyastar2d's unit-diagonal run",
                                 slow_repeats))
            else:
                cost = path_cost(w, p, start, goal, False)
                rows.append(_row(map_name, size, conn, "pathfinding", med, base, cost, ref,
                                 repeats=slow_repeats))
        try:
            G, build_ms = _networkx_graph(w, diag)
        except ImportError as exc:
            rows.append(_row(map_name, size, conn, "networkx", None, base, None, ref, f"not installed ({exc})"))
        else:
            res = _time_interleaved({"networkx": _networkx(G, w, diag)}, w, start, goal, diag, slow_repeats)
            med, p = res["networkx"]
            rows.append(_row(map_name, size, conn, "networkx", med, base, path_cost(w, p, start, goal, diag),
                             ref, f"astar_path on a prebuilt DiGraph (build {build_ms:.0f} ms, excluded)",
                             slow_repeats))
            del G
    return rows


def _short_rows(size, queries, seed=9):
    """Short queries on a big random map: GridPathfinder.find vs pyastar2d per query."""
    from scipy.sparse.csgraph import dijkstra
    from starhold.kernels.pathfinding import GridPathfinder, astar_grid

    w = random_map(size, seed=seed)
    rng = np.random.default_rng(seed)
    free = np.isfinite(w)
    pairs = []
    while len(pairs) < queries:
        s = tuple(int(x) for x in rng.integers(60, size - 60, 2))
        d = rng.integers(-50, 51, 2)
        if abs(d[0]) + abs(d[1]) > 50:
            continue
        g = (s[0] + int(d[0]), s[1] + int(d[1]))
        if free[s] and free[g]:
            pairs.append((s, g))
    try:
        import pyastar2d
    except ImportError:
        pyastar2d = None
    rows = []
    for diag in (False, True):
        conn = "8 (unit diag)" if diag else "4"
        t0 = time.perf_counter()
        finder = GridPathfinder(w, diag)
        build_ms = (time.perf_counter() - t0) * 1e3
        ts, tp, to, ok, n_paths, expanded = [], [], [], True, 0, []
        for s, g in pairs:
            gc.collect()
            t0 = time.perf_counter()
            p = finder.find(s, g)
            ts.append((time.perf_counter() - t0) * 1e3)
            expanded.append(finder.expanded)
            t0 = time.perf_counter()
            o = astar_grid(w, s, g, diag)
            to.append((time.perf_counter() - t0) * 1e3)
            ok &= (o is None) == (p is None) and (o is None or np.array_equal(o, p))
            if pyastar2d is not None:
                t0 = time.perf_counter()
                q = pyastar2d.astar_path(w, s, g, allow_diagonal=diag)
                tp.append((time.perf_counter() - t0) * 1e3)
            else:
                q = None
            if p is None:
                ok &= q is None
                continue
            n_paths += 1
            cost = path_cost(w, p, s, g, diag)
            # exact reference on a window: any path leaving it costs more than `cost`
            r = math.ceil(cost) + 1
            r0, c0 = max(0, s[0] - r), max(0, s[1] - r)
            sub = w[r0:s[0] + r + 1, c0:s[1] + r + 1]
            ref = dijkstra(grid_graph(sub, diag), indices=(s[0] - r0) * sub.shape[1] + (s[1] - c0))
            ref = float(ref[(g[0] - r0) * sub.shape[1] + (g[1] - c0)])
            ok &= cost is not None and abs(cost - ref) <= 1e-9 * ref
        med_s = statistics.median(ts)
        med_p = statistics.median(tp) if tp else None
        notes = (f"median over {len(pairs)} queries ({n_paths} reachable), <= 50 cells apart; "
                 f"GridPathfinder built once in {build_ms:.0f} ms (excluded); median "
                 f"{statistics.median(expanded):.0f} cells expanded; speedup "
                 + (f"{med_p / med_s:.0f}x" if med_p else "n/a"))
        base = med_p
        rows.append({"map": "random-short", "size": size, "connectivity": conn,
                     "impl": "starhold GridPathfinder.find", "median_ms": round(med_s, 4),
                     "ratio_vs_pyastar2d": None if not base else round(med_s / base, 4),
                     "cost_ok": bool(ok), "repeats": len(pairs), "notes": notes})
        med_o = statistics.median(to)
        rows.append({"map": "random-short", "size": size, "connectivity": conn,
                     "impl": "starhold astar_grid", "median_ms": round(med_o, 3),
                     "ratio_vs_pyastar2d": None if not base else round(med_o / base, 4),
                     "cost_ok": bool(ok), "repeats": len(pairs),
                     "notes": "one-off calls (the map scanned each time), same paths as find"})
        rows.append({"map": "random-short", "size": size, "connectivity": conn,
                     "impl": "pyastar2d", "median_ms": None if med_p is None else round(med_p, 3),
                     "ratio_vs_pyastar2d": 1.0 if med_p else None, "cost_ok": True,
                     "repeats": len(tp), "notes": "" if pyastar2d else "not installed"})
        del finder
    return rows


def run_astar(size: int = 1024, small_size: int = 256, repeats: int = 7, slow_repeats: int = 3,
              short_size: int = 2048, short_queries: int = 100,
              maps=("random", "maze", "walls", "random-float"),
              peers: bool = True) -> list[dict]:
    """The benchmark's rows: {map, size, connectivity, impl, median_ms, ratio_vs_pyastar2d,
    cost_ok, cost, ref_cost, cost_rel_err, repeats, notes, ...}; ``median_ms``,
    ``ratio_vs_pyastar2d`` and ``cost_ok`` are None for an implementation that did not run
    (not installed, or n/a: see ``notes``). ``peers=False`` skips the pure-Python peers
    (``pathfinding``, networkx) at ``small_size``."""
    rows = []
    for name in maps:
        rows += _one_off_rows(name, MAPS[name](size), size, repeats, slow_repeats, with_slow=False)
    if peers and small_size:
        for name in maps:
            rows += _one_off_rows(name, MAPS[name](small_size), small_size, repeats, slow_repeats,
                                  with_slow=True)
    if short_size and short_queries:
        rows += _short_rows(short_size, short_queries)
    return rows


def format_table(rows) -> str:
    cols = ["map", "size", "connectivity", "impl", "median_ms", "ratio_vs_pyastar2d", "cost_ok"]
    head = " | ".join(cols) + " | notes"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(" | ".join(str(r.get(c)) for c in cols) + " | " + str(r.get("notes", "")))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--small", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--slow-repeats", type=int, default=3)
    ap.add_argument("--short-size", type=int, default=2048)
    ap.add_argument("--short-queries", type=int, default=100)
    ap.add_argument("--maps", nargs="+", default=list(MAPS), choices=list(MAPS))
    ap.add_argument("--no-peers", action="store_true", help="skip pathfinding and networkx")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = run_astar(args.size, args.small, args.repeats, args.slow_repeats, args.short_size,
                     args.short_queries, tuple(args.maps), not args.no_peers)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()

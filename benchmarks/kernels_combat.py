"""Combat tick benchmark: the compiled kernel vs a numba port, the NumPy/SciPy peer and the
pure-Python twin.

Every implementation runs on its own copy of the same seeded battle: a few warm-up ticks (they
also absorb numba's compilation), then timed ticks (median / p90 milliseconds per tick). The
compiled kernel's events of every tick and its states are the reference; every other
implementation must match them bit for bit (float arrays compared as raw 64-bit patterns).

The battles: N ships spread uniformly over a square, 4 teams, range 20-60, speed 2-8,
fire_rate 0-5, hp 50-200. "uniform": about 900 square world units per ship (bounded density),
so that targeting mixes in-range threat choice and sensor fallback. "dense" (issue 17): 10,000
ships at DENSE_AREA_PER_SHIP square units each, about 20 enemies within weapon range of each
ship at tick 0 (the script prints the measured mean).

Usage: pip install numba  (benchmark-only; without it the numba peer is skipped), then
    python benchmarks/kernels_combat.py [--sizes 1000 10000 50000] [--dense 10000] [--ticks 20]
``run_combat`` is also imported by benchmarks/kernels.py.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

AREA_PER_SHIP = 900.0
DENSE_AREA_PER_SHIP = 195.0  # ~20 enemies within range of each ship at tick 0 (printed)
TEAMS = 4
SEED = 20250611


def make_battle(n: int, seed: int = 1, area_per_ship: float = AREA_PER_SHIP) -> dict[str, np.ndarray]:
    """A seeded battle of ``n`` ships (the 16 arrays of specs/combat.md §1) on a square of
    ``n * area_per_ship`` square world units."""
    rng = np.random.default_rng([seed, n])
    side = math.sqrt(n * area_per_ship)
    hp = rng.integers(50, 201, n).astype(np.int64)
    return {
        "id": (np.arange(n, dtype=np.int64) * 3 + 100),
        "team": rng.integers(0, TEAMS, n).astype(np.int64),
        "x": rng.uniform(0.0, side, n),
        "y": rng.uniform(0.0, side, n),
        "vx": rng.uniform(-2.0, 2.0, n),
        "vy": rng.uniform(-2.0, 2.0, n),
        "heading": np.zeros(n),
        "max_hp": np.full(n, 200, dtype=np.int64),
        "hp": hp,
        "attack": rng.uniform(10.0, 40.0, n),
        "defense": rng.uniform(5.0, 30.0, n),
        "speed": rng.uniform(2.0, 8.0, n),
        "range": rng.uniform(20.0, 60.0, n),
        "fire_rate": rng.integers(0, 6, n).astype(np.int64),
        "last_fired": np.full(n, -1_000_000_000, dtype=np.int64),
        "target_id": np.full(n, -1, dtype=np.int64),
    }


def enemies_in_range(state) -> float:
    """Mean number of live enemies j with d(i, j) <= range[i] over the live ships i (cKDTree
    candidates, then the exact distance of spec §2)."""
    from scipy.spatial import cKDTree

    live = np.flatnonzero(state["hp"] > 0)
    x, y, team, rng = (state[k][live] for k in ("x", "y", "team", "range"))
    tree = cKDTree(np.column_stack([x, y]))
    total = 0
    for i, cand in enumerate(tree.query_ball_point(np.column_stack([x, y]), rng * (1 + 1e-9) + 1e-9)):
        cand = np.asarray(cand, dtype=np.int64)
        dx = x[cand] - x[i]
        dy = y[cand] - y[i]
        total += int(np.count_nonzero((np.sqrt((dx * dx) + (dy * dy)) <= rng[i]) & (team[cand] != team[i])))
    return total / max(1, len(live))


def _copy(state):
    return {k: v.copy() for k, v in state.items()}


def _same_state(a, b) -> bool:
    return all(np.array_equal(a[k].view(np.int64), b[k].view(np.int64)) for k in a)


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _impls():
    from starhold.kernels import combat
    from starhold.kernels.combat_numpy import combat_tick_numpy

    impls = {}
    if combat.COMPILED:
        impls["compiled"] = combat.combat_tick
    try:
        from kernels_combat_numba import combat_tick_numba
    except ImportError:  # numba not installed: a benchmark-only peer
        pass
    else:
        impls["numba"] = combat_tick_numba
    impls["numpy"] = combat_tick_numpy
    impls["python"] = combat.combat_tick_py
    return impls


def _run(fn, state, first_tick, count, seed):
    """Run ``count`` ticks from ``first_tick``; returns (events per tick, seconds per tick)."""
    events, times = [], []
    for t in range(first_tick, first_tick + count):
        t0 = time.perf_counter()
        ev = fn(state, t, seed)
        times.append(time.perf_counter() - t0)
        events.append(np.asarray(ev))
    return events, times


def _plan(impls, n, ticks, warmup, python_max_n, python_ticks):
    plan = {}
    for name in impls:
        if name == "python":
            if n > python_max_n:
                continue
            plan[name] = (min(warmup, 1), python_ticks)
        elif name == "numpy" and n >= 50000:
            plan[name] = (warmup, max(5, ticks // 4))
        else:
            plan[name] = (warmup, ticks)
    return plan


def run_combat(sizes=(1000, 10000, 50000), ticks=20, warmup=3, python_max_n=1000, python_ticks=3,
               seed=SEED, dense=None) -> list[dict]:
    """Benchmark the combat implementations; one row per (scenario, implementation, N).

    Rows: ``{"scenario", "impl", "n", "median_ms", "p90_ms", "ratio_vs_numpy", "ratio_vs_numba",
    "bit_exact", "ticks"}`` (and ``"enemies_in_range"`` for the dense scenario). ``scenario`` is
    "uniform" (one per N in ``sizes``, AREA_PER_SHIP) or "dense" (``dense`` ships at
    DENSE_AREA_PER_SHIP; none when ``dense`` is None). ``impl`` is "compiled"
    (starhold.kernels._combat), "numba" (kernels_combat_numba, when numba is installed), "numpy"
    (combat_numpy, cKDTree) or "python" (the twin; only for N <= ``python_max_n``,
    ``python_ticks`` timed ticks). The NumPy peer times ``ticks // 4`` ticks (>= 5) at
    N >= 50,000. Ratios are median over median in the same run (NaN without the peer).
    ``bit_exact``: the implementation's events of every tick and its final state equal the
    reference's (the compiled kernel, or the NumPy peer when the extension is not built) after
    the same ticks; the reference's row says whether all of them did.
    """
    impls = _impls()
    scenarios = [("uniform", n, AREA_PER_SHIP) for n in sizes]
    if dense:
        scenarios.append(("dense", dense, DENSE_AREA_PER_SHIP))
    rows = []
    for scenario, n, area in scenarios:
        battle = make_battle(n, seed, area)
        plan = _plan(impls, n, ticks, warmup, python_max_n, python_ticks)
        ref_name = "compiled" if "compiled" in plan else "numpy"
        # reference: events of every tick and the state after each total tick count needed
        total = max(w + c for w, c in plan.values())
        ref_state = _copy(battle)
        ref_events, ref_states = [], {}
        needed = {w + c for w, c in plan.values()}
        ref_fn = impls[ref_name]
        for t in range(total):
            ref_events.append(np.asarray(ref_fn(ref_state, t, seed)))
            if t + 1 in needed:
                ref_states[t + 1] = _copy(ref_state)
        results = {}
        for name, (w, c) in plan.items():
            state = _copy(battle)
            ev_w, _ = _run(impls[name], state, 0, w, seed)
            ev_c, times = _run(impls[name], state, w, c, seed)
            evs = ev_w + ev_c
            exact = (all(np.array_equal(a, b) for a, b in zip(evs, ref_events))
                     and _same_state(state, ref_states[w + c]))
            ms = [s * 1e3 for s in times]
            results[name] = {"scenario": scenario, "impl": name, "n": n,
                             "median_ms": float(np.median(ms)), "p90_ms": float(_pct(ms, 0.9)),
                             "bit_exact": bool(exact), "ticks": c}
        if ref_name in results:
            results[ref_name]["bit_exact"] = all(r["bit_exact"] for r in results.values())
        peers = {k: results.get(k, {}).get("median_ms") for k in ("numpy", "numba")}
        for name in plan:
            r = results[name]
            for k, base in peers.items():
                r[f"ratio_vs_{k}"] = (r["median_ms"] / base) if base else float("nan")
            if scenario == "dense":
                r["enemies_in_range"] = enemies_in_range(battle)
            rows.append(r)
    return rows


def format_rows(rows) -> str:
    lines = [f"{'scenario':<9}{'impl':<10}{'N':>7}{'median ms':>11}{'p90 ms':>9}{'x numpy':>9}"
             f"{'x numba':>9}{'ticks':>6}  bit-exact"]
    for r in rows:
        lines.append(f"{r.get('scenario', 'uniform'):<9}{r['impl']:<10}{r['n']:>7}{r['median_ms']:>11.3f}"
                     f"{r['p90_ms']:>9.3f}{r['ratio_vs_numpy']:>9.3f}{r.get('ratio_vs_numba', math.nan):>9.3f}"
                     f"{r['ticks']:>6}  {r['bit_exact']}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    parser.add_argument("--dense", type=int, default=10000, help="ships of the dense battle (0: none)")
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rows = run_combat(tuple(args.sizes), ticks=args.ticks, dense=args.dense or None)
    print(format_rows(rows))
    dense = {r["impl"]: r for r in rows if r["scenario"] == "dense"}
    if dense:
        any_row = next(iter(dense.values()))
        print(f"dense battle: {any_row['n']} ships, {DENSE_AREA_PER_SHIP:g} square units per ship, "
              f"{any_row['enemies_in_range']:.1f} enemies in range per ship at tick 0 (mean)")
        c = dense.get("compiled")
        if c:
            for peer in ("numba", "numpy"):
                if peer in dense:
                    print(f"dense: compiled {c['median_ms']:.3f} ms/tick, {peer} "
                          f"{dense[peer]['median_ms']:.3f} ms/tick, compiled/{peer} = "
                          f"{c[f'ratio_vs_{peer}']:.3f}" + ("  (target <= 0.5)" if peer == "numba" else ""))
            print(f"bit-exact (every tick's events and the final state): {c['bit_exact']}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

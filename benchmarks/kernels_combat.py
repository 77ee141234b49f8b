"""Combat tick benchmark: the compiled kernel vs the NumPy/SciPy peer vs the pure-Python twin.

Every implementation runs on its own copy of the same seeded battle: a few warm-up ticks, then
timed ticks (median / p90 milliseconds per tick). The compiled kernel's events of every tick
and its states are the reference; every other implementation must match them bit for bit
(float arrays compared as raw 64-bit patterns).

The battle: N ships spread uniformly over a square whose area grows with N (bounded density,
about 900 square world units per ship), 4 teams, range 20-60, speed 2-8, fire_rate 0-5,
hp 50-200, so that targeting mixes in-range threat choice and sensor fallback.

Usage: python benchmarks/kernels_combat.py [--sizes 1000 10000 50000] [--ticks 20]
``run_combat`` is also imported by benchmarks/kernels.py.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

AREA_PER_SHIP = 900.0
TEAMS = 4
SEED = 20250611


def make_battle(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """A seeded battle of ``n`` ships (the 16 arrays of specs/combat.md §1)."""
    rng = np.random.default_rng([seed, n])
    side = math.sqrt(n * AREA_PER_SHIP)
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


def run_combat(sizes=(1000, 10000, 50000), ticks=20, warmup=3, python_max_n=1000, python_ticks=3,
               seed=SEED) -> list[dict]:
    """Benchmark the combat implementations; one row per (implementation, N).

    Rows: ``{"impl", "n", "median_ms", "p90_ms", "ratio_vs_numpy", "bit_exact", "ticks"}``.
    ``impl`` is "compiled" (starhold.kernels._combat), "numpy" (combat_numpy, cKDTree) or
    "python" (the twin; only for N <= ``python_max_n``, ``python_ticks`` timed ticks).
    The NumPy peer times ``ticks // 4`` ticks (>= 5) at N >= 50,000. ``bit_exact``: the
    implementation's events of every tick and its final state equal the reference's (the
    compiled kernel, or the NumPy peer when the extension is not built) after the same ticks.
    """
    impls = _impls()
    rows = []
    for n in sizes:
        battle = make_battle(n, seed)
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
            results[name] = {"impl": name, "n": n, "median_ms": float(np.median(ms)),
                             "p90_ms": float(_pct(ms, 0.9)), "bit_exact": bool(exact), "ticks": c}
        base = results.get("numpy", {}).get("median_ms")
        if ref_name in results:
            results[ref_name]["bit_exact"] = all(r["bit_exact"] for r in results.values())
        for name in plan:
            r = results[name]
            r["ratio_vs_numpy"] = (r["median_ms"] / base) if base else float("nan")
            rows.append(r)
    return rows


def format_rows(rows) -> str:
    lines = [f"{'impl':<10}{'N':>8}{'median ms':>12}{'p90 ms':>10}{'x numpy':>9}{'ticks':>7}  bit-exact"]
    for r in rows:
        lines.append(f"{r['impl']:<10}{r['n']:>8}{r['median_ms']:>12.3f}{r['p90_ms']:>10.3f}"
                     f"{r['ratio_vs_numpy']:>9.3f}{r['ticks']:>7}  {r['bit_exact']}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args(argv)
    print(format_rows(run_combat(tuple(args.sizes), ticks=args.ticks)))


if __name__ == "__main__":
    main()

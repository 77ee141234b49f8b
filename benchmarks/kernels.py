"""The kernels benchmark (issue 5): combat and A*, against their peers, in one run.

- **Combat** (``benchmarks/kernels_combat.py``): one tick of specs/combat.md at N = 1,000,
  10,000 and 50,000 ships: the Cython kernel against a vectorised NumPy/SciPy implementation of
  the same rules (``starhold.kernels.combat_numpy``, cKDTree neighbours) and the pure-Python
  twin (N = 1,000 only); every implementation's events and final state are checked bit for bit.
- **A*** (``benchmarks/kernels_astar.py``): seeded 1024x1024 maps (25 % random obstacles with
  costs 1-5, a maze, an open field with walls; 4- and 8-connected) against pyastar2d and tcod,
  and on 256x256 versions against the pure-Python ``pathfinding`` package and networkx; every
  path's cost is checked against ``scipy.sparse.csgraph.dijkstra``; and short paths (<= 50
  cells) on a 2048x2048 map through ``GridPathfinder`` (map kept) against pyastar2d per query.

Targets: combat at 10,000 ships <= 0.25x the NumPy/SciPy implementation, bit-exact; A* median
<= 1.0x pyastar2d on every 1024^2 map and connectivity; short paths >= 10x faster than
pyastar2d through ``GridPathfinder``.

    python benchmarks/kernels.py [--json results.json] [--quick]

Needs the ``bench`` extra: ``uv pip install -e ".[bench]"`` (scipy, pyastar2d, tcod,
pathfinding, networkx).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

COMBAT_TARGET = 0.25
ASTAR_TARGET = 1.0
SHORT_TARGET = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--quick", action="store_true", help="fewer ticks and repeats (a smoke run)")
    args = parser.parse_args()

    from kernels_astar import format_table as astar_table
    from kernels_astar import run_astar
    from kernels_combat import format_rows as combat_table
    from kernels_combat import run_combat

    from starhold.kernels import combat, pathfinding

    print(f"compiled kernels: combat {combat.COMPILED}, pathfinding {pathfinding.COMPILED}")
    if args.quick:
        combat_rows = run_combat(sizes=(1000, 10000), ticks=5)
        astar_rows = run_astar(repeats=2, slow_repeats=1, short_queries=20)
    else:
        combat_rows = run_combat()
        astar_rows = run_astar()

    print("\n## Combat tick (median ms per tick; x numpy = ratio to the NumPy/SciPy implementation)")
    print(combat_table(combat_rows))
    print("\n## A* (median ms per path; ratio to pyastar2d; cost checked against scipy dijkstra)")
    print(astar_table(astar_rows))

    print("\n## Targets")
    at_10k = [r for r in combat_rows if r["impl"] == "compiled" and r["n"] == 10000]
    exact = all(r["bit_exact"] for r in combat_rows)
    for r in at_10k:
        print(f"combat 10,000 ships: {r['ratio_vs_numpy']:.3f}x numpy (target <= {COMBAT_TARGET}), "
              f"bit-exact {exact}: {'met' if r['ratio_vs_numpy'] <= COMBAT_TARGET and exact else 'NOT met'}")
    ours = [r for r in astar_rows if r["impl"] in ("starhold", "starhold.astar_grid") and r["size"] == 1024]
    for r in ours:
        ratio = r.get("ratio_vs_pyastar2d")
        if ratio is not None:
            print(f"A* {r['map']} {r['size']}^2 {r['connectivity']}: {ratio:.3f}x pyastar2d "
                  f"(target <= {ASTAR_TARGET}): {'met' if ratio <= ASTAR_TARGET else 'NOT met'}")
    short = [r for r in astar_rows if "GridPathfinder" in str(r["impl"])]
    for r in short:
        ratio = r.get("ratio_vs_pyastar2d")
        if ratio:
            print(f"short paths {r['size']}^2 {r['connectivity']}: {1 / ratio:.1f}x faster than pyastar2d "
                  f"(target >= {SHORT_TARGET}): {'met' if 1 / ratio >= SHORT_TARGET else 'NOT met'}")
    costs_ok = all(r.get("cost_ok") in (True, None) for r in astar_rows)
    print(f"every A* path's cost matches dijkstra: {costs_ok}")
    if args.json:
        Path(args.json).write_text(json.dumps({"combat": combat_rows, "astar": astar_rows}, indent=2, default=str))


if __name__ == "__main__":
    main()

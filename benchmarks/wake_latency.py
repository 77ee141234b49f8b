"""Wake latency and commit rate of rooms on Ray.

1. Wake latency: a player is connected to Sol; the room hibernates (snapshot, actor exits,
   socket held by the gateway); the player's next input wakes it. Measured: time from sending
   the input to the first frame that acknowledges it, over ``--wakes`` wakes, with
   - local snapshots (the room's SQLite file is still on this node), and
   - S3 snapshots on a real SeaweedFS, the local file deleted before each wake (a wake on a
     node without the file: restore from S3).
2. Commits per second of a room with ``--ships`` ships moving (bots), over ``--seconds``.

Usage: python benchmarks/wake_latency.py [--wakes 50] [--ships 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def gateway(directory):
    from aiohttp.test_utils import TestServer

    from starhold.gateway.app import create_app

    server = TestServer(create_app(directory, web_dist=None), host="127.0.0.1", port=0)
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


async def wakes(mode: str, count: int, spec: dict | None, data: Path) -> list[float]:
    from starhold.client import StarholdClient
    from starhold._runtime.ray_host import RayDirectory, actor_name

    directory = RayDirectory({"data_dir": str(data), "idle_timeout": 600, "log_level": "WARNING",
                              "snapshots": spec}, namespace=f"bench-{mode}-{uuid.uuid4().hex[:6]}")
    server, url = await gateway(directory)
    name = actor_name("system", "sol")
    latencies = []
    async with StarholdClient(url, "Sol") as client:
        await client.join()
        for i in range(count + 1):
            handle = await directory.get_if_active("system", "sol")
            while (await handle.stats())["alarm"] is not None:  # let the 10 Hz loop come to rest
                await asyncio.sleep(0.1)
            await handle.hibernate()
            while name in await asyncio.to_thread(directory.actor_names):
                await asyncio.sleep(0.01)
            if spec is not None:  # a node without the local file: restore from S3
                for path in (data / "rooms" / "system").glob("sol.sqlite*"):
                    path.unlink()
            started = time.perf_counter()
            seq = await client.move_to(100.0 + i % 2, 50.0)  # a short hop: the loop rests soon
            await client.wait_for(lambda c: c.ack >= seq, timeout=30)
            if i:  # the first wake also pays for Ray's worker pool warming up
                latencies.append(time.perf_counter() - started)
    await server.close()
    return latencies


async def commit_rate(ships: int, seconds: float, data: Path) -> tuple[float, float]:
    from starhold.client.bots import run_bots
    from starhold._runtime.ray_host import RayDirectory

    directory = RayDirectory({"data_dir": str(data), "idle_timeout": 600, "log_level": "WARNING"},
                             namespace=f"bench-commits-{uuid.uuid4().hex[:6]}")
    server, url = await gateway(directory)
    task = asyncio.create_task(run_bots(url, "Sol", ships, duration=seconds + 3, seed=2))
    await asyncio.sleep(3)  # everyone joined and flying
    handle = await directory.get("system", "sol")
    before = await handle.stats()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    after = await handle.stats()
    elapsed = time.perf_counter() - started
    await task
    await server.close()
    return (after["commits"] - before["commits"]) / elapsed, (after["events"] - before["events"]) / elapsed


async def main(args) -> None:
    import ray

    from starhold._runtime.ray_host import init_ray
    from starhold.testing_s3 import _start_weed, weed_binary

    init_ray(namespace="bench", logging_level="WARNING")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        local = await wakes("local", args.wakes, None, Path(tmp) / "local")
        rows.append(("local snapshots (file on this node)", local))
        (Path(tmp) / "weed").mkdir()
        weed, log = _start_weed(weed_binary(), Path(tmp) / "weed", Path(tmp) / "weed.log")
        if weed is None:
            raise SystemExit(f"SeaweedFS did not start: {log}")
        try:
            bucket = weed.create_bucket()
            spec = {"kind": "s3", "bucket": bucket, "endpoint_url": weed.endpoint_url,
                    "aws_access_key_id": weed.access_key, "aws_secret_access_key": weed.secret_key}
            s3 = await wakes("s3", args.wakes, spec, Path(tmp) / "s3")
            rows.append(("S3 snapshots, SeaweedFS (no local file)", s3))
        finally:
            weed.stop()
        commits, events = await commit_rate(args.ships, args.seconds, Path(tmp) / "commits")
    print(f"\nwake latency: hibernated room -> first frame acknowledging the waking input ({args.wakes} wakes)")
    print(f"{'':42} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    for label, values in rows:
        ms = [v * 1000 for v in values]
        print(f"{label:42} {pct(ms, .5):8.1f} {pct(ms, .99):8.1f} {statistics.mean(ms):8.1f} {max(ms):8.1f}")
    print(f"\nSol with {args.ships} moving ships: {commits:.1f} SQLite commits/s, {events:.1f} client events/s")
    ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wakes", type=int, default=50)
    parser.add_argument("--ships", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))

"""Wake latency, cold-join latency and commit rate of rooms on Ray, with room hosts and as before.

1. Wake latency: a player is connected to Sol; the room hibernates (snapshot, activation
   ends, socket held by the gateway); the player's next input wakes it. Measured: time from
   sending the input to the first frame that acknowledges it, over ``--wakes`` wakes, with
   - local snapshots (the room's SQLite file is still on this node), and
   - S3 snapshots on a real SeaweedFS, the local file deleted before each wake (a wake on a
     node without the file: restore from S3).
2. Cold join: Sol asleep, a new player (guest token made beforehand, not timed) connects and
   joins: time from opening the socket to the ``welcome`` (which also wakes the player's new
   pilot room), over ``--wakes`` joins.
3. Commits per second of a room with ``--ships`` ships moving (bots), over ``--seconds``.

1 and 2 run twice in the same run: with room hosts as ``starhold serve`` runs them (defaults:
10 rooms per host, 2 spare hosts, ``starhold._runtime.host_pool``), and as rooms ran before
room hosts, a new Ray actor process per activation (``rooms_per_host=1``, no spare, and the
room's host killed after each hibernation, so each wake creates an actor, imports the room
code and opens storage). The ratio column is before / hosts.

Usage: python benchmarks/wake_latency.py [--wakes 30] [--ships 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
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


HOSTS = {}
"""Room host settings of the "hosts" runs: the defaults."""
BEFORE = {"rooms_per_host": 1, "spare_hosts": 0}
"""Room host settings of the "before" runs (plus a kill of the room's host after each hibernation)."""


async def hibernate(directory, kind: str, room_id: str, kill_host: bool) -> None:
    """Hibernate the room once its loop rests; with ``kill_host`` end its host process too, so
    that its next activation starts in a new actor process (the behaviour before room hosts)."""
    import ray

    handle = await directory.get_if_active(kind, room_id)
    while (await handle.stats())["alarm"] is not None:  # let the 10 Hz loop come to rest
        await asyncio.sleep(0.1)
    host = (await handle.stats())["host"]
    await handle.hibernate()
    while f"{kind}/{room_id}" in await directory.list_rooms():
        await asyncio.sleep(0.01)
    if kill_host:
        ray.kill(ray.get_actor(host, namespace=directory.namespace), no_restart=True)
        while host in await asyncio.to_thread(directory.host_names):
            await asyncio.sleep(0.01)


def directory_for(mode: str, spec: dict | None, data: Path, hosts: dict):
    from starhold._runtime.ray_host import RayDirectory

    return RayDirectory({"data_dir": str(data), "idle_timeout": 600, "log_level": "WARNING", "snapshots": spec,
                         **hosts}, namespace=f"bench-{mode}-{uuid.uuid4().hex[:6]}")


async def wakes(mode: str, count: int, spec: dict | None, data: Path, hosts: dict) -> list[float]:
    from starhold.client import StarholdClient
    from starhold._runtime.host_pool import kill_namespace

    directory = directory_for(mode, spec, data, hosts)
    server, url = await gateway(directory)
    latencies = []
    try:
        async with StarholdClient(url, "Sol") as client:
            await client.join()
            for i in range(count + 1):
                await hibernate(directory, "system", "sol", hosts is BEFORE)
                if spec is not None:  # a node without the local file: restore from S3
                    for path in (data / "rooms" / "system").glob("sol.sqlite*"):
                        path.unlink()
                started = time.perf_counter()
                seq = await client.move_to(100.0 + i % 2, 50.0)  # a short hop: the loop rests soon
                await client.wait_for(lambda c: c.ack >= seq, timeout=30)
                if i:  # the first wake also pays for Ray's worker pool warming up
                    latencies.append(time.perf_counter() - started)
    finally:
        await server.close()
        kill_namespace(directory.namespace)
    return latencies


async def cold_joins(mode: str, count: int, data: Path, hosts: dict) -> list[float]:
    from starhold.client import StarholdClient, guest_token
    from starhold._runtime.host_pool import kill_namespace

    directory = directory_for(mode, None, data, hosts)
    server, url = await gateway(directory)
    latencies = []
    try:
        for i in range(count + 1):
            token = (await guest_token(url, f"cold{i}"))["token"]
            if i:
                await hibernate(directory, "system", "sol", hosts is BEFORE)
            started = time.perf_counter()
            async with StarholdClient(url, "Sol", token=token) as client:
                await client.join()
                if i:
                    latencies.append(time.perf_counter() - started)
    finally:
        await server.close()
        kill_namespace(directory.namespace)
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


def row(label: str, hosts: list[float], before: list[float]) -> str:
    h, b = [v * 1000 for v in hosts], [v * 1000 for v in before]
    return (f"{label:44} {pct(h, .5):8.1f} {pct(h, .99):8.1f} {max(h):8.1f}   {pct(b, .5):8.1f} {pct(b, .99):8.1f}"
            f"   {pct(b, .5) / pct(h, .5):5.1f}x {pct(b, .99) / pct(h, .99):5.1f}x")


async def main(args) -> None:
    import ray

    from starhold._runtime.ray_host import init_ray
    from starhold.testing_s3 import _start_weed, weed_binary

    init_ray(namespace="bench", logging_level="WARNING")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        rows.append(("wake, local snapshot (file on this node)",
                     await wakes("local", args.wakes, None, t / "local", HOSTS),
                     await wakes("local-before", args.wakes, None, t / "local-before", BEFORE)))
        (t / "weed").mkdir()
        weed, log = _start_weed(weed_binary(), t / "weed", t / "weed.log")
        if weed is None:
            raise SystemExit(f"SeaweedFS did not start: {log}")
        try:
            bucket = weed.create_bucket()
            spec = {"kind": "s3", "bucket": bucket, "endpoint_url": weed.endpoint_url,
                    "aws_access_key_id": weed.access_key, "aws_secret_access_key": weed.secret_key}
            rows.append(("wake, S3 snapshot on SeaweedFS (no local file)",
                         await wakes("s3", args.wakes, spec, t / "s3", HOSTS),
                         await wakes("s3-before", args.wakes, spec, t / "s3-before", BEFORE)))
        finally:
            weed.stop()
        rows.append(("cold join -> welcome (system + new pilot room)",
                     await cold_joins("join", args.wakes, t / "join", HOSTS),
                     await cold_joins("join-before", args.wakes, t / "join-before", BEFORE)))
        commits, events = await commit_rate(args.ships, args.seconds, t / "commits")
    print(f"\nhibernated room -> first frame acknowledging the waking input; cold join -> welcome ({args.wakes} each)")
    print(f"{'':44} {'room hosts (default)':>26}   {'before: a process per wake':>17}   {'before / hosts':>12}")
    print(f"{'':44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   {'p50 ms':>8} {'p99 ms':>8}   {'p50':>6} {'p99':>6}")
    for label, hosts, before in rows:
        print(row(label, hosts, before))
    print(f"\nSol with {args.ships} moving ships: {commits:.1f} SQLite commits/s, {events:.1f} client events/s")
    ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wakes", type=int, default=30)
    parser.add_argument("--ships", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))

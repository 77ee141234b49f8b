"""Join latency (cold and warm room) and Ray calls per second of a busy room.

Runs a local Ray and a gateway on 127.0.0.1 in this process, then measures:
- cold join: the system's room is hibernated (no activation): connect + join -> first frame;
- warm join: the room is awake (a client is present): connect + join -> first frame;
- Ray calls per second while ``--bots`` bots fly in one system, and messages per second.

Usage: python benchmarks/join_latency.py [--rounds 10] [--bots 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time

import aiohttp


async def join_to_first_frame(url: str, system: str) -> float:
    from starhold.client import StarholdClient, guest_token

    token = (await guest_token(url, "bench"))["token"]  # not timed: a player logs in once
    started = time.perf_counter()
    async with StarholdClient(url, system, token=token) as client:
        await client.join()
        await client.wait_for(lambda c: c.frames > 0)
        return time.perf_counter() - started


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"p50 {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   max {ms[-1]:7.1f} ms   (n={len(ms)})"


async def main(args: argparse.Namespace) -> None:
    from aiohttp.test_utils import TestServer

    from starhold.client.bots import run_bots
    from starhold.client import StarholdClient
    from starhold.gateway.app import create_app
    from starhold._runtime.ray_host import RAY_CALLS, RayDirectory, init_ray

    t0 = time.perf_counter()
    init_ray(namespace="bench", logging_level="WARNING")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    data = tempfile.mkdtemp(prefix="starhold-bench-")
    directory = RayDirectory({"data_dir": data, "idle_timeout": 60, "log_level": "WARNING"}, namespace="bench")
    server = TestServer(create_app(directory, web_dist=None), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    cold, warm = [], []
    for i in range(args.rounds):
        system = "Sol"
        cold.append(await join_to_first_frame(url, system))
        # hibernate the room: the next join is cold (a new activation, restored from SQLite)
        await (await directory.get_if_active("system", "sol")).hibernate()
        while "system/sol" in await directory.list_rooms():
            await asyncio.sleep(0.02)
    async with StarholdClient(url, "Sol") as keeper:
        await keeper.join()
        for i in range(args.rounds * 2):
            await asyncio.sleep(random.uniform(0, 0.1))  # do not stay in phase with the ticks
            warm.append(await join_to_first_frame(url, "Sol"))

        print(f"join -> first frame, cold room (activation started, state loaded): {summary(cold)}")
        print(f"join -> first frame, warm room:{' ' * 36}{summary(warm)}")

        before = dict(RAY_CALLS)
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/healthz") as r:
                h0 = await r.json()
        started = time.perf_counter()
        await run_bots(url, "Sol", args.bots, duration=args.seconds, seed=1)
        elapsed = time.perf_counter() - started
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/healthz") as r:
                h1 = await r.json()
    calls = {k: RAY_CALLS[k] - before.get(k, 0) for k in RAY_CALLS}
    total = sum(calls.values())
    msgs_in = h1.get("messages_in", 0) - h0.get("messages_in", 0)
    msgs_out = h1.get("messages_out", 0) - h0.get("messages_out", 0)
    print(f"{args.bots} bots (+1 idle client) in Sol for {elapsed:.1f} s:")
    print(f"  Ray calls: {total / elapsed:.1f}/s total  ({', '.join(f'{k} {v / elapsed:.1f}/s' for k, v in sorted(calls.items()) if v)})")
    print(f"  client messages in: {msgs_in / elapsed:.1f}/s   frames/messages out: {msgs_out / elapsed:.1f}/s")
    print(f"  ratio: {msgs_out / max(total, 1):.1f} messages delivered per Ray call")
    await server.close()
    ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)

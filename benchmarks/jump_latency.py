"""What a jump costs a player on Ray: the time from the end of the transit (the `jump`
message's arrival time) to the `welcome` of the target system, when the target system was
asleep before the jump (its room wakes during the transit: the pilot room posts `expect` to
it when the jump is committed) and, for comparison, the same join of a sleeping system with
no jump before it (a cold join).

A Python client ping-pongs between Sol and its nearest neighbour (it arrives at the jump point
back, so each jump is transit only); between jumps the system it left hibernates (the idle
timeout is 2 s and the next jump waits for it).

Usage: python benchmarks/jump_latency.py [--jumps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from wake_latency import gateway, pct


async def run(jumps: int, data: Path) -> tuple[list[float], list[float], list[float]]:
    from starhold._runtime.ray_host import RayDirectory
    from starhold.client import StarholdClient

    directory = RayDirectory({"data_dir": str(data), "idle_timeout": 2.0, "log_level": "WARNING"}, namespace="jumps")
    server, url = await gateway(directory)
    after_transit, transit, cold = [], [], []
    try:
        async with StarholdClient.for_system(url, "sol", name="Bench") as client:
            welcome = await client.join()
            lanes = {lane["id"]: lane for lane in welcome["system"]["lanes"]}
            other = min(lanes, key=lambda i: lanes[i]["parsecs"])
            here = "sol"
            for _ in range(jumps):
                target = other if here == "sol" else "sol"
                while await directory.is_active("system", target):  # the target sleeps before the jump
                    await asyncio.sleep(0.2)
                count = len(client.jumps)
                await client.jump(target)
                await client.wait_for(lambda c: len(c.jumps) > count, timeout=60)
                got_jump = time.monotonic()
                wait = client.jumps[-1]["wait"]
                await client.wait_for(lambda c: c.connected and c.welcome["system"]["id"] == target, timeout=60)
                arrived = time.monotonic()
                transit.append(wait)
                after_transit.append(arrived - got_jump - wait)
                here = target
            token = client.token
        # Cold joins for comparison: the same pilot joins the system its ship is in, asleep.
        for _ in range(min(jumps, 5)):
            while await directory.is_active("system", here):
                await asyncio.sleep(0.2)
            started = time.monotonic()
            async with StarholdClient.for_system(url, here, token=token) as again:
                await again.join()
                cold.append(time.monotonic() - started)
    finally:
        await server.close()
        await directory.close(hibernate_rooms=False)
    return after_transit, transit, cold


async def main(args) -> None:
    import ray

    from starhold._runtime.ray_host import init_ray

    init_ray(namespace="bench", logging_level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        after, transit, cold = await run(args.jumps, Path(tmp))
    ray.shutdown()
    ms = lambda v: f"p50 {1000 * statistics.median(v):.0f} ms, p90 {1000 * pct(v, 0.9):.0f} ms, max {1000 * max(v):.0f} ms"  # noqa: E731
    print(f"{len(after)} jumps, transit {min(transit):.1f}-{max(transit):.1f} s")
    print(f"end of transit -> welcome of the target (woken during the transit): {ms(after)}")
    print(f"cold join of a sleeping system, no jump before:                   {ms(cold)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jumps", type=int, default=10)
    asyncio.run(main(parser.parse_args()))

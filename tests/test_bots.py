"""``starhold bots``: bots join and fly around (gateway on 127.0.0.1, rooms in-process)."""

import asyncio
import math

import aiohttp

from starhold.rooms import protocol as P
from starhold.client.bots import run_bots
from starhold._runtime.local_host import InProcessDirectory


async def test_bots_join_and_fly(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    await run_bots(url, "Sol", count=3, duration=1.5, seed=4)
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # the bots' close events reach the room just after they return
            async with session.get(url + "/api/systems/sol/state") as resp:
                ships = {s["name"]: s for s in (await resp.json())["ships"] if not s["flags"] & P.SHIP_NPC}
            if not ships:
                break
            await asyncio.sleep(0.05)
    assert ships == {}  # the bots left: their ships docked, out of the system's state
    room = directory.runtime("system", "sol").room
    # Each docked ship went back to its pilot room; the system keeps a local copy of its state.
    parked = {r["ship"]["name"]: r["ship"] for r in (await room.storage.list(prefix="dockstate:")).values()}
    assert set(parked) == {"bot-1", "bot-2", "bot-3"}
    # every bot left its spawn circle (radius 150) toward a random target
    now = room.clock.now()
    assert all(abs(math.hypot(*room.position(r, now)[:2]) - 150.0) > 1.0 for r in parked.values())
    await directory.close()

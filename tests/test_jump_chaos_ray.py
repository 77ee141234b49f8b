"""Jumps on real Ray with real kills: a Python client (through a real gateway) jumps back and
forth between Sol and its nearest neighbour (it arrives at the jump point back, so each jump is
mostly transit) while the test SIGKILLs the process of the system it leaves, the system it aims
at, or its pilot room (the first of them, in a random order, that is awake), at a random
moment of each jump. After every jump the ship is in
exactly one place (the pilot room's profile and the systems' states agree) and the client,
which reconnects and follows its ship by itself, flies on."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import aiohttp
import pytest

from starhold.client import StarholdClient

pytestmark = pytest.mark.ray

JUMPS = 6


async def kill(ray_directory, kind: str, room_id: str) -> bool:
    handle = await ray_directory.get_if_active(kind, room_id)
    if handle is None:
        return False
    try:
        pid = (await handle.stats())["pid"]
    except Exception:  # noqa: BLE001 - it is going away anyway
        return False
    os.kill(pid, signal.SIGKILL)
    return True


async def where(http, url: str, token: str, player: str, systems: list[str]) -> tuple[dict, dict[str, int]]:
    """The pilot's profile and, per system, how many ships of that pilot its state lists."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{url}/api/player/{player}", headers=headers) as r:
        profile = await r.json()
    counts = {}
    for system in systems:
        async with http.get(f"{url}/api/systems/{system}/state", headers=headers) as r:
            state = await r.json()
        counts[system] = sum(1 for s in state.get("ships", ()) if s["name"] == "Chaos")
    return profile, counts


async def test_jumps_on_ray_with_killed_actors(ray_directory, gateway_factory):
    url = await gateway_factory(ray_directory)
    rng = random.Random(14)
    kills = []
    async with aiohttp.ClientSession() as http, StarholdClient.for_system(url, "sol", name="Chaos") as client:
        welcome = await client.join()
        lanes = {lane["id"]: lane for lane in welcome["system"]["lanes"]}
        here, there = "sol", min(lanes, key=lambda i: lanes[i]["parsecs"])
        for n in range(JUMPS):
            origin, target = here, (there if here == "sol" else "sol")
            jumps_before = len(client.jumps)
            await client.jump(target)
            await asyncio.sleep(rng.uniform(0.0, 6.0))
            victims = [("system", origin), ("system", target), ("pilot", client.player)]
            rng.shuffle(victims)
            for victim in victims:  # the first of them that is awake (a sleeping room has no process)
                if await kill(ray_directory, *victim):
                    kills.append(victim[0] if victim[0] == "pilot" else ("origin" if victim[1] == origin else "target"))
                    break
            # The jump may not have happened (the order died with its room): order it again.
            for _ in range(6):
                try:
                    await client.wait_for(lambda c: len(c.jumps) > jumps_before, timeout=20)
                    break
                except TimeoutError:
                    if client.welcome and client.welcome["system"]["id"] == origin and client.connected:
                        await client.jump(target)
            await client.wait_for(lambda c: c.connected and c.welcome["system"]["id"] == target, timeout=90)
            profile, counts = await where(http, url, client.token, client.player, ["sol", there])
            assert profile["system"] == target and profile["transit"] is None, profile
            assert counts[target] == 1 and sum(counts.values()) == 1, counts  # one ship, in one place
            here = target
    assert len(kills) >= JUMPS // 2, kills

"""One ship across the galaxy on real Ray, through a real gateway: a Python client joins Sol,
jumps to a lane neighbour and follows its ship there without doing anything; the pilot room
(an actor called by the system actors) says where the ship is, and a rejoin of Sol is sent on."""

from __future__ import annotations

import aiohttp
import pytest

from starhold.client import StarholdClient
from starhold.rooms import protocol as P

pytestmark = pytest.mark.ray


async def test_a_jump_on_ray_and_the_client_follows(ray_directory, gateway_factory):
    url = await gateway_factory(ray_directory)
    async with StarholdClient.for_system(url, "sol", name="Jumper") as client:
        welcome = await client.join()
        lanes = {lane["id"]: lane for lane in welcome["system"]["lanes"]}
        assert lanes and welcome["system"]["station"]["radius"] > 0
        target = min(lanes, key=lambda i: lanes[i]["parsecs"])
        await client.jump(target)
        await client.wait_for(lambda c: c.welcome["system"]["id"] == target, timeout=120)
        assert client.jumps[-1]["from"] == "sol" and client.jumps[-1]["to"] == target
        player = client.player
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/player/{player}", headers={"Authorization": f"Bearer {client.token}"}) as r:
                profile = await r.json()
            assert r.status == 200, profile
            assert profile["system"] == target and profile["online"] and profile["hull"] == "corvette"
            async with http.get(f"{url}/api/player/not-a-player") as r:
                assert r.status == 404
        token = client.token
    # The same pilot opening Sol again is sent where the ship is.
    async with StarholdClient.for_system(url, "sol", token=token) as again:
        welcome = await again.join()
        assert welcome["system"]["id"] == target
        assert again.elsewhere["system"] == target
        assert any(e["code"] == P.ERR_ELSEWHERE for e in again.errors)

"""The gateway over real WebSockets on 127.0.0.1 with rooms in-process (no Ray): HTTP API,
bad input answered with error frames or close codes while everyone else carries on."""

import asyncio
import math

import aiohttp
import msgpack
import pytest

from starhold.rooms import protocol as P
from starhold.client import StarholdClient
from starhold._runtime.local_host import InProcessDirectory
from wire import guest_token


@pytest.fixture
async def url(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield await gateway_factory(directory)
    await directory.close()


async def get_json(url, path, status=200):
    async with aiohttp.ClientSession() as session, session.get(url + path) as resp:
        assert resp.status == status
        return await resp.json()


async def test_galaxy_lists_about_950_real_systems_with_lanes(url):
    galaxy = await get_json(url, "/api/galaxy")
    systems = {s["name"]: s for s in galaxy["systems"]}
    assert 900 <= len(systems) <= 1000
    for name in ("Sol", "Alpha Centauri A", "Proxima Centauri", "Sirius", "Tau Ceti", "Wolf 359"):
        assert name in systems
    assert systems["Sol"]["position"] == [0.0, 0.0, 0.0] and systems["Sol"]["id"] == "sol"
    assert systems["Alpha Centauri A"]["id"] in systems["Sol"]["lanes"]
    assert all(set(s) >= {"id", "name", "position", "color", "lanes", "players"} for s in galaxy["systems"])


async def test_system_endpoint_resolves_names_and_rejects_unknown(url):
    sol = await get_json(url, "/api/systems/SOL")
    assert sol["id"] == "sol" and len(sol["planets"]) == 8
    assert (await get_json(url, "/api/systems/alpha%20centauri%20a"))["id"] == "hip-71683"
    assert (await get_json(url, "/api/systems/Alpha%20Centauri"))["id"] == "hip-71683"
    assert await get_json(url, "/api/systems/nowhere", status=404) == {"error": "unknown system"}
    assert (await get_json(url, "/healthz"))["status"] == "ok"


async def test_unknown_system_socket_gets_error_then_close_4004(url):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url + "/api/systems/nowhere/ws?token=x")
        msg = await ws.receive()
        assert P.decode_server(msg.data) == (P.ERROR, 0, {"code": P.ERR_UNKNOWN_ROOM, "message": "unknown system"})
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == P.CLOSE_UNKNOWN_ROOM


BAD_MESSAGES = [
    (b"\xc1", P.ERR_MALFORMED),
    (b"\x93\xa4join", P.ERR_MALFORMED),
    (msgpack.packb(["warp", 5, {}]), P.ERR_UNKNOWN_TYPE),
    (msgpack.packb(["move_to", 6, {"x": "far", "y": 0}]), P.ERR_INVALID_FIELD),
    (msgpack.packb(["move_to", 7, {"x": math.nan, "y": 0}]), P.ERR_OUT_OF_RANGE),
    (msgpack.packb(["move_to", 8, {"x": math.inf, "y": 0}]), P.ERR_OUT_OF_RANGE),
    (msgpack.packb(["move_to", 9, {"x": 0, "y": 5000}]), P.ERR_OUT_OF_RANGE),
    (msgpack.packb(["join", 10, {}]), P.ERR_ALREADY_JOINED),
    ("not binary", P.ERR_MALFORMED),
]


async def test_bad_input_gets_error_frames_and_everyone_carries_on(url):
    async with StarholdClient(url, "Sol", name="Good") as good, StarholdClient(url, "Sol", name="Bad") as bad:
        await good.join()
        await bad.join()
        for data, code in BAD_MESSAGES:
            before = len(bad.errors)
            await bad.send_raw(data)
            await bad.wait_for(lambda c: len(c.errors) > before)
            assert bad.errors[-1]["code"] == code, data
        # the bad client is still connected and can play; the good one never noticed
        seq = await bad.move_to(10, 10)
        await bad.wait_for(lambda c: c.ack >= seq)
        seq = await good.move_to(-10, -10)
        await good.wait_for(lambda c: c.ack >= seq and c.ships[c.ship_id][2] & P.SHIP_MOVING)
        assert good.errors == [] and not good.closed and not bad.closed


async def test_input_before_join_and_ping(url):
    async with StarholdClient(url, "Sol") as client:
        await client.move_to(1, 1)
        await client.wait_for(lambda c: c.errors)
        assert client.errors[0]["code"] == P.ERR_NOT_JOINED
        seq = await client.send(P.PING, {})
        _, pong_seq, payload = await client.next_message(P.PONG)
        assert pong_seq == seq and payload["time"] > 0


async def test_oversized_message_closes_1009_and_others_continue(url):
    async with StarholdClient(url, "Sol") as other, StarholdClient(url, "Sol") as big:
        await other.join()
        await big.join()
        await big.send_raw(msgpack.packb(["move_to", 2, {"x": 1, "y": 1, "pad": "x" * 10_000}]))
        await big.wait_for(lambda c: c.closed, timeout=5)
        assert big.close_code == P.CLOSE_MESSAGE_TOO_BIG
        frames = other.frames
        seq = await other.move_to(5, 5)
        await other.wait_for(lambda c: c.ack >= seq and c.frames > frames + 2)


async def test_a_flood_of_invalid_messages_closes_4000(url):
    async with StarholdClient(url, "Sol") as client:
        await client.join()
        for _ in range(P.MAX_CONSECUTIVE_ERRORS):
            await client.send_raw(b"\xc1")
        await client.wait_for(lambda c: c.closed, timeout=5)
        assert client.close_code == P.CLOSE_PROTOCOL_ERROR
        assert len(client.errors) == P.MAX_CONSECUTIVE_ERRORS


async def test_inputs_reach_the_room_batched(url):
    async with StarholdClient(url, "Sol") as client:
        await client.join()
        seqs = [await client.move_to(i, -i) for i in range(1, P.INPUT_BURST - 5)]  # within the rate limit
        await client.wait_for(lambda c: c.ack == seqs[-1])
        assert client.ships[client.ship_id][2] & P.SHIP_MOVING
        health = await get_json(url, "/healthz")
        # one connect + 34 inputs travelled in a few calls (one per tick at most)
        assert health["batches_sent"] <= 5, health
        assert client.errors == []


async def test_rooms_endpoint_lists_live_activations(url):
    assert await get_json(url, "/api/rooms") == {"rooms": []}
    async with StarholdClient(url, "Sol") as client:
        await client.join()
        rooms = (await get_json(url, "/api/rooms"))["rooms"]
        # the system, and the pilot room of the player it checked the ship out from
        assert rooms == sorted(["system/sol", f"pilot/{client.player}"])


async def test_quick_rejoins_always_get_their_welcome(url):
    """A socket that leaves and a new one that joins right after share the room link's pull
    loop: the new socket's welcome must not be lost."""
    token, ship = None, None
    for _ in range(4):
        async with StarholdClient(url, "Sol", token=token, name="Quick") as client:
            welcome = await client.join(timeout=3)
            token = client.token
            assert ship in (None, welcome["ship"])  # the same player: the same ship
            ship = welcome["ship"]


async def test_socket_stays_open_through_hibernation_and_wakes_the_room(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=0.3)
    url = await gateway_factory(directory)
    async with StarholdClient(url, "Sol", name="Sleeper") as client:
        welcome = await client.join()
        for _ in range(200):  # the loop lingers 2 s, then 0.3 s idle: the room sleeps
            if (await get_json(url, "/api/rooms"))["rooms"] == []:
                break
            await asyncio.sleep(0.05)
        assert (await get_json(url, "/api/rooms"))["rooms"] == []
        assert not client.closed
        seq = await client.send(P.PING, {})  # answered by the gateway: the room sleeps on
        await client.next_message(P.PONG)
        assert (await get_json(url, "/api/rooms"))["rooms"] == []
        seq = await client.move_to(40.0, 40.0)  # wakes it; the frames carry our ack
        await client.wait_for(lambda c: c.ack == seq and c.ships[welcome["ship"]][2] & P.SHIP_MOVING)
        assert (await get_json(url, "/api/rooms"))["rooms"] == ["system/sol"]
    await directory.close()


async def test_a_gateway_process_serves_its_own_metrics_on_its_metrics_port():
    """``--metrics-port``: each gateway process's own /metrics, next to the shared port."""
    from starhold.gateway import metrics

    runner = await metrics.start_metrics_site("127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        metrics.TRAFFIC.messages_in += 3
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 404  # metrics only
        count = next(float(line.split()[1]) for line in text.splitlines()
                     if line.startswith("starhold_messages_in_total "))
        assert count == metrics.TRAFFIC.messages_in >= 3
    finally:
        await runner.cleanup()


async def test_an_anonymous_state_request_never_wakes_a_room(url):
    """``GET .../state`` without a token answers from an awake room only: a sleeping room gets
    401 and no activation is created; a valid token wakes it; an invalid one is 401."""
    async with aiohttp.ClientSession() as session:
        for path in ("/api/systems/sol/state", "/api/systems/Sirius/state"):
            async with session.get(url + path) as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
                assert "token" in (await resp.json())["error"]
        async with session.get(url + "/api/systems/sol/state?token=garbage") as resp:
            assert resp.status == 401
        assert await get_json(url, "/api/rooms") == {"rooms": []}  # nothing was activated
        token = await guest_token(session, url, "Reader")
        async with session.get(url + "/api/systems/sol/state", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200 and "ships" in await resp.json()
        rooms = (await get_json(url, "/api/rooms"))["rooms"]
        # the system, and the pilot room of the player it checked the ship out from
        assert [r for r in rooms if not r.startswith("pilot/")] == ["system/sol"]
        state = await get_json(url, "/api/systems/sol/state")  # awake now: anyone may read it
        assert state["players"] == 0
        rooms = (await get_json(url, "/api/rooms"))["rooms"]
        # the system, and the pilot room of the player it checked the ship out from
        assert [r for r in rooms if not r.startswith("pilot/")] == ["system/sol"]


async def test_an_oversized_url_gets_400_and_one_quiet_log_line(url, caplog):
    """A request line over aiohttp's 8 KB limit is the client's error: 400, and a one-line
    INFO log without a traceback (not an ERROR with one)."""
    import logging

    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/galaxy?q=" + "x" * 9000) as resp:
            assert resp.status == 400
        assert (await get_json(url, "/healthz"))["status"] == "ok"  # the gateway carries on
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelno <= logging.INFO and not r.exc_info and not r.exc_text for r in records)
    assert any("bad HTTP request" in r.getMessage() and "8190" in r.getMessage() for r in records)

"""Room affinity between the gateway processes of a node (``gateway/affinity.py``): a room's
WebSocket accepted by a gateway that is not the room's home is handed (the socket itself, by
file-descriptor passing) to the home gateway, which serves it; when the home cannot take it
the accepting gateway serves it itself. Two gateways in this process, real sockets on
127.0.0.1, rooms in-process."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestServer, make_mocked_request

from starhold.client import StarholdClient
from starhold.gateway.affinity import ROOM_HEADER, Handoff, home_process, request_head
from starhold.gateway.app import GATEWAY, create_app
from starhold.rooms.system import room as _system_room  # noqa: F401  (imported before the loop runs)
from starhold._runtime.local_host import InProcessDirectory


def test_home_process_is_stable_in_range_and_spreads_rooms():
    keys = [f"system/s{i}" for i in range(2000)]
    homes = [home_process(k, 2) for k in keys]
    assert homes == [home_process(k, 2) for k in keys]  # a pure function of the key
    assert set(homes) == {0, 1} and 900 < homes.count(1) < 1100
    assert {home_process(k, 5) for k in keys} == set(range(5))
    assert home_process("system/sol", 1) == 0


def test_the_head_handed_over_is_the_request_with_the_room_header_set_by_the_sender():
    request = make_mocked_request("GET", "/rooms/system/sol/ws?token=abc", headers={
        "Host": "127.0.0.1:8000", "Upgrade": "websocket", ROOM_HEADER: "system/forged"})
    head = request_head(request, "system/sol")
    assert head.startswith(b"GET /rooms/system/sol/ws?token=abc HTTP/1.1\r\n")
    assert b"Upgrade: websocket\r\n" in head and head.endswith(b"X-Starhold-Room: system/sol\r\n\r\n")
    assert b"forged" not in head  # a client cannot name the room a handed-off socket joins


@pytest.fixture
async def two_gateways(tmp_path):
    """Gateways 0 and 1 of a node (the same rooms, the same keys), each with its hand-off
    socket in ``tmp_path/handoff``: ``(servers, urls)``."""
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    servers = []
    for index in range(2):
        app = create_app(directory, web_dist=None, data_dir=tmp_path / "keys", shed_lag=0)
        app[GATEWAY].handoff = Handoff(index, 2, tmp_path / "handoff")
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
    yield servers, [str(s.make_url("")).rstrip("/") for s in servers]
    for server in servers:
        await server.close()
    for server in servers:
        await server.app[GATEWAY].handoff.close()
    await directory.close()


async def start_handoffs(servers, which=(0, 1)):
    for index in which:
        gateway = servers[index].app[GATEWAY]
        await gateway.handoff.start(gateway)


async def join_and_move(url: str) -> StarholdClient:
    client = StarholdClient.for_system(url, "Sol", name="Ada")
    await client.__aenter__()
    await client.join()
    seq = await client.move_to(50.0, 25.0)
    await client.wait_for(lambda c: c.ack >= seq)
    return client


async def test_a_socket_accepted_away_from_its_room_s_home_is_served_by_the_home(two_gateways, caplog):
    servers, urls = two_gateways
    await start_handoffs(servers)
    home = home_process("system/sol", 2)
    away = 1 - home
    with caplog.at_level(logging.DEBUG):
        client = await join_and_move(urls[away])  # the join is welcomed and the move acknowledged
        try:
            home_gw, away_gw = servers[home].app[GATEWAY], servers[away].app[GATEWAY]
            assert [s.identity.player for s in home_gw.sockets] == [client.player]
            assert away_gw.sockets == set() and away_gw.links == {}  # no link to the room from here
            assert away_gw.handoff.handed_off == 1 and home_gw.handoff.taken == 1
        finally:
            await client.__aexit__(None, None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


async def test_when_the_home_cannot_take_the_socket_the_accepting_gateway_serves_it(two_gateways):
    servers, urls = two_gateways
    home = home_process("system/sol", 2)
    away = 1 - home
    await start_handoffs(servers, which=(away,))  # the home is not listening (starting, or gone)
    client = await join_and_move(urls[away])
    try:
        away_gw = servers[away].app[GATEWAY]
        assert [s.identity.player for s in away_gw.sockets] == [client.player]
        assert away_gw.handoff.handed_off == 0
    finally:
        await client.__aexit__(None, None, None)


async def test_a_socket_accepted_by_the_room_s_home_stays_there(two_gateways):
    servers, urls = two_gateways
    await start_handoffs(servers)
    home = home_process("system/sol", 2)
    client = await join_and_move(urls[home])
    try:
        assert [s.identity.player for s in servers[home].app[GATEWAY].sockets] == [client.player]
        assert servers[home].app[GATEWAY].handoff.taken == 0
        assert servers[1 - home].app[GATEWAY].handoff.handed_off == 0
    finally:
        await client.__aexit__(None, None, None)


@pytest.mark.allow_blocking
async def test_a_served_node_keeps_each_room_s_sockets_in_one_gateway_process(tmp_path):
    """``starhold serve --gateways 2 --no-colocate``: the kernel spreads 8 connections to Sol
    over both processes; every one ends up served by Sol's home process, the others handed
    over. (With sockets in room hosts, the default, all but the waking one would go to Sol's
    host instead: ``tests/test_colocate.py``.)"""
    import aiohttp

    from starhold.rooms import protocol as P
    from served import STARTUP_TIMEOUT, metric, serve_with_metrics
    from wire import Wire, guest_token

    served, port, metrics_port = await serve_with_metrics(tmp_path / "data", "--shed-lag", "0", "--no-colocate",
                                                         gateways=2)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async def metrics(index: int) -> str:
                async with session.get(f"http://127.0.0.1:{metrics_port + index}/metrics") as response:
                    return await response.text()

            for index in range(2):  # both processes serve (the second may come up a little later)
                try:
                    async with asyncio.timeout(STARTUP_TIMEOUT):
                        while True:
                            try:
                                await metrics(index)
                                break
                            except aiohttp.ClientError:
                                await asyncio.sleep(0.2)
                except TimeoutError:
                    raise AssertionError(f"gateway {index} serves no metrics:\n{served.text}") from None
            wires = []
            for i in range(8):  # a new TCP connection each: the kernel picks the process
                wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, f"P{i}"))
                await wire.join(timeout=60)  # the first one wakes Sol
                await wire.send(P.MOVE_TO, 2, {"x": 10.0 * i, "y": 0.0})
                await wire.recv(P.FRAME, timeout=60, where=lambda p: p["ack"] == 2)
                wires.append(wire)
            texts = [await metrics(0), await metrics(1)]
            sockets = [metric(t, "starhold_connections") for t in texts]
            assert sorted(sockets) == [0.0, 8.0], (sockets, served.text)
            home = sockets.index(8.0)
            handed = metric(texts[1 - home], "starhold_socket_handoffs_total", 'direction="out"')
            assert metric(texts[home], "starhold_socket_handoffs_total", 'direction="in"') == handed
            assert metric(texts[1 - home], "starhold_socket_handoffs_total", 'direction="failed"') == 0
            for wire in wires:
                await wire.ws.close()
    finally:
        await served.stop()
    text = served.text
    for trouble in ("hand-off", "hand sockets", "room affinity", "CancelledError"):  # gateway/affinity.py's logs
        assert trouble not in text, text

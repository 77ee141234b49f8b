"""Sockets in room hosts (``gateway/colocate.py``, ``starhold serve``'s default): the upgrade of
a room awake on a host of this node is handed (the socket itself) to that host, whose own gateway
serves it over the in-process channel; a room that sleeps is woken on a host first, so its
first socket goes there too; a host that dies drops its sockets, whose clients rejoin and keep
their ships. Real Ray, real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from starhold.client import StarholdClient
from starhold.gateway.app import GATEWAY
from starhold.gateway.colocate import HostRouter

pytestmark = pytest.mark.ray


def host_config(keys) -> dict:
    """``gateway_config`` for a test gateway whose token keys live in ``keys``."""
    return {"rooms": None, "jwt_keys": None, "data_dir": str(keys), "snapshots": None, "shed_lag": 0,
            "options": {}}


async def join_and_move(url: str, name: str, x: float) -> StarholdClient:
    client = StarholdClient.for_system(url, "Sol", name=name)
    await client.__aenter__()
    await client.join(timeout=120)
    seq = await client.move_to(x, 25.0)
    await client.wait_for(lambda c: c.ack >= seq, timeout=120)
    return client


async def test_an_awake_room_s_sockets_are_served_by_its_host_and_survive_its_death_by_rejoining(
        ray_directory, gateway_factory, tmp_path):
    import ray

    keys = tmp_path / "keys"
    url = await gateway_factory(ray_directory, data_dir=keys)
    gateway = url.app[GATEWAY]
    gateway.hosts = HostRouter(ray_directory, host_config(keys))
    assert await ray_directory.get_if_active("system", "sol") is None
    first = await join_and_move(url, "Ada", 10.0)  # Sol sleeps: woken on a host, which serves the socket
    clients = [first]
    try:
        handle = await ray_directory.get_if_active("system", "sol")
        assert handle is not None and gateway.sockets == set()
        assert handle.host in gateway.hosts._serving
        second = await join_and_move(url, "Bob", 20.0)  # Sol is awake: its host serves this one too
        clients.append(second)
        assert gateway.sockets == set() and gateway.links == {}  # this gateway never linked to Sol
        # Both players are in one room: each sees the other's ship, and inputs keep being acked.
        await second.wait_for(lambda c: "Ada" in c.names.values(), timeout=120)
        await first.wait_for(lambda c: "Bob" in c.names.values(), timeout=120)
        seq = await second.move_to(30.0, 5.0)
        await second.wait_for(lambda c: c.ack >= seq, timeout=120)

        ship = second.ship_id
        ray.kill(handle.actor, no_restart=True)  # the host dies, and the sockets it held with it
        await second.wait_for(lambda c: c.reconnects >= 1 and c.connected, timeout=180)
        assert second.ship_id == ship  # the seat was resumed: the same ship
        seq = await second.move_to(40.0, 5.0)
        await second.wait_for(lambda c: c.ack >= seq, timeout=120)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def test_a_host_holding_sockets_is_not_retired(ray_directory, gateway_factory, tmp_path):
    keys = tmp_path / "keys"
    url = await gateway_factory(ray_directory, data_dir=keys)
    url.app[GATEWAY].hosts = HostRouter(ray_directory, host_config(keys))
    first = await join_and_move(url, "Ada", 10.0)  # both handed to Sol's host
    second = await join_and_move(url, "Bob", 20.0)
    try:
        handle = await ray_directory.get_if_active("system", "sol")
        assert await handle.actor.retire.remote() is False  # it holds Sol, and both sockets
        await first.__aexit__(None, None, None)
        assert await handle.hibernate()  # Sol leaves the host: only the socket keeps it
        async with asyncio.timeout(120):  # the host forgets Sol once its hibernation has ended
            while (await handle.actor.rooms.remote())["rooms"]:
                await asyncio.sleep(0.1)
        assert await handle.actor.retire.remote() is False
    finally:
        await second.__aexit__(None, None, None)
        await first.__aexit__(None, None, None)


async def test_a_host_that_cannot_take_sockets_leaves_them_with_the_gateway(ray_directory, gateway_factory, tmp_path):
    keys = tmp_path / "keys"
    url = await gateway_factory(ray_directory, data_dir=keys)
    gateway = url.app[GATEWAY]
    gateway.hosts = HostRouter(ray_directory, {**host_config(keys), "rooms": ["no.such.module"]})
    first = await join_and_move(url, "Ada", 10.0)
    second = await join_and_move(url, "Bob", 20.0)  # the host fails to build its gateway: served here
    try:
        assert sorted(s.identity.player for s in gateway.sockets) == sorted([first.player, second.player])
    finally:
        await second.__aexit__(None, None, None)
        await first.__aexit__(None, None, None)


@pytest.mark.allow_blocking
async def test_starhold_serve_hands_an_awake_room_s_sockets_to_its_host_by_default(tmp_path):
    """``starhold serve`` (``--colocate`` is its default): the first socket to Sol wakes it on a
    host, and every socket is handed to that host; every one's inputs are acknowledged, and
    the host's figures are in the gateway's /metrics under its name."""
    import aiohttp

    from starhold.rooms import protocol as P
    from served import hosted, metric, serve_with_metrics
    from wire import Wire, guest_token

    served, port, metrics_port = await serve_with_metrics(tmp_path / "data", "--shed-lag", "0")
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            wires = []
            for i in range(3):
                wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, f"P{i}"))
                await wire.join(timeout=120)
                await wire.send(P.MOVE_TO, 2, {"x": 10.0 * i, "y": 0.0})
                await wire.recv(P.FRAME, timeout=120, where=lambda p: p["ack"] == 2)
                wires.append(wire)
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                text = await response.text()
            assert metric(text, "starhold_connections") == 0.0, served.text  # none stayed here
            assert metric(text, "starhold_socket_handoffs_total", 'direction="out"') == 3.0, served.text
            assert metric(text, "starhold_socket_handoffs_total", 'direction="failed"') == 0.0
            # The host's own gateway is reported here too, labelled with the host's name.
            assert hosted(text, "starhold_connections") == [3.0], text
            assert sum(hosted(text, "starhold_messages_in_total")) >= 6.0  # 3 joins, 3 moves
            async with session.get(f"{url}/metrics") as response:  # the gateway's port: the same merge
                assert 'starhold_connections{host="' in await response.text()
            for wire in wires:
                await wire.ws.close()
    finally:
        await served.stop()
    for trouble in ("cannot take sockets", "hand sockets", "hand-off", "Traceback"):
        assert trouble not in served.text, served.text


@pytest.mark.allow_blocking
async def test_with_two_gateway_processes_a_host_s_figures_are_reported_once(tmp_path):
    """``--gateways 2``: both processes may hand sockets to Sol's host, but only one reports the
    host's figures, so summing the two processes' /metrics counts each socket once."""
    import aiohttp

    from starhold.rooms import protocol as P
    from served import hosted, metric, serve_with_metrics
    from wire import Wire, guest_token

    served, port, metrics_port = await serve_with_metrics(tmp_path / "data", "--colocate", "--shed-lag", "0",
                                                          gateways=2)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            wires = []
            for i in range(5):  # new connections: the kernel spreads them over both processes
                wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, f"P{i}"))
                await wire.join(timeout=120)
                await wire.send(P.MOVE_TO, 2, {"x": 10.0 * i, "y": 0.0})
                await wire.recv(P.FRAME, timeout=120, where=lambda p: p["ack"] == 2)
                wires.append(wire)
            texts = []
            for i in range(2):
                async with session.get(f"http://127.0.0.1:{metrics_port + i}/metrics") as response:
                    texts.append(await response.text())
            in_hosts = [hosted(text, "starhold_connections") for text in texts]
            here = sum(metric(text, "starhold_connections") for text in texts)
            assert sum(1 for found in in_hosts if found) == 1, texts  # one process reports the host
            assert sum(map(sum, in_hosts)) + here == 5.0, texts  # every socket counted once
            assert sum(map(sum, in_hosts)) == 5.0, texts  # Sol's host took every one
            for wire in wires:
                await wire.ws.close()
    finally:
        await served.stop()
    assert "Traceback" not in served.text, served.text

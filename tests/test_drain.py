"""``starhold drain``: rooms hibernated with ``("moved",)`` and woken elsewhere while the
gateways hold their players' sockets.

In-process (no Ray): a solar system with three players behind a real gateway is migrated
while they fly and send orders; their sockets stay open, frames come back, seats and orders
are intact. The gateway alone reopens a room it was told moved (nothing else wakes it).
On Ray (``test_drain_a_worker_node_under_play``): see its docstring."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest

from starhold import Room, Seats, define_room, protocol
from starhold.client import StarholdClient
from starhold.rooms import protocol as P
from starhold._runtime.local_host import InProcessDirectory
from starhold.drain import DrainError, NodeInfo, RoomMove, move_room, resolve_node


class Press(msgspec.Struct):
    """``press {}``: one more press."""


@define_room
class LampRoom(Room):
    """A room with no loop and no alarm: it answers each press with the count of presses, and
    nothing but a connection or a message wakes it."""

    kind = "lamp"
    messages = {"press": Press}
    seat_hold = 30.0

    async def on_start(self):
        self.presses = await self.storage.get("presses") or 0
        self.seats = Seats(self)
        await self.seats.load()

    async def on_connect(self, conn, request):
        admitted = self.seats.admit(conn, request, request.player)
        if admitted is None:
            return
        seat = await self.seats.occupy(conn, request.player, request.seq, resumed=admitted[1])
        await self.seats.flush()
        conn.send(protocol.encode(protocol.WELCOME, request.seq,
                                  {"ack": seat["ack"], "seat": seat["token"], "resumed": admitted[1]}))

    async def on_message(self, conn, message):
        self.presses += 1
        await self.storage.put("presses", self.presses)
        self.seats.ack(self.seats.player_of(conn.id), message.seq)
        await self.seats.flush()
        conn.send(protocol.encode("lamp", message.seq, {"presses": self.presses}))

    async def on_close(self, conn, code, reason):
        await self.seats.leave(conn, code)
        await self.seats.flush()


def near(client: StarholdClient, ship: int, x: float, y: float) -> bool:
    pos = client.ships.get(ship)
    return pos is not None and abs(pos[0] - x) < 0.5 and abs(pos[1] - y) < 0.5 and not pos[2] & P.SHIP_MOVING


def largest_gap(arrivals: list[float], since: float) -> float:
    """The longest wait between frames received after ``since`` (seconds)."""
    times = [t for t in arrivals if t >= since]
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


async def room_state(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/systems/sol/state") as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.fixture
async def directory(tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield directory
    await directory.close()


async def test_a_migrated_room_keeps_its_players_their_seats_and_every_order(gateway_factory, directory):
    url = await gateway_factory(directory)
    clients = [StarholdClient(url, "Sol", name=f"Mover{i}") for i in range(3)]
    for client in clients:
        await client.__aenter__()
    try:
        ships = [(await c.join())["ship"] for c in clients]
        # Acknowledged orders before the move: every ship flies 12 units east.
        starts = {}
        for client, ship in zip(clients, ships):
            await client.wait_for(lambda c, s=ship: s in c.ships)
            x, y, _ = client.ships[ship]
            starts[ship] = (x, y)
            seq = await client.move_to(x + 12.0, y)
            await client.wait_for(lambda c, s=seq: c.ack >= s)
        handle = await directory.get("system", "sol")
        old_epoch = (await handle.stats())["epoch"]
        before = {id(c): c.frames for c in clients}
        moved_at = time.perf_counter()

        # The move, with orders sent while it runs: each ship then turns north.
        move = asyncio.ensure_future(move_room(handle, "system", "sol", directory))
        last = {}
        for client, ship in zip(clients, ships):
            x, y = starts[ship]
            last[ship] = (x + 12.0, y + 15.0)
            last[id(client)] = await client.move_to(*last[ship])
        result = await move
        assert isinstance(result, RoomMove) and result.ok and not result.asleep, result
        assert result.connections == 3

        new = directory.runtime("system", "sol")
        assert new is not None and new.state == "active" and new.epoch > old_epoch
        for client, ship in zip(clients, ships):
            # Every order is applied by the new activation (the one sent during the move too)...
            await client.wait_for(lambda c: c.ack >= last[id(c)], timeout=20)
            await client.wait_for(lambda c, s=ship: near(c, s, *last[s]), timeout=20)
            # ... over the same socket: no close, no reconnection, no new welcome.
            assert client.connected and client.reconnects == 0 and client.close_codes == []
            assert client.ship_id == ship and client.frames > before[id(client)]
        gap = max(largest_gap(c.frame_arrivals, client.clock() - (time.perf_counter() - moved_at)) for c in clients)
        print(f"in-process migration: {result.line()}; largest gap between frames {gap:.3f} s")
        state = await room_state(url)
        assert state["players"] == 3  # the seats were held over
        assert sorted(s["id"] for s in state["ships"] if s["name"].startswith("Mover")) == sorted(ships)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)


async def test_the_gateway_reopens_a_moved_room_at_once(gateway_factory, tmp_path):
    """After ``("moved",)`` the gateway wakes the room by itself, with no input from its player
    (after a plain hibernation it waits for one: test_gateway.py); the room has no alarm, so
    nothing else wakes it."""
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60, room_classes={"lamp": LampRoom})
    url = await gateway_factory(directory, rooms=[__name__])
    try:
        async with StarholdClient(url, "/rooms/lamp/l-1/ws", name="Held") as client:
            await client.join()
            seq = await client.command("press", {})
            await client.next_message("lamp", after_seq=seq)
            handle = await directory.get("lamp", "l-1")
            epoch = (await handle.stats())["epoch"]
            info = await handle.migrate()
            assert info["migrated"] is True and info["connections"] == 1 and len(info["gateways"]) == 1
            for _ in range(250):  # woken by the gateway alone
                runtime = directory.runtime("lamp", "l-1")
                if runtime is not None and runtime.state == "active":
                    break
                await asyncio.sleep(0.02)
            assert runtime is not None and runtime.state == "active" and runtime.epoch == epoch + 1
            assert len(runtime._conns) == 1  # our socket, restored by the new activation
            seq = await client.command("press", {})
            _, _, answer = await client.next_message("lamp", after_seq=seq)
            assert answer == {"presses": 2}
            assert client.reconnects == 0 and client.close_codes == [] and client.connected
    finally:
        await directory.close()


async def test_migrating_a_sleeping_room_raises_room_gone(directory):
    from starhold._runtime.handle import RoomGone

    handle = await directory.get("system", "sol")
    assert (await handle.migrate())["migrated"] is True
    with pytest.raises(RoomGone):
        await handle.migrate()
    move = await move_room(handle, "system", "sol", directory)
    assert move.ok and move.asleep and "left asleep" in move.line()
    assert await directory.list_rooms() == []  # not woken: it was asleep


def test_nodes_are_named_by_id_prefix_or_unique_ip():
    nodes = [NodeInfo("aa11", "10.0.0.1", True, False), NodeInfo("ab22", "10.0.0.2", False, False),
             NodeInfo("ab33", "10.0.0.2", False, False)]
    assert resolve_node(nodes, "aa").id == "aa11"
    assert resolve_node(nodes, "AB2").id == "ab22"
    assert resolve_node(nodes, "10.0.0.1").id == "aa11"
    with pytest.raises(DrainError, match="matches 2 nodes"):
        resolve_node(nodes, "10.0.0.2")
    with pytest.raises(DrainError, match="matches 2 nodes"):
        resolve_node(nodes, "ab")
    with pytest.raises(DrainError, match="no alive Ray node"):
        resolve_node(nodes, "ff")

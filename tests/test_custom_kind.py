"""A room kind written here, outside the package, with no edit to any framework file: two
message types of its own, a 5 Hz loop, seat holds and an HTTP route. It is served end to end
(a real gateway, rooms in Ray actors, the Python client and raw WebSockets on 127.0.0.1), and
the same class runs under ``RoomHarness`` through the same validation and dispatch path.

This is the "Write your own room kind" example of docs/rooms.md, tested."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

import aiohttp
import msgspec
import pytest

from starhold import HttpRequest, HttpResponse, Room, Seats, define_room, define_routes, protocol
from starhold.client import StarholdClient
from starhold.harness import RoomHarness

from wire import guest_token


class Light(msgspec.Struct):
    """``light {color, level}``: switch the beacon on."""

    color: Literal["red", "green", "blue"]
    level: Annotated[int, msgspec.Meta(ge=1, le=10)]


class Dim(msgspec.Struct):
    """``dim {}``: switch it off."""


@define_room
class BeaconRoom(Room):
    """A beacon players switch on and off; while anyone is there it broadcasts its state 5
    times a second, each player's message carrying the last input of theirs it applied."""

    kind = "beacon"
    messages = {"light": Light, "dim": Dim}
    tick_rate = 5
    seat_hold = 30.0
    max_players = 8

    async def on_start(self):
        self.lit = await self.storage.get("lit")
        self.seats = Seats(self)
        await self.seats.load()

    async def on_connect(self, conn, request):
        admitted = self.seats.admit(conn, request, request.player)
        if admitted is None:  # full: the service answered error 12 and closes with 4003
            return
        seat = await self.seats.occupy(conn, request.player, request.seq, resumed=admitted[1])
        await self.seats.flush()
        conn.send(protocol.encode(protocol.WELCOME, request.seq,
                                  {"ack": seat["ack"], "seat": seat["token"], "resumed": admitted[1]}))
        await self.ticker.start()

    async def on_message(self, conn, message):
        if message.type == "light":
            self.lit = [message.payload.color, message.payload.level]
        else:
            self.lit = None
        await self.storage.put("lit", self.lit)
        self.seats.ack(self.seats.player_of(conn.id), message.seq)
        await self.seats.flush()

    async def on_tick(self, tick, missed):
        for conn in self.connections:
            seat = self.seats.seat_of(conn.id)
            if seat is not None:
                conn.send(protocol.encode("beacon", tick, {"tick": tick, "ack": seat["ack"], "lit": self.lit}),
                          allow_unconfirmed=True)
        if not self.connections:
            await self.ticker.stop()

    async def on_close(self, conn, code, reason):
        await self.seats.leave(conn, code)
        await self.seats.flush()

    async def on_request(self, request):
        return HttpResponse(200, {"lit": self.lit, "seats": len(self.seats)})


@define_routes
def beacon_routes(api):
    from aiohttp import web

    async def show(request):
        return await api.forward(request, "beacon", request.match_info["id"], "state")

    api.room_ids("beacon", lambda raw: raw if raw.startswith("b-") else None)
    return [web.get("/api/beacons/{id}", show)]


def ws_url(url: str, path: str, token: str) -> str:
    return url.replace("http", "ws", 1) + f"{path}?token={token}"


async def receive(ws, type_: str, where=lambda payload: True, timeout: float = 30.0):
    """The next message of ``type_`` on a raw socket whose payload satisfies ``where``."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            t, seq, payload = protocol.decode_server(msg.data)
            if t == type_ and where(payload):
                return seq, payload


@pytest.fixture
async def served(ray_cluster, gateway_factory, tmp_path):
    from starhold._runtime.ray_host import RayDirectory

    directory = RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 60, "log_level": "WARNING"},
                             namespace=f"kind-{uuid.uuid4().hex[:8]}", room_classes={"beacon": BeaconRoom})
    url = await gateway_factory(directory, rooms=[__name__])
    yield url
    from starhold._runtime.host_pool import kill_namespace

    kill_namespace(directory.namespace)


@pytest.mark.ray
async def test_a_kind_from_a_test_module_is_served_end_to_end_on_ray(served):
    url = served
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/beacons/b-1") as resp:  # asleep, anonymous: not woken
            assert resp.status == 401
        token = await guest_token(session, url, "Ada")
        async with session.get(url + "/api/beacons/b-1", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200 and await resp.json() == {"lit": None, "seats": 0}

        client = StarholdClient(url, "/rooms/beacon/b-1/ws", token=token)
        async with client:
            welcome = await client.join()
            assert welcome["resumed"] is False and welcome["seat"]
            # The gateway validates what the kind declared (docs/protocol.md codes 2, 3, 4).
            for payload, type_, code in (({"color": "red", "level": 11}, "light", 4),
                                         ({"color": 5, "level": 1}, "light", 3),
                                         ({"color": "pink", "level": 1}, "light", 3),  # not one of the Literal
                                         ({}, "blink", 2)):
                since = client.received
                await client.send_raw(protocol.encode(type_, 900, payload))
                _, seq, error = await client.next_message(protocol.ERROR, timeout=30, since=since)
                assert (seq, error["code"]) == (900, code), error
            seq = await client.command("light", {"color": "green", "level": 7})
            _, tick, beacon = await _beacon(client, lambda p: p["ack"] >= seq)
            assert beacon["lit"] == ["green", 7] and beacon["tick"] == tick
            _, later, _ = await _beacon(client, lambda p: p["tick"] > tick)
            assert later > tick  # the loop goes on at its own rate
            dim = await client.command("dim", {})
            _, _, beacon = await _beacon(client, lambda p: p["ack"] >= dim)
            assert beacon["lit"] is None

        # Seat holds: a dropped socket's seat (and its ack) waits for its token.
        bo = await guest_token(session, url, "Bo")
        ws = await session.ws_connect(ws_url(url, "/rooms/beacon/b-1/ws", bo))
        await ws.send_bytes(protocol.encode(protocol.JOIN, 1, {}))
        _, first = await receive(ws, protocol.WELCOME)
        await ws.send_bytes(protocol.encode("light", 2, {"color": "blue", "level": 3}))
        await receive(ws, "beacon", lambda p: p["ack"] == 2 and p["lit"] == ["blue", 3])
        await ws.close(code=4000)  # not a leave: held
        back = await session.ws_connect(ws_url(url, "/rooms/beacon/b-1/ws", bo))
        await back.send_bytes(protocol.encode(protocol.JOIN, 3, {"resume": first["seat"]}))
        _, resumed = await receive(back, protocol.WELCOME)
        assert resumed == {"ack": 2, "seat": first["seat"], "resumed": True}
        async with session.get(url + "/api/beacons/b-1") as resp:  # awake: anonymous reads answer
            assert await resp.json() == {"lit": ["blue", 3], "seats": 1}  # Ada left (1000): only Bo's
        await back.close()


async def _beacon(client: StarholdClient, where):
    """The first ``beacon`` message received (from the start) whose payload satisfies ``where``."""
    found = []

    def match(c):
        for _, t, seq, payload in c.messages:
            if t == "beacon" and where(payload):
                found.append((t, seq, payload))
                return True
        return False

    await client.wait_for(match, timeout=30)
    return found[0]


async def test_the_same_kind_runs_under_the_harness_through_the_same_path():
    async with RoomHarness(BeaconRoom, name="b-h") as h:
        ada = await h.connect(seq=1, player="ada")
        welcome = ada.received[0]
        assert welcome[0] == protocol.WELCOME and welcome[2]["resumed"] is False
        await ada.send("light", {"color": "red", "level": 11}, seq=2)  # the gateway's own check
        assert ada.received[-1][0] == protocol.ERROR and ada.received[-1][2]["code"] == 4
        await ada.send("light", {"color": "red", "level": 5}, seq=3)
        await h.advance(0.2)  # one period: a tick
        beacons = [m for m in ada.received if m[0] == "beacon"]
        assert beacons[-1][0] == "beacon" and beacons[-1][2]["ack"] == 3 and beacons[-1][2]["lit"] == ["red", 5]
        await ada.close(1006, "dropped")  # held for seat_hold
        assert await h.evict()
        back = await h.connect({"resume": welcome[2]["seat"]}, seq=4, player="ada")  # wakes it
        again = back.received[0]
        assert again[2] == {"ack": 3, "seat": welcome[2]["seat"], "resumed": True}
        assert (await h.request(HttpRequest("GET", "state"))).body == {"lit": ["red", 5], "seats": 1}

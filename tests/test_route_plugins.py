"""A room kind with HTTP routes of its own, defined here and nowhere in the framework, served
by a real gateway (``gateway_factory``): the plugin API of ``starhold.http``."""

from __future__ import annotations

import aiohttp
import msgpack
import pytest

from starhold import HttpRequest, HttpResponse, Room, define_room, define_routes, protocol as P
from starhold.gateway import room_link
from starhold.gateway.app import GATEWAY
from starhold._runtime.local_host import InProcessDirectory
from starhold.ticking import tick_offset
from wire import guest_token


@define_room
class TallyRoom(Room):
    """Counts what it is told to add; greets the players who join."""

    kind = "tally"
    tick_rate = 20

    async def on_start(self):
        self.total = await self.storage.get("total") or 0

    async def on_connect(self, conn, request):
        conn.send({"hello": request.name, "total": self.total, "params": self.params})

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == "add":
            self.total += int(request.query.get("n", "1"))
            await self.storage.put("total", self.total)
        return HttpResponse(200, {"total": self.total, "room": self.name})


@define_room
class NoticeRoom(Room):
    """A room that anonymous HTTP may wake (``wake_on_http``)."""

    kind = "notice"
    wake_on_http = True

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"notice": "open"})


@define_routes
def tally_routes(api):
    from aiohttp import web

    async def add(request: web.Request) -> web.Response:
        try:
            who = api.identity(request)
        except Exception as exc:
            return web.json_response({"error": str(exc)}, status=401)
        answer = await api.call_room("tally", request.match_info["id"],
                                     HttpRequest("POST", "add", {"n": request.query.get("n", "1")}))
        return web.json_response({**answer.body, "by": who.name}, status=answer.status)

    async def show(request: web.Request) -> web.Response:
        return await api.forward(request, "tally", request.match_info["id"], "count")

    async def notice(request: web.Request) -> web.Response:
        return await api.forward(request, "notice", "board", "read")

    api.room_ids("tally", lambda raw: raw if raw.startswith("t-") else None)
    api.room_params("tally", lambda room_id: {"label": room_id.upper()})
    return [web.post("/api/tallies/{id}/add", add), web.get("/api/tallies/{id}", show),
            web.get("/api/notice", notice)]


@pytest.fixture
async def served(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield directory, await gateway_factory(directory, rooms=[__name__])
    await directory.close()


async def test_a_kind_defined_in_a_test_module_serves_its_own_routes_and_sockets(served):
    directory, url = served
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/tallies/t-1/add?n=3") as resp:
            assert resp.status == 401  # the route asked the gateway to verify a token
        token = await guest_token(session, url, "Ada")
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(url + "/api/tallies/t-1/add?n=3", headers=headers) as resp:
            assert resp.status == 200 and await resp.json() == {"total": 3, "room": "t-1", "by": "Ada"}
        async with session.get(url + "/api/tallies/t-1") as resp:  # awake: anonymous reads answer
            assert resp.status == 200 and (await resp.json())["total"] == 3

        ws = await session.ws_connect(url.replace("http", "ws", 1) + f"/rooms/tally/t-1/ws?token={token}")
        await ws.send_bytes(P.encode(P.JOIN, 1, {}))
        greeting = msgpack.unpackb((await ws.receive(timeout=10)).data)
        assert greeting == {"hello": "Ada", "total": 3, "params": {"label": "T-1"}}
        await ws.close()

        refused = await session.ws_connect(url.replace("http", "ws", 1) + f"/rooms/tally/x-1/ws?token={token}")
        error = P.decode_server((await refused.receive(timeout=10)).data)
        assert error[0] == P.ERROR and error[2]["code"] == P.ERR_UNKNOWN_ROOM
        assert (await refused.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
        assert refused.close_code == P.CLOSE_UNKNOWN_ROOM
    assert sorted(await directory.list_rooms()) == ["tally/t-1"]  # the refused id woke nothing


async def test_the_link_ticks_at_the_kinds_rate_and_offset(served):
    _, url = served
    link = url.app[GATEWAY].link("tally", "t-2")
    assert link.ticked and link.period == pytest.approx(0.05)
    assert link.tick_offset == tick_offset("tally/t-2", 20) and 0 <= link.tick_offset < 0.05
    assert link.flush_points == room_link.flush_points(0.05) == (0.003,)
    assert room_link.flush_points(0.004) == (0.001,)  # none fits a 4 ms tick: a quarter of it
    assert not url.app[GATEWAY].link("notice", "board").ticked


def test_tick_offset_is_the_documented_hash_fraction_of_the_period():
    import hashlib

    for key in ("system/sol", "session/abc", "tally/t-1"):
        fraction = int.from_bytes(hashlib.blake2s(key.encode(), digest_size=4).digest(), "big") / 2**32
        assert tick_offset(key, 10) == fraction / 10
        assert 0 <= tick_offset(key, 30) < 1 / 30
    with pytest.raises(ValueError):
        tick_offset("system/sol", 0)


async def test_anonymous_http_wakes_only_kinds_that_declare_wake_on_http(served):
    directory, url = served
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/tallies/t-3") as resp:
            assert resp.status == 401 and "asleep" in (await resp.json())["error"]
        async with session.get(url + "/api/notice") as resp:
            assert resp.status == 200 and await resp.json() == {"notice": "open"}
        async with session.get(url + "/api/tallies/t-3?token=forged") as resp:
            assert resp.status == 401
    assert await directory.list_rooms() == ["notice/board"]


async def test_the_games_rooms_on_the_generic_route_only_where_the_game_declares_ids(gateway_factory, tmp_path):
    """``/rooms/system/Sol/ws`` is Sol's socket (names resolve as on ``/api/systems``); unsigned
    game ids, the accounts room and the docs' example kinds are refused with 4004."""
    from wire import Wire

    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    try:
        url = await gateway_factory(directory)
        async with aiohttp.ClientSession() as session:
            token = await guest_token(session, url, "Eve")
            wire = await Wire.open(session, url, "/rooms/system/Sol/ws", token)
            welcome, _ = await wire.join()
            assert welcome["system"]["id"] == "sol"
            for path in ("/rooms/session/" + "0" * 96 + "/ws", "/rooms/accounts/accounts/ws",
                         "/rooms/counter/c1/ws", "/rooms/nosuchkind/x/ws"):
                refused = await Wire.open(session, url, path, token)
                assert (await refused.recv(P.ERROR))[2]["code"] == P.ERR_UNKNOWN_ROOM
                assert await refused.close_code() == P.CLOSE_UNKNOWN_ROOM
        assert [r for r in await directory.list_rooms() if not r.startswith("pilot/")] == ["system/sol"]
    finally:
        await directory.close()

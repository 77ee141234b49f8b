"""While the S3 snapshot store is down, rooms that sleep cannot wake: the gateway says so at
once and clearly (close 1013 after an error frame; 503 with ``Retry-After``), logs one line per
kind of failure per interval with no traceback, loses no client's leave, and no activation
outlives a failed start (the Ray actor ends). S3 is moto's server; the outage is injected into
the store's boto3 client (every request fails as a refused connection would)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import aiohttp
import msgspec
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from starhold import HttpRequest, HttpResponse, Room, Seats, define_room, protocol
from starhold._runtime.handle import RoomGone
from starhold._runtime.local_host import InProcessDirectory
from starhold.gateway import room_link
from starhold.gateway.app import GATEWAY
from starhold.ratelog import RateLimitedLog, describe
from starhold.storage.base import StorageError
from starhold.storage.s3_snapshots import S3SnapshotStore, s3_client

from wire import Wire, guest_token

KIND = "s3outpost"


class Note(msgspec.Struct):
    text: str


@define_room
class OutpostRoom(Room):
    """Seats and one message type: a leave (1000) releases its seat, any other close holds it."""

    kind = KIND
    messages = {"note": Note}
    seat_hold = 600.0

    async def on_start(self):
        self.seats = Seats(self)
        await self.seats.load()

    async def on_connect(self, conn, request):
        admitted = self.seats.admit(conn, request, request.player)
        if admitted is None:
            return
        seat = await self.seats.occupy(conn, request.player, request.seq, resumed=admitted[1])
        await self.seats.flush()
        conn.send(protocol.encode(protocol.WELCOME, request.seq, {"ack": seat["ack"], "seat": seat["token"],
                                                                  "seats": len(self.seats)}))

    async def on_message(self, conn, message):
        pass

    async def on_close(self, conn, code, reason):
        await self.seats.leave(conn, code)
        await self.seats.flush()

    async def on_request(self, request):
        return HttpResponse(200, {"seats": len(self.seats)})


class Outage:
    """A boto3 client on moto whose requests all fail (``EndpointConnectionError``, as a
    refused connection) while ``down``; ``attempts`` counts the requests that failed."""

    def __init__(self, endpoint_url: str):
        self.down = False
        self.attempts = 0
        self.client = s3_client(endpoint_url, aws_access_key_id="testing", aws_secret_access_key="testing",
                                config=Config(retries={"mode": "standard", "max_attempts": 1}))
        self.client.meta.events.register("before-send.s3", self._before_send)

    def _before_send(self, request, **kwargs):
        if self.down:
            self.attempts += 1
            raise EndpointConnectionError(endpoint_url=request.url)
        return None


@pytest.fixture(autouse=True)
def fresh_wake_log(monkeypatch):
    """Each test starts with no wake failure logged (the limiter is process-wide)."""
    monkeypatch.setattr(room_link, "WAKE_FAILURES", RateLimitedLog(room_link.log))


@pytest.fixture
async def outage(moto_s3):
    outage = await asyncio.to_thread(Outage, moto_s3)
    outage.store = S3SnapshotStore("snapshots", client=outage.client)
    await outage.store.ensure_bucket()
    yield outage
    outage.down = False


@pytest.fixture
async def served(outage, gateway_factory, tmp_path):
    """A gateway over an in-process directory whose snapshots go to the S3 ``outage`` store."""
    directory = InProcessDirectory(tmp_path / "data", snapshots=outage.store, idle_timeout=600)
    url = await gateway_factory(directory)  # the game (accounts included) and the kinds defined here
    yield url, directory
    outage.down = False
    await directory.close()


def tracebacks(caplog) -> list[str]:
    """Records at INFO or above that carry a traceback, or whose text contains one."""
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.INFO and (r.exc_info or "Traceback" in r.getMessage())]


def wake_lines(caplog, kind: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "starhold.gateway" and r.levelno == logging.WARNING and f"room {kind}/" in r.getMessage()]


async def post(session, url: str, path: str, body: dict, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(url + path, json=body, headers=headers) as resp:
        return resp.status, resp.headers.get("Retry-After"), await resp.json()


# ---- the rate limiter ------------------------------------------------------------------------------


def test_one_line_per_key_per_interval_with_the_count_held_back(caplog):
    t = [100.0]
    logger = logging.getLogger("test.ratelog")
    limited = RateLimitedLog(logger, interval=30.0, now=lambda: t[0])
    caplog.set_level(logging.INFO, logger="test.ratelog")
    boom = RuntimeError("store down\nsecond line")
    assert limited.log(logging.WARNING, ("store", "system"), "wake %s failed: %s", "system/a", describe(boom),
                       exc_info=boom)
    for i in range(5):
        t[0] += 5.0
        assert not limited.log(logging.WARNING, ("store", "system"), "wake %s failed", f"system/{i}", exc_info=boom)
    assert limited.log(logging.WARNING, ("store", "session"), "wake %s failed", "session/x")  # another key
    assert limited.pending(("store", "system")) == 5
    t[0] = 130.0  # 30 s after the first line
    assert limited.log(logging.WARNING, ("store", "system"), "wake %s failed", "system/z")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "wake system/a failed: RuntimeError: store down"
    assert lines[1] == "wake session/x failed"
    assert lines[2].startswith("wake system/z failed (+5 more since ")
    assert len(lines) == 3 and not any(r.exc_info for r in caplog.records)
    assert limited.recovered(("store", "system"), "rooms wake again") and not limited.recovered(("x",), "never")
    assert caplog.records[-1].getMessage() == "rooms wake again" and caplog.records[-1].levelno == logging.INFO
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="test.ratelog")  # tracebacks at DEBUG, every occurrence
    limited.log(logging.WARNING, ("store", "system"), "wake failed", exc_info=boom)
    limited.log(logging.WARNING, ("store", "system"), "wake failed", exc_info=boom)
    assert [(r.levelno, bool(r.exc_info)) for r in caplog.records] == [
        (logging.DEBUG, True), (logging.WARNING, False), (logging.DEBUG, True)]


def test_describe_names_the_wrapped_cause_in_one_line():
    class Wrapper(Exception):
        def __init__(self, cause):
            super().__init__("Traceback (most recent call last):\n  File ...\n" * 50)
            self.cause = cause

    assert describe(Wrapper(StorageError("s3://b/k unreachable"))) == "StorageError: s3://b/k unreachable"
    assert describe(ValueError()) == "ValueError"
    assert len(describe(ValueError("x" * 1000))) == 300


# ---- accounts and HTTP -------------------------------------------------------------------------------


async def test_accounts_answer_503_with_retry_after(served, outage, caplog):
    url, directory = served
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url)
        outage.down = True
        body = {"username": "ada", "password": "correct horse"}
        assert await post(session, url, "/api/auth/register", body) == (
            503, "5", {"error": "accounts unavailable; retry later"})
        assert outage.attempts > 0  # it did try the store
        assert await directory.list_rooms() == []  # no activation is left behind
        # Within the hold (Retry-After) the gateway answers at once: the store is not asked again.
        tried = outage.attempts
        assert (await post(session, url, "/api/auth/login", body))[:2] == (503, "5")
        assert outage.attempts == tried
        # Guest tokens and /api/auth/me need no room: they keep working.
        assert (await post(session, url, "/api/auth/guest", {"name": "Bo"}))[0] == 200
        async with session.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
        outage.down = False
        await directory.get("accounts", "accounts")  # woken by someone else: the hold is over
        status, _, answer = await post(session, url, "/api/auth/register", body)
        assert status == 201 and answer["player"].startswith("u-")
    assert len(wake_lines(caplog, "accounts")) == 1, wake_lines(caplog, "accounts")
    assert "snapshot store is unreachable" in wake_lines(caplog, "accounts")[0]
    assert tracebacks(caplog) == []


async def test_every_failed_wake_counts_but_one_line_is_logged(served, outage, caplog, monkeypatch):
    """Without the hold every request tries to wake the room: one log line for them all, and
    one when the room wakes again, with how many failures it stood for."""
    monkeypatch.setattr(room_link, "UNAVAILABLE_HOLD", 0.0)
    url, _ = served
    caplog.set_level(logging.INFO)
    body = {"username": "bob", "password": "correct horse"}
    async with aiohttp.ClientSession() as session:
        outage.down = True
        for path in ("/api/auth/register", "/api/auth/login", "/api/auth/register", "/api/auth/login"):
            tried = outage.attempts
            assert (await post(session, url, path, body))[:2] == (503, "5")
            assert outage.attempts > tried
        outage.down = False
        assert (await post(session, url, "/api/auth/register", body))[0] == 201
    assert len(wake_lines(caplog, "accounts")) == 1, wake_lines(caplog, "accounts")
    assert [r.getMessage().split(" (+")[1] for r in caplog.records if "wakes again" in r.getMessage()][0].startswith(
        "3 more failures since ")
    assert tracebacks(caplog) == []


async def test_a_forwarded_request_answers_503_with_retry_after(served, outage):
    url, _ = served
    api = url.app[GATEWAY]
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url)
        outage.down = True

        async def state(request):
            return await api.forward(request, KIND, "fwd", "state")

        app = web.Application()
        app.router.add_get("/state", state)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with session.get(str(server.make_url("/state")), headers={"Authorization": f"Bearer {token}"}) as resp:
                assert (resp.status, resp.headers.get("Retry-After")) == (503, "5")
                assert await resp.json() == {"error": "room unavailable; retry later"}
        finally:
            await server.close()


# ---- WebSockets -----------------------------------------------------------------------------------


async def join(session, url: str, room: str, token: str, seq: int = 1) -> Wire:
    wire = await Wire.open(session, url, f"/rooms/{KIND}/{room}/ws", token)
    await wire.send(protocol.JOIN, seq, {})
    return wire


async def refused(wire: Wire) -> tuple:
    """The error frame and the close code a refused socket gets."""
    msg = await asyncio.wait_for(wire.ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    error = protocol.decode_server(msg.data)
    closing = await asyncio.wait_for(wire.ws.receive(), 10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    return error, wire.ws.close_code


async def test_a_join_that_cannot_wake_the_room_gets_an_error_and_1013(served, outage, caplog):
    url, directory = served
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url)
        outage.down = True
        for seq in (7, 8):  # the second within the hold: refused at once, the store is not asked
            tried = outage.attempts
            (kind, error_seq, payload), code = await refused(await join(session, url, "r1", token, seq))
            assert (kind, error_seq, payload["code"], code) == (protocol.ERROR, seq, protocol.ERR_OVERLOADED,
                                                                protocol.CLOSE_TRY_AGAIN_LATER)
            assert "storage is unreachable" in payload["message"]
            assert (outage.attempts > tried) == (seq == 7)
        assert await directory.list_rooms() == []
        outage.down = False
        await directory.get(KIND, "r1")  # woken by someone else (another gateway): no more refusals
        wire = await join(session, url, "r1", token, 9)
        _, seq, welcome = await wire.recv(protocol.WELCOME)
        assert seq == 9 and welcome["seats"] == 1
        await wire.ws.close()
    assert len(wake_lines(caplog, KIND)) == 1
    assert tracebacks(caplog) == []


async def test_a_leave_during_the_outage_is_delivered_when_the_room_wakes(served, outage, caplog, monkeypatch):
    """Two players are held while their room sleeps; the store goes down. One leaves (1000):
    the leave cannot wake the room and waits in the gateway; the other, idle, stays open until
    its input cannot wake the room either: error frame (its input's seq) and 1013. When the
    store is back the link's own retry wakes the room and delivers both closes: the leaver's
    seat is released, the other's held."""
    monkeypatch.setattr(room_link, "PENDING_RETRY_FIRST", 0.2)
    url, directory = served
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        leaver, stayer = await guest_token(session, url, "Leaver"), await guest_token(session, url, "Stayer")
        a = await join(session, url, "r2", leaver)
        await a.recv(protocol.WELCOME)
        b = await join(session, url, "r2", stayer)
        assert (await b.recv(protocol.WELCOME))[2]["seats"] == 2
        handle = await directory.get_if_active(KIND, "r2")
        assert await handle.hibernate()  # snapshot in S3; both sockets held by the gateway
        assert await directory.list_rooms() == []
        link = url.app[GATEWAY].links[(KIND, "r2")]
        outage.down = True
        await a.ws.close()  # the leave (1000): it cannot wake the room
        async with asyncio.timeout(10):
            while not wake_lines(caplog, KIND):  # the wake was tried and failed
                await asyncio.sleep(0.02)
        assert "0 socket(s) closed with 1013, 1 event(s) kept for its next activation" in wake_lines(caplog, KIND)[0]
        await b.send("ping", 2)
        assert (await b.recv(protocol.PONG))[1] == 2  # b was held through the failure: still open
        await b.send("note", 3, {"text": "hello"})  # an input that cannot wake the room
        (kind, seq, payload), code = await refused(b)
        assert (kind, seq, payload["code"], code) == (protocol.ERROR, 3, protocol.ERR_OVERLOADED,
                                                      protocol.CLOSE_TRY_AGAIN_LATER)
        assert await directory.list_rooms() == []
        leaver_id, stayer_id = await _player(session, url, leaver), await _player(session, url, stayer)
        outage.down = False
        async with asyncio.timeout(30):  # the link's own retry wakes the room and delivers both closes
            while not (await directory.is_active(KIND, "r2") and not link._queue and link._channel is not None
                       and not link._unacked):
                await asyncio.sleep(0.05)
        seats = directory.runtime(KIND, "r2").room.seats
        assert seats.get(leaver_id) is None  # the leave released the seat
        assert seats.get(stayer_id)["conn"] is None and seats.get(stayer_id)["held_until"]  # held
    assert len(wake_lines(caplog, KIND)) == 1, wake_lines(caplog, KIND)
    assert tracebacks(caplog) == []


async def _player(session, url: str, token: str) -> str:
    async with session.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        return (await resp.json())["player"]


# ---- Ray: no actor outlives a failed start ------------------------------------------------------------


class FlakyStart(Room):
    """``on_start`` raises while the file ``params["fail"]`` exists."""

    kind = "s3flaky"

    async def on_start(self):
        if os.path.exists(self.params["fail"]):
            raise ValueError("on_start failed on purpose")

    async def on_request(self, request):
        return HttpResponse(200, {"pid": os.getpid()})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def gone(directory) -> None:
    """Wait until the directory has no live room."""
    async with asyncio.timeout(60):
        while await directory.list_rooms():
            await asyncio.sleep(0.1)


@pytest.mark.ray
async def test_a_room_that_fails_to_start_is_forgotten_and_the_next_call_retries(ray_cluster, tmp_path):
    from starhold._runtime.host_pool import kill_namespace
    from starhold._runtime.ray_host import RayDirectory

    namespaces = []

    def directory(snapshots=None) -> RayDirectory:
        d = RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 30, "log_level": "WARNING",
                          "snapshots": snapshots}, namespace=f"test-{uuid.uuid4().hex[:8]}",
                         room_classes={"s3flaky": FlakyStart})
        namespaces.append(d.namespace)
        return d

    marker = tmp_path / "fail"
    try:
        # The snapshot store is unreachable: the start fails with a StorageError; the room is
        # forgotten (its host serves on), and a later call finds it gone.
        down = directory({"kind": "s3", "bucket": "snapshots", "endpoint_url": f"http://127.0.0.1:{closed_port()}",
                          "aws_access_key_id": "x", "aws_secret_access_key": "y"})
        handle = await down.get("s3flaky", "a", {"fail": str(marker)})
        with pytest.raises(StorageError):
            await handle.open_channel("gw-test")
        await gone(down)
        with pytest.raises(RoomGone):
            await handle.open_channel("gw-test")
        # on_start raises (a room bug): the activation fails and is forgotten, the next call retries.
        local = directory()
        marker.write_text("")
        handle = await local.get("s3flaky", "b", {"fail": str(marker)})
        with pytest.raises(ValueError, match="on purpose"):
            await handle.request(HttpRequest("GET", "pid"))
        await gone(local)
        marker.unlink()
        handle = await local.get("s3flaky", "b", {"fail": str(marker)})
        answer = await handle.request(HttpRequest("GET", "pid"))
        assert answer.status == 200
        assert await local.list_rooms() == ["s3flaky/b"]
    finally:
        for namespace in namespaces:
            kill_namespace(namespace)

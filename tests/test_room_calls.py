"""Requests between rooms (``starhold.calls``): ``self.rooms.call`` answers now, under the
caller's input gate; ``self.rooms.post`` is a transactional outbox: sent if and only if the
hook's writes commit, delivered at least once and in order after the commit, across crashes
of either room, never while the sender holds its gate (so posts cannot deadlock)."""

from __future__ import annotations

import asyncio

import pytest

from starhold import HttpRequest, HttpResponse, Room, RoomUnavailable
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import ManualClock


class Ledger(Room):
    """Applies each post key once; counts what it got and from whom."""

    kind = "ledger"
    fail = 0  # answer 503 this many times first (class-wide, for the test)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.path == "entries":
            return HttpResponse(200, await self.storage.list(prefix="entry:"))
        if request.path == "seen":
            return HttpResponse(200, {"sender": request.sender, "key": request.key, "body": request.json()})
        if Ledger.fail > 0:
            Ledger.fail -= 1
            return HttpResponse(503, {"error": "try later"})
        if request.path == "add":
            if request.sender == "":
                return HttpResponse(403, {"error": "rooms only"})
            if await self.storage.get(f"entry:{request.key}") is None:  # apply each key once
                n = int(await self.storage.get("n") or 0) + 1
                await self.storage.put({f"entry:{request.key}": {"n": n, **request.json()}, "n": n})
            return HttpResponse(200, {"ok": True})
        if request.path == "boom":
            raise ValueError("the callee's hook fails")
        if request.path == "callback":  # calls its caller back: a cycle
            return await self.rooms.call("teller", request.json()["teller"], "noop", timeout=0.5)
        return HttpResponse(404, {})


class Teller(Room):
    """Posts or calls the ledger as its requests say."""

    kind = "teller"

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        body = request.json() or {}
        if request.path == "post":
            for i in range(body.get("count", 1)):
                self.rooms.post("ledger", body["ledger"], "add", {"i": i}, key=f"{self.name}:{body['tag']}:{i}")
            await self.storage.put("posted", body["tag"])
            if body.get("fail"):
                raise RuntimeError("the hook fails after posting")
            return HttpResponse(200, {})
        if request.path == "ask":
            answer = await self.rooms.call("ledger", body["ledger"], "seen", {"q": 1})
            return HttpResponse(200, answer.body)
        if request.path == "cycle":
            answer = await self.rooms.call("ledger", body["ledger"], "callback", {"teller": self.name}, timeout=2.0)
            return HttpResponse(200, answer.body)
        if request.path == "ask_boom":
            await self.rooms.call("ledger", body["ledger"], "boom", timeout=0.3)
        if request.path == "bad_id":
            await self.rooms.call("ledger", "a/b", "seen")
        if request.path == "self":
            self.rooms.post("teller", self.name, "x", key="k")
        return HttpResponse(200, {})


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
async def directory(tmp_path, clock):
    d = InProcessDirectory(tmp_path / "data", clock=clock, room_classes={"ledger": Ledger, "teller": Teller})
    yield d
    await d.close()


async def request(directory, kind, room_id, path, body=None):
    import json

    handle = await directory.get(kind, room_id)
    return await handle.request(HttpRequest("POST", path, {}, json.dumps(body).encode() if body is not None else b""))


async def entries(directory, ledger="l1") -> dict:
    return (await request(directory, "ledger", ledger, "entries")).body


async def until(predicate, timeout=20.0):
    """Wait for an event (the outbox delivers in the background), not for a time."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


async def test_call_answers_with_the_sender_set(directory):
    answer = await request(directory, "teller", "t1", "ask", {"ledger": "l1"})
    assert answer.status == 200
    assert answer.body == {"sender": "teller/t1", "key": "", "body": {"q": 1}}
    # A request from a gateway (or a test) has no sender, so rooms can refuse room-only paths.
    assert (await request(directory, "ledger", "l1", "add", {})).status == 403


async def test_posts_are_delivered_in_order_after_the_commit(directory):
    await request(directory, "teller", "t1", "post", {"ledger": "l1", "tag": "a", "count": 5})
    await until(lambda: _count(directory, 5))
    got = await entries(directory)
    assert sorted((v["n"], v["i"]) for v in got.values()) == [(n + 1, n) for n in range(5)]  # in order
    assert set(got) == {f"entry:t1:a:{i}" for i in range(5)}


async def _count(directory, n, ledger="l1"):
    return len(await entries(directory, ledger)) >= n


async def test_a_hook_that_fails_posts_nothing(directory):
    with pytest.raises(RuntimeError):
        await request(directory, "teller", "t1", "post", {"ledger": "l1", "tag": "x", "fail": True})
    # A raising on_request rolls back its writes, and its posts with them (one transaction).
    await request(directory, "teller", "t1", "post", {"ledger": "l1", "tag": "ok", "count": 1})
    await until(lambda: _count(directory, 1))
    assert set(await entries(directory)) == {"entry:t1:ok:0"}


async def test_a_rolled_back_batch_sends_nothing(directory, tmp_path):
    runtime_handle = await directory.get("teller", "t9")
    runtime = directory.runtime("teller", "t9")

    async def post_then_crash():
        runtime._pending = []
        runtime.room.rooms.post("ledger", "l1", "add", {"i": 0}, key="never")
        await runtime.crash()  # the transaction and the held output are lost together

    async with runtime._gate:
        await post_then_crash()
    del runtime_handle
    await request(directory, "teller", "t9", "post", {"ledger": "l1", "tag": "after", "count": 1})
    await until(lambda: _count(directory, 1))
    assert set(await entries(directory)) == {"entry:t9:after:0"}


async def test_posts_retry_until_the_target_answers_and_survive_a_crash(directory):
    Ledger.fail = 3  # 503 three times: retried with backoff
    await request(directory, "teller", "t1", "post", {"ledger": "l1", "tag": "r", "count": 2})
    await until(lambda: _count(directory, 2))
    Ledger.fail = 0

    # A crash after the commit and before delivery: the next activation delivers the rows.
    Ledger.fail = 10**9
    await request(directory, "teller", "t2", "post", {"ledger": "l1", "tag": "c", "count": 3})
    runtime = directory.runtime("teller", "t2")
    assert runtime.posts_pending() == 3
    await runtime.crash()
    Ledger.fail = 0
    await directory.get("teller", "t2")  # restart: undelivered posts are loaded and sent
    await until(lambda: _count(directory, 5))
    assert {k for k in await entries(directory) if ":c:" in k} == {f"entry:t2:c:{i}" for i in range(3)}


async def test_redelivery_is_applied_once_by_the_key(directory):
    # The target applied the post but the sender crashed before deleting the row: it is sent
    # again, and the ledger's key check keeps one entry.
    await request(directory, "teller", "t1", "post", {"ledger": "l1", "tag": "d", "count": 1})
    await until(lambda: _count(directory, 1))
    teller = directory.runtime("teller", "t1")
    async with teller._gate:
        teller._pending = []
        teller.storage.outbox_add(99, {"kind": "ledger", "id": "l1", "method": "POST", "path": "add",
                                       "body": '{"i": 0}', "key": "t1:d:0"})
        await teller._commit_and_release()
    await teller.crash()
    await directory.get("teller", "t1")
    await until(lambda: _no_posts(directory, "t1"))
    assert len(await entries(directory)) == 1


async def _no_posts(directory, teller):
    runtime = directory.runtime("teller", teller)
    return runtime is not None and runtime.posts_pending() == 0 and not await runtime.storage.outbox_load()


async def test_a_room_with_undelivered_posts_does_not_hibernate(directory, clock):
    Ledger.fail = 10**9
    try:
        await request(directory, "teller", "t3", "post", {"ledger": "l1", "tag": "h", "count": 1})
        await clock.advance(60)
        assert await directory.is_active("teller", "t3")
    finally:
        Ledger.fail = 0
    await until(lambda: _count(directory, 1))
    await clock.advance(60)
    assert not await directory.is_active("teller", "t3")


async def test_a_call_cycle_times_out_instead_of_hanging(directory):
    with pytest.raises(Exception) as raised:
        await request(directory, "teller", "t1", "cycle", {"ledger": "l1"})
    assert isinstance(raised.value, RoomUnavailable)


async def test_bad_posts_are_refused(directory):
    teller = await directory.get("teller", "t1")
    with pytest.raises(ValueError):
        await teller.request(HttpRequest("POST", "self", {}, b"{}"))
    runtime = directory.runtime("teller", "t1")
    with pytest.raises(ValueError):  # outside a hook
        runtime.room.rooms.post("ledger", "l1", "add", key="k")
    with pytest.raises(ValueError):
        runtime.room.rooms._check("ledger", "")


async def test_a_failing_callee_is_unavailable_and_a_bad_address_raises_at_once(directory):
    with pytest.raises(RoomUnavailable):  # retried until the timeout: the callee's error stays its own
        await request(directory, "teller", "t1", "ask_boom", {"ledger": "l1"})
    with pytest.raises(ValueError):  # an id no room can have: no retries
        await request(directory, "teller", "t1", "bad_id", {})

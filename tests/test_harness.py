"""Room semantics through the shipped harness (starhold.harness), on both hosts where the
host allows: atomicity, rollback, output gate, alarms, hibernation with held connections."""

import asyncio
from typing import Annotated

import msgspec
import pytest

from starhold.harness import ActivationKilled, RoomHarness
from starhold.room import HttpResponse, Room
from starhold.storage.base import StorageError


class Empty(msgspec.Struct):
    """A message without fields."""


class MultiPut(msgspec.Struct):
    n: Annotated[int, msgspec.Meta(ge=0, le=1000)]


class Alarm(msgspec.Struct):
    seconds: Annotated[float, msgspec.Meta(ge=0.0)] = msgspec.field(name="in")


class LabRoom(Room):
    kind = "lab"
    messages = {"multi_put": MultiPut, "alarm": Alarm,
                **{op: Empty for op in ("txn", "count", "whoami", "unconfirmed", "kick")}}

    async def on_connect(self, conn, request):
        conn.attachment = {"name": request.payload.get("name", "?")}
        conn.send({"hello": conn.attachment["name"]})

    async def on_message(self, conn, message):
        op = message.type
        if op == "multi_put":
            for i in range(message.payload.n):
                await self.storage.put(f"k{i:03d}", i)
            conn.send({"done": message.payload.n})
        elif op == "txn":
            await self.storage.put("before", 1)
            try:
                async with self.storage.transaction():
                    await self.storage.put("inside", 2)
                    raise ValueError("abort")
            except ValueError:
                pass
            conn.send({"before": await self.storage.get("before"), "inside": await self.storage.get("inside")})
        elif op == "count":
            count = (await self.storage.get("count") or 0) + 1
            await self.storage.put("count", count)
            conn.send({"count": count})
        elif op == "whoami":
            conn.send({"attachment": conn.attachment})
        elif op == "alarm":
            await self.storage.set_alarm(self.clock.now() + message.payload.seconds)
        elif op == "unconfirmed":  # one frame past the output gate, one held for the commit
            conn.send({"early": True}, allow_unconfirmed=True)
            await self.storage.put("count", (await self.storage.get("count") or 0) + 1)
            conn.send({"late": True})
        elif op == "kick":
            conn.close(4000, "kicked")

    async def on_request(self, request):
        keys = await self.storage.list(prefix="k")
        return HttpResponse(200, {"keys": len(keys), "count": await self.storage.get("count") or 0,
                                  "fired": await self.storage.get("fired") or 0,
                                  "scheduled": await self.storage.get("scheduled")})

    async def on_alarm(self, info):
        await self.storage.put("fired", (await self.storage.get("fired") or 0) + 1)
        await self.storage.put("scheduled", info.scheduled_time)
        self.broadcast({"alarm": info.scheduled_time})


HOSTS = ["inprocess", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.fixture(params=HOSTS)
async def harness(request, tmp_path):
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    async with RoomHarness(LabRoom, host=request.param, data_dir=tmp_path) as h:
        yield h


async def test_writes_of_one_hook_commit_together(harness):
    conn = await harness.connect({"name": "a"})
    await conn.send("multi_put", {"n": 50})
    assert conn.received[-1] == {"done": 50}
    assert (await harness.request()).body["keys"] == 50


async def test_transaction_rolls_back_only_its_block(harness):
    conn = await harness.connect()
    await conn.send("txn")
    assert conn.received[-1] == {"before": 1, "inside": None}


async def test_connections_and_attachments_survive_hibernation(harness):
    conn = await harness.connect({"name": "Ada"})
    await conn.send("count")
    assert await harness.evict()
    assert not await harness.is_active()
    await conn.send("whoami")  # wakes the room: the connection is still there
    assert conn.received[-1] == {"attachment": {"name": "Ada"}}
    assert (await harness.stats())["epoch"] == 2
    await conn.send("count")
    assert conn.received[-1] == {"count": 2}


async def test_an_alarm_fires_and_wakes_a_sleeping_room(harness):
    conn = await harness.connect()
    await conn.send("alarm", {"in": 2.0})
    await harness.evict()
    if harness.host == "inprocess":
        await harness.advance(2.1)
    else:  # real time: the alarm scheduler wakes the room when the alarm falls due
        import asyncio

        for _ in range(100):
            if await harness.is_active() and (await harness.request()).body["fired"]:
                break
            await asyncio.sleep(0.1)
    assert (await harness.request()).body["fired"] == 1


async def test_fire_alarm_now(harness):
    conn = await harness.connect()
    await conn.send("alarm", {"in": 3600})
    assert await harness.fire_alarm()
    assert (await harness.request()).body["fired"] == 1
    assert not await harness.fire_alarm()


async def test_fire_alarm_reports_the_time_the_alarm_was_set_for(harness):
    conn = await harness.connect()
    await conn.send("alarm", {"in": 3600})
    scheduled = (await harness.stats())["alarm"]
    assert scheduled is not None
    assert await harness.fire_alarm()
    assert (await harness.request()).body["scheduled"] == scheduled  # not the time it was fired
    assert (await harness.stats())["alarm"] is None


# ---- fault injection (in-process host) -------------------------------------------------------

@pytest.fixture
async def lab(tmp_path):
    async with RoomHarness(LabRoom, data_dir=tmp_path) as h:
        yield h


async def test_killed_mid_hook_nothing_of_the_hook_is_committed(lab):
    conn = await lab.connect()
    lab.faults.kill("put", key_prefix="k025")
    with pytest.raises(ActivationKilled):
        await conn.send("multi_put", {"n": 50})
    assert conn.received == [{"hello": "?"}]  # the held reply died with the activation
    assert (await lab.request()).body["keys"] == 0  # a new activation: none of the 25 puts landed
    assert (await lab.stats())["epoch"] == 2


async def test_failed_commit_drops_held_output_and_the_room_carries_on(lab):
    conn = await lab.connect()
    await conn.send("count")
    lab.faults.fail("commit")
    with pytest.raises(StorageError):
        await conn.send("count")
    assert conn.received[-1] == {"count": 1}  # the reply to the failed hook never went out
    await conn.send("count")
    assert conn.received[-1] == {"count": 2}  # reset to the committed state, then on


async def test_delayed_write_still_commits(lab):
    conn = await lab.connect()
    lab.faults.delay("put", 0.05, key_prefix="count")
    await conn.send("count")
    assert conn.received[-1] == {"count": 1}
    assert ("put", "count") in lab.faults.log


async def test_room_harness_fixture(room_harness):
    h = await room_harness(LabRoom)
    conn = await h.connect({"name": "Fix"})
    assert conn.received == [{"hello": "Fix"}]


async def test_wait_for_next_tick_and_advance_to_next(lab):
    conn = await lab.connect()
    await conn.send("alarm", {"in": 42.0})
    start = lab.clock.now()
    await lab.wait_for_next_tick()
    assert lab.clock.now() == pytest.approx(start + 42.0)
    assert (await lab.request()).body["fired"] == 1


async def test_restore_from_s3_on_a_fresh_data_directory(harness, seaweedfs, tmp_path):
    """The room runs on node 1, hibernates (snapshot to S3), then wakes on node 2, whose data
    directory is empty: its state comes back from S3."""
    spec = seaweedfs.spec()
    async with RoomHarness(LabRoom, host=harness.host, name="moving", data_dir=tmp_path / "node1",
                           snapshots=spec) as node1:
        conn = await node1.connect()
        await conn.send("multi_put", {"n": 7})
        assert await node1.evict()
    async with RoomHarness(LabRoom, host=harness.host, name="moving", data_dir=tmp_path / "node2",
                           snapshots=spec) as node2:
        assert (await node2.request()).body["keys"] == 7
        assert (await node2.stats())["epoch"] == 2


# ---- the output gate as the test sees it ------------------------------------------------------

async def test_unconfirmed_output_reaches_the_test_even_when_the_commit_fails(lab):
    conn = await lab.connect()
    lab.faults.fail("commit")
    with pytest.raises(StorageError):  # the harness surfaces the failed commit to the test
        await conn.send("unconfirmed")
    # the frame sent past the output gate went out before the commit; the held one never did
    assert conn.received == [{"hello": "?"}, {"early": True}]
    await conn.send("unconfirmed")
    assert conn.received[-2:] == [{"early": True}, {"late": True}]
    assert (await lab.request()).body["count"] == 1  # the failed hook's write is not there


# ---- next_message (like @colyseus/testing's waitForMessage) -----------------------------------

async def test_next_message_returns_each_message_once_in_order(lab):
    conn = await lab.connect({"name": "Ada"})
    await conn.send("count")
    await conn.send("count")
    assert await conn.next_message() == {"hello": "Ada"}
    assert await conn.next_message(where=lambda m: m == {"count": 2}) == {"count": 2}  # skips count 1
    with pytest.raises(TimeoutError):
        await conn.next_message(timeout=0)
    assert conn.received == [{"hello": "Ada"}, {"count": 1}, {"count": 2}]  # all still there


async def test_next_message_waits_for_output_the_harness_did_not_ask_for(lab):
    conn = await lab.connect()
    assert await conn.next_message() == {"hello": "?"}
    await conn.send("alarm", {"in": 5.0})
    at = (await lab.stats())["alarm"]
    waiter = asyncio.create_task(conn.next_message())
    await lab.clock.advance(5.0)  # the clock itself, not h.advance: nothing collects the output
    assert await waiter == {"alarm": at}


async def test_next_message_on_a_connection_the_room_closed_raises(lab):
    conn = await lab.connect()
    await conn.send("kick")
    assert await conn.next_message() == {"hello": "?"}  # what came before the close is still read
    from starhold.errors import ConnectionClosed

    with pytest.raises(ConnectionClosed) as info:
        await conn.next_message()
    assert (info.value.code, info.value.reason) == (4000, "kicked")


# ---- run_in_room (like vitest-pool-workers' runInDurableObject) -------------------------------

async def test_run_in_room_runs_under_the_input_gate_and_commits_like_a_hook(lab):
    conn = await lab.connect()

    async def poke(room):
        assert room._runtime._gate.locked()  # no other event runs meanwhile
        await room.storage.put("count", 41)
        room.broadcast({"poked": True})  # held until the put commits, then delivered
        return room.name

    assert await lab.run_in_room(poke) == lab.name
    assert conn.received[-1] == {"poked": True}
    await conn.send("count")
    assert conn.received[-1] == {"count": 42}
    assert await lab.run_in_room(lambda room: len(room.connections)) == 1  # a plain function too


async def test_run_in_room_rolls_back_when_the_function_raises_and_wakes_a_sleeping_room(lab):
    conn = await lab.connect()
    await conn.send("count")
    assert await lab.evict()

    async def fail(room):
        await room.storage.put("count", 100)
        room.broadcast({"never": True})
        raise ValueError("no")

    with pytest.raises(ValueError):
        await lab.run_in_room(fail)  # woke the room, then rolled back
    assert await lab.run_in_room(lambda room: room.storage.get("count")) == 1
    assert {"never": True} not in conn.received


async def test_run_in_room_is_refused_on_ray():
    h = RoomHarness(LabRoom, host="ray")  # not started: the check needs no cluster
    with pytest.raises(RuntimeError, match="in-process"):
        await h.run_in_room(lambda room: None)


# ---- one place for the errors, and S3 snapshot stores as fixtures give them ------------------

def test_the_errors_a_test_needs_are_in_one_place():
    import starhold
    import starhold.errors as errors
    from starhold import harness
    from starhold.errors import ConnectionClosed
    from starhold._runtime.handle import RoomGone
    from starhold.storage.base import ForbiddenSqlError, StaleEpochError
    from starhold.storage.s3_snapshots import SnapshotConflictError

    assert errors.ActivationKilled is harness.ActivationKilled is ActivationKilled
    assert errors.ConnectionClosed is harness.ConnectionClosed is ConnectionClosed
    assert errors.RoomGone is RoomGone
    assert errors.StorageError is StorageError and errors.StaleEpochError is StaleEpochError
    assert errors.SnapshotConflictError is SnapshotConflictError
    assert errors.ForbiddenSqlError is ForbiddenSqlError
    for name in errors.__all__:
        assert getattr(starhold, name) is getattr(errors, name)


@pytest.mark.parametrize("host", HOSTS)
async def test_a_harness_takes_the_s3_store_fixture_and_its_spec(host, request, s3_store, tmp_path):
    if host == "ray":
        request.getfixturevalue("ray_cluster")
    from starhold.storage.factory import snapshot_spec, snapshot_store_from_config

    spec = snapshot_spec(s3_store)
    assert spec["kind"] == "s3" and spec["bucket"] == s3_store.bucket
    assert snapshot_store_from_config(spec, tmp_path).endpoint_url == s3_store.endpoint_url
    async with RoomHarness(LabRoom, host=host, name="moving", data_dir=tmp_path / "node1",
                           snapshots=s3_store) as node1:  # the store itself
        conn = await node1.connect()
        await conn.send("multi_put", {"n": 3})
        assert await node1.evict()
    async with RoomHarness(LabRoom, host=host, name="moving", data_dir=tmp_path / "node2",
                           snapshots=spec) as node2:  # the same store as a spec
        assert (await node2.request()).body["keys"] == 3

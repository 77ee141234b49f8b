"""The input barrier (``starhold._runtime.channel``'s "Input barrier", ``gateway.room_link``'s
tick marks): a ticked room on the wall clock waits, at each tick boundary, for the mark of every
gateway holding one of its connections, so a batch that reaches it after the boundary but before
its gateway's mark is applied in that tick; a gateway that does not mark, holds no connection or
is too late is not waited for (longer than ``INPUT_BARRIER_TIMEOUT``), and a room on a manual
clock never waits. Over real loopback TCP and joined in process, on the in-process host."""

import asyncio
import math
import time

import msgpack
import pytest

import starhold._runtime.channel as channel_module
from starhold._runtime.channel import ChannelServer
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import SystemClock
from starhold.gateway import metrics, room_link
from starhold.rooms import protocol as P
from starhold._runtime.events import Message

from test_channel import SYSTEM, join, open_channel, welcomes

PERIOD = 1 / P.TICK_RATE


@pytest.fixture(params=["tcp", "in_process"])
def via(request):
    return request.param


@pytest.fixture
async def wall_directory(tmp_path):
    """Rooms on the wall clock (the barrier's only clock), in this test's loop."""
    directory = InProcessDirectory(tmp_path / "data", clock=SystemClock(), idle_timeout=60.0)
    yield directory
    await directory.close()


def splices(peer):
    return [i for i in peer.items if i[0] == "splice"]


def acks_of(items, conn="c1"):
    return [P.decode_server(head + i[1])[2]["ack"] for i in items for c, head in i[2] if c == conn]


def previous_boundary(offset: float) -> float:
    """A tick boundary of the room (its ``tick_offset``) already past."""
    now = time.time()
    return offset + PERIOD * (math.floor((now - offset) / PERIOD) - 1)


class Waits:
    """Records the boundaries ticks started waiting for (``ChannelServer._late`` non-empty)."""

    def __init__(self, monkeypatch):
        self.floors: list[float] = []
        self.event = asyncio.Event()
        late = ChannelServer._late

        def recording(server, floor):
            found = late(server, floor)
            if found and floor not in self.floors:
                self.floors.append(floor)
                self.event.set()
            return found

        monkeypatch.setattr(ChannelServer, "_late", recording)


class Ticks:
    """Counts the room's ticks (wraps its ticker's ``on_tick``); ``await wait(n)`` for n more."""

    def __init__(self, runtime):
        self.count = 0
        self.event = asyncio.Event()
        ticker = runtime.room.ticker
        on_tick = ticker.on_tick

        async def counting(tick, missed):
            await on_tick(tick, missed)
            self.count += 1
            self.event.set()

        ticker.on_tick = counting

    async def wait(self, more: int) -> None:
        target = self.count + more
        async with asyncio.timeout(60):
            while self.count < target:
                self.event.clear()
                await self.event.wait()


async def joined(handle, gateway, conn, via):
    """A channel of ``gateway`` whose player ``conn`` joined and flies to a far corner (the room ticks while
    a ship moves); batch 2 is sent."""
    peer, channel, info = await open_channel(handle, gateway, via=via)
    assert info["marks"] is True and channel.marks
    channel.send(1, [join(conn, conn.upper())])
    channel.send(2, [Message(conn, P.ClientMessage(P.MOVE_TO, 2, {"x": -P.WORLD_LIMIT, "y": -P.WORLD_LIMIT}))])
    await peer.wait_for(lambda: welcomes(peer.items), timeout=60)
    return peer, channel


async def test_a_tick_waits_for_the_mark_and_applies_the_batch_that_came_after_its_boundary(
        wall_directory, monkeypatch, via):
    monkeypatch.setattr(channel_module, "INPUT_BARRIER_TIMEOUT", 600.0)  # only the mark may end the wait
    waits = Waits(monkeypatch)
    handle = await wall_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    runtime = handle.runtime
    peer, channel = await joined(handle, "gw-a", "c1", via)
    channel.mark(previous_boundary(runtime.room.ticker.offset))  # from now on this gateway marks
    await asyncio.wait_for(waits.event.wait(), 60)  # the next tick is due and waits for gw-a
    boundary = waits.floors[0] + PERIOD / 2
    assert boundary <= time.time()  # the tick's boundary has passed: this batch comes after it
    before = len(splices(peer))
    channel.send(3, [Message("c1", P.ClientMessage(P.MOVE_TO, 5, {"x": 10.0, "y": 0.0}))])
    channel.mark(boundary)
    await peer.wait_for(lambda: len(splices(peer)) > before, timeout=60)
    assert acks_of(splices(peer)[before:before + 1]) == [5]  # applied in the tick that waited
    stats = runtime.stats()
    assert stats["barrier_waits"] >= 1 and stats["barrier_timeouts"] == 0
    channel.close()


async def test_a_gateway_that_stops_marking_delays_each_tick_at_most_the_timeout(wall_directory, monkeypatch, via):
    monkeypatch.setattr(channel_module, "INPUT_BARRIER_TIMEOUT", 0.05)
    handle = await wall_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    runtime = handle.runtime
    peer, channel = await joined(handle, "gw-a", "c1", via)
    channel.mark(previous_boundary(runtime.room.ticker.offset))  # then nothing more
    await Ticks(runtime).wait(3)  # the room ticks on
    stats = runtime.stats()
    assert stats["barrier_timeouts"] >= 2 and stats["barrier_waits"] >= stats["barrier_timeouts"]
    channel.close()
    report = runtime.tick_stats.report()  # what the room pushes to its gateways, for /metrics
    assert report["barrier_seconds"] >= 0.04 * report["barrier_timeouts"]  # each gave up after ~0.05 s
    monkeypatch.setitem(metrics.ROOM_STATS, "system/sol", report)
    text = metrics.exposition()[0].decode()
    assert f'starhold_room_barrier_timeouts_total{{room="system/sol"}} {float(report["barrier_timeouts"])}' in text
    assert f'starhold_room_barrier_waits_total{{room="system/sol"}} {float(report["barrier_waits"])}' in text


async def test_no_tick_waits_for_a_gateway_that_never_marked_or_holds_no_connection(wall_directory, monkeypatch):
    monkeypatch.setattr(channel_module, "INPUT_BARRIER_TIMEOUT", 600.0)
    handle = await wall_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    runtime = handle.runtime
    peer, channel = await joined(handle, "gw-a", "c1", "tcp")  # has a player, never marks
    idle, idle_channel, _ = await open_channel(handle, "gw-b")  # marks, holds no connection
    idle_channel.mark(previous_boundary(runtime.room.ticker.offset))
    await idle.wait_for(lambda: idle.acks, timeout=60)  # a heartbeat: the room read the mark before
    await Ticks(runtime).wait(3)
    assert runtime.stats()["barrier_waits"] == 0
    assert runtime.channels.channels["gw-b"].marked is not None
    channel.close()
    idle_channel.close()


async def test_a_room_on_a_manual_clock_never_waits(room_directory, manual_clock, monkeypatch):
    monkeypatch.setattr(channel_module, "INPUT_BARRIER_TIMEOUT", 600.0)
    handle = await room_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    peer, channel = await joined(handle, "gw-a", "c1", "tcp")
    channel.mark(1.0)  # long before any boundary of this clock: late for every tick
    await peer.wait_for(lambda: handle.runtime.channels.channels["gw-a"].marked == 1.0 or peer.acks, timeout=60)
    ticks = Ticks(handle.runtime)
    for _ in range(3):
        await manual_clock.advance(PERIOD)
    await ticks.wait(3 - ticks.count)
    assert handle.runtime.stats()["barrier_waits"] == 0
    channel.close()


# ---- the gateway's side: RoomLink's marks -------------------------------------------------------

class FakeChannel:
    """What a link needs of a RoomChannel, recording batches and marks in order."""

    def __init__(self, marks=True):
        self.marks = marks
        self.lost = False
        self.sent: list = []
        self.marked = asyncio.Event()

    def send(self, batch_no, events, mark=None):
        self.sent.append(("batch", batch_no, len(events), time.time()))
        if mark is not None:  # (in the same write)
            self.mark(mark)

    def mark(self, boundary):
        self.sent.append(("mark", boundary, None, time.time()))
        self.marked.set()

    def close(self):
        pass


class FakeSocket:
    def __init__(self, conn_id):
        self.conn_id = conn_id
        self.connected = True


def ticked_link(channel):
    link = room_link.RoomLink(None, "gw", "system", "sol", {}, tick_rate=P.TICK_RATE)
    link._ensure_runner = lambda: None  # no directory: the channel below is the link's
    link._channel = channel
    return link


async def test_a_link_with_sockets_marks_every_boundary_after_the_batch_queued_for_it():
    channel = FakeChannel()
    link = ticked_link(channel)
    link.attach(FakeSocket("c1"))
    link.submit(Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0})))
    for _ in range(2):
        channel.marked.clear()
        await asyncio.wait_for(channel.marked.wait(), 60)
    marks = [entry for entry in channel.sent if entry[0] == "mark"]
    assert [entry[0] for entry in channel.sent][:1] == ["batch"]  # the input went before the first mark
    for _, boundary, _, sent_at in marks:
        ticks = (boundary - link.tick_offset) / link.period
        assert abs(ticks - round(ticks)) < 1e-6  # a boundary of the room's ticks
        assert sent_at >= boundary - link.flush_points[-1] - 0.002  # not before the tick's last flush point
    assert marks[1][1] > marks[0][1]
    await link.stop()


async def test_a_link_flushes_just_before_the_boundary_when_its_room_runs_on_its_loop(wall_directory, monkeypatch,
                                                                                        via):
    """A link joined in process (the room on this loop: sockets in the room's host) sends its
    batch and mark ``IN_PROCESS_FLUSH_POINTS`` before each boundary; over TCP, ``FLUSH_POINTS``."""
    if via == "tcp":
        open_channel = room_link.RoomChannel.open.__func__

        async def over_tcp(cls, info, gateway_id, on_push, on_lost, in_process=True):
            return await open_channel(cls, info, gateway_id, on_push, on_lost, in_process=False)

        monkeypatch.setattr(room_link.RoomChannel, "open", classmethod(over_tcp))
    link = room_link.RoomLink(wall_directory, "gw-a", "system", "sol",
                              {"system": SYSTEM, "pirates": False, "pilots": False}, tick_rate=P.TICK_RATE)
    assert link.flush_points == room_link.FLUSH_POINTS  # until a channel says where the room is
    await link._open()
    assert isinstance(link._channel, room_link.InProcessRoomChannel) == (via == "in_process")
    expected = room_link.IN_PROCESS_FLUSH_POINTS if via == "in_process" else room_link.FLUSH_POINTS
    assert link.flush_points == expected and expected[-1] < PERIOD / 2
    link.attach(FakeSocket("c1"))  # a socket: the link marks each boundary, at its flush point
    assert link._mark_timer is not None
    await link.stop()


async def test_a_link_marks_nothing_without_sockets_or_for_a_room_that_does_not_read_marks():
    quiet = FakeChannel()
    link = ticked_link(quiet)
    link._schedule_mark()
    assert link._mark_timer is None  # no sockets
    link.attach(FakeSocket("c1"))
    assert link._mark_timer is not None
    link.sockets.clear()  # the last socket left: the next mark is not sent, nor armed again
    link._mark_timer.cancel()
    link._mark(time.time())  # what its timer would have called
    assert quiet.sent == [] and link._mark_timer is None
    await link.stop()
    old = FakeChannel(marks=False)
    link = ticked_link(old)
    link.attach(FakeSocket("c1"))
    assert link._mark_timer is None
    await link.stop()


def test_a_tick_s_last_batch_and_its_mark_go_in_one_write():
    from starhold.gateway.room_channel import RoomChannel

    class Transport:
        def __init__(self):
            self.writes = []

        def write(self, data):
            self.writes.append(data)

    channel = RoomChannel(lambda ack, items: None, lambda channel: None)
    channel.transport, channel.marks = Transport(), True
    events = [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0}))]
    channel.send(1, events, mark=1234.5)
    channel.send(2, events)
    channel.marks = False  # a room that does not read marks gets none
    channel.send(3, events, mark=1234.6)
    first, second, third = channel.transport.writes
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(first)
    batch, mark = list(unpacker)
    assert batch[0] == 1 and mark == ["mark", 1234.5]  # [batch_no, events], then the mark
    for data, number in ((second, 2), (third, 3)):
        unpacker.feed(data)
        assert [item[0] for item in unpacker] == [number]

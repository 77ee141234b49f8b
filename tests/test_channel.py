"""The data channel between gateways and a room activation (``starhold._runtime.channel``), over real
loopback TCP on the in-process host and joined in process (the gateway on the room's loop):
batches in order with acks, output pushed without being asked, foreign or broken peers dropped
while the room keeps serving, and a channel that ends with its activation."""

import asyncio

import msgpack
import pytest

from starhold.rooms import protocol as P
from starhold._runtime.events import Connect, Message, encode_batch
from starhold.gateway.room_channel import InProcessRoomChannel, RoomChannel

SYSTEM = {"id": "sol", "name": "Sol", "color": "#fff2e7", "star_radius": 40.0, "planets": []}


class Peer:
    """A gateway end that records what the room pushes."""

    def __init__(self):
        self.acks: list[int] = []
        self.items: list = []
        self.pushes: list[tuple[int, list]] = []
        self.lost = asyncio.Event()
        self.got = asyncio.Event()

    def on_push(self, ack, items):
        self.acks.append(ack)
        self.items.extend(items)
        self.pushes.append((ack, list(items)))
        self.got.set()

    def on_lost(self, channel):
        self.lost.set()

    async def wait_for(self, predicate, timeout=5.0):
        async def loop():
            while not predicate():
                self.got.clear()
                await self.got.wait()
        await asyncio.wait_for(loop(), timeout)


def welcomes(items):
    return [P.decode_server(i[2]) for i in items if i[0] == "send" and P.decode_server(i[2])[0] == P.WELCOME]


def join(conn_id, name):
    return Connect(conn_id, {}, 1, {"player": f"p-{conn_id}", "name": name, "kind": "guest"})


@pytest.fixture(params=["tcp", "in_process"])
def via(request):
    """How the gateway end joins: over loopback TCP, or in process (the room is on this loop)."""
    return request.param


async def open_channel(room, gateway="gw-a", via="tcp"):
    peer = Peer()
    info = await room.open_channel(gateway)
    channel = await RoomChannel.open(info, gateway, peer.on_push, peer.on_lost, in_process=via == "in_process")
    assert isinstance(channel, InProcessRoomChannel) == (via == "in_process")
    return peer, channel, info


async def test_batches_are_applied_in_order_and_acknowledged(room_directory, via):
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    peer, channel, info = await open_channel(room, via=via)
    assert info["epoch"] == (await room.stats())["epoch"]
    channel.send(1, [join("c1", "Ada")])
    channel.send(2, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 10.0, "y": 0.0})),
                     Message("c1", P.ClientMessage(P.MOVE_TO, 3, {"x": 20.0, "y": 0.0}))])
    await peer.wait_for(lambda: peer.acks and peer.acks[-1] == 2)
    assert peer.acks == sorted(peer.acks)
    [welcome] = welcomes(peer.items)
    assert welcome[2]["name"] == "Ada"
    # the tick's frame is pushed without the gateway asking, carrying the last applied seq
    await room.fire_alarm()
    await peer.wait_for(lambda: any(i[0] == "splice" for i in peer.items[1:]))
    frames = [P.decode_server(head + i[1]) for i in peer.items if i[0] == "splice" for _, head in i[2]]
    assert frames[-1][2]["ack"] == 3
    channel.close()


@pytest.mark.parametrize("announced", [True, False], ids=["nested", "plain"])
async def test_a_gateway_sends_the_batch_format_the_room_announces(room_directory, announced):
    # A room announces nested event bytes in its channel info ("events": "bin"); a room of an
    # earlier version does not, and its gateway sends the plain array, which rooms still read.
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    peer = Peer()
    info = await room.open_channel("gw-a")
    assert info["events"] == "bin"
    if not announced:
        info = {k: v for k, v in info.items() if k != "events"}
    channel = await RoomChannel.open(info, "gw-a", peer.on_push, peer.on_lost, in_process=False)
    written = []
    write = channel.transport.write
    channel.transport.write = lambda data: (written.append(data), write(data))
    channel.send(1, [join("c1", "Ada")])
    channel.send(2, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 10.0, "y": 0.0}))])
    await peer.wait_for(lambda: peer.acks and peer.acks[-1] == 2, timeout=60)
    assert [type(msgpack.unpackb(data)[1]) for data in written] == [bytes if announced else list] * 2
    await room.fire_alarm()
    await peer.wait_for(lambda: any(i[0] == "splice" for i in peer.items), timeout=60)
    frames = [P.decode_server(head + i[1]) for i in peer.items if i[0] == "splice" for _, head in i[2]]
    assert frames[-1][2]["ack"] == 2
    channel.close()


async def test_an_input_batch_s_ack_rides_on_the_next_frame_or_comes_alone_after_the_linger(
        room_directory, monkeypatch, via):
    """A batch of inputs alone is acknowledged with the next push that has output (by the
    tick's frame at the latest), not in a push of its own; with no output it comes alone after ACK_LINGER. A
    batch with a connect is acknowledged at once."""
    import starhold._runtime.channel as channel_module

    monkeypatch.setattr(channel_module, "HEARTBEAT_INTERVAL", 600.0)  # no empty pushes meanwhile
    monkeypatch.setattr(channel_module, "ACK_LINGER", 600.0)
    room = await room_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    peer, channel, _ = await open_channel(room, via=via)
    channel.send(1, [join("c1", "Ada")])
    await peer.wait_for(lambda: peer.acks and peer.acks[-1] == 1, timeout=60)  # at once, linger or not
    events = (await room.stats())["events"]
    channel.send(2, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 10.0, "y": 0.0}))])
    async with asyncio.timeout(60):
        while (await room.stats())["events"] == events:  # until the room applied batch 2
            await asyncio.sleep(0)
    await room.fire_alarm()  # the tick: its frame carries ack 2 (if nothing went out before it)
    await peer.wait_for(lambda: peer.acks[-1] == 2, timeout=60)
    assert all(items for ack, items in peer.pushes if ack == 2), peer.pushes  # never alone
    assert any(item[0] == "splice" for ack, items in peer.pushes if ack == 2 for item in items)
    monkeypatch.setattr(channel_module, "ACK_LINGER", 0.05)
    channel.send(3, [Message("c1", P.ClientMessage(P.MOVE_TO, 3, {"x": 20.0, "y": 0.0}))])
    await peer.wait_for(lambda: peer.acks[-1] == 3, timeout=60)  # no tick, no output: alone after the linger
    assert [list(items) for ack, items in peer.pushes if ack == 3] == [[]]
    channel.close()


async def test_a_peer_without_the_secret_is_dropped_and_the_room_serves_on(room_directory):
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    info = await room.open_channel("gw-a")
    reader, writer = await asyncio.open_connection(info["host"], info["port"])
    writer.write(msgpack.packb(["hello", "gw-evil", "0" * 32]) + encode_batch(1, [join("x", "Eve")]))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
    writer.close()
    reader, writer = await asyncio.open_connection(info["host"], info["port"])
    writer.write(b"\xc1\xc1\xc1 not msgpack")  # garbage before any hello
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert (await room.stats())["connections"] == 0  # nothing was applied
    peer, channel, _ = await open_channel(room, "gw-b")
    channel.send(1, [join("c2", "Bob")])
    await peer.wait_for(lambda: welcomes(peer.items))
    channel.close()


async def test_a_malformed_batch_from_a_gateway_closes_only_its_channel(room_directory):
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    good, good_channel, _ = await open_channel(room, "gw-good")
    good_channel.send(1, [join("c1", "Ada")])
    await good.wait_for(lambda: welcomes(good.items))
    bad, bad_channel, _ = await open_channel(room, "gw-bad", via="tcp")  # bytes on the wire
    bad_channel.transport.write(msgpack.packb([1, [["message", "c9"]]]))  # a message without its body
    await asyncio.wait_for(bad.lost.wait(), 5)
    good_channel.send(2, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 5.0, "y": 5.0}))])
    await good.wait_for(lambda: good.acks[-1] == 2)
    assert not good.lost.is_set()
    good_channel.close()


async def test_the_channel_ends_with_the_activation(room_directory, manual_clock, via):
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    peer, channel, _ = await open_channel(room, via=via)
    channel.send(1, [join("c1", "Ada")])
    await peer.wait_for(lambda: welcomes(peer.items))
    assert await room.hibernate()
    await asyncio.wait_for(peer.lost.wait(), 5)
    assert list(peer.items[-1]) == ["hibernate"]  # told first: the room sleeps holding c1
    woken = await room_directory.get("system", "sol")
    peer2, channel2, info2 = await open_channel(woken, via=via)
    assert info2["epoch"] > 1
    channel2.send(1, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0}))])
    await peer2.wait_for(lambda: peer2.acks and peer2.acks[-1] == 1)
    assert not [i for i in peer2.items if i[0] == "close"]  # c1 came back with the room
    channel2.close()



async def test_one_worker_applies_a_channel_s_batches_and_ends_with_it(room_directory, via):
    # The room applies a channel's batches in one worker task that waits while none is queued
    # (not a task per batch): batches sent after it went idle are applied, in order, by the
    # same task, and it ends when the channel does.
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    peer, channel, _ = await open_channel(room, via=via)
    channel.send(1, [join("c1", "Ada")])
    await peer.wait_for(lambda: peer.acks and peer.acks[-1] == 1)
    [server_end] = room_directory.runtime("system", "sol").channels.channels.values()
    worker = server_end.worker
    for n in range(2, 6):
        await asyncio.sleep(0)  # the worker is idle, waiting for a batch
        assert server_end.waiting is not None and not worker.done()
        channel.send(n, [Message("c1", P.ClientMessage(P.MOVE_TO, n, {"x": float(n), "y": 0.0}))])
        await peer.wait_for(lambda: peer.acks[-1] == n)
        assert server_end.worker is worker
    assert peer.acks == sorted(peer.acks)
    channel.close()
    await asyncio.wait([worker], timeout=5)
    assert worker.done()  # ended (or cancelled with the connection), not left waiting


async def test_a_silent_room_channel_is_dropped_and_a_live_one_hears_heartbeats(room_directory, monkeypatch, via):
    """A room pushes at least every HEARTBEAT_INTERVAL; a gateway drops a channel that stays
    silent for CHANNEL_TIMEOUT (a node that vanished without closing its sockets)."""
    import starhold.gateway.room_channel as room_channel

    monkeypatch.setattr(room_channel, "CHANNEL_TIMEOUT", 2.5)
    handle = await room_directory.get("system", "sol", {"system": SYSTEM, "pirates": False, "pilots": False})
    live = Peer()
    channel = await RoomChannel.open(await handle.open_channel("gw-live"), "gw-live", live.on_push, live.on_lost,
                                     in_process=via == "in_process")
    await live.wait_for(lambda: len(live.acks) >= 3)  # heartbeats of an idle room: [0, []]
    assert not live.lost.is_set() and not channel.lost

    async def silent(reader, writer):  # accepts the hello and never answers
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dead = Peer()
    await RoomChannel.open({"host": "127.0.0.1", "port": port, "secret": "x", "epoch": 1}, "gw-dead",
                           dead.on_push, dead.on_lost)
    await asyncio.wait_for(dead.lost.wait(), 30)
    assert dead.acks == []
    channel.close()
    server.close()


async def test_a_gateway_on_the_room_s_loop_joins_in_process_and_any_other_connects_over_tcp(room_directory):
    """``open`` joins in process only when ``info`` names this process and the room's server is
    open on the running loop; a foreign process token or a loop of its own means TCP."""
    from starhold._runtime.channel import PROCESS

    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    info = await room.open_channel("gw-a")
    assert info["process"] == PROCESS
    peer, channel, _ = await open_channel(room, "gw-a", via="in_process")
    other = Peer()
    foreign = await RoomChannel.open({**info, "process": "elsewhere"}, "gw-b", other.on_push, other.on_lost)
    assert type(foreign) is RoomChannel
    channel.send(1, [join("c1", "Ada")])
    foreign.send(1, [join("c2", "Bob")])
    await peer.wait_for(lambda: welcomes(peer.items))
    await other.wait_for(lambda: welcomes(other.items))
    assert (await room.stats())["connections"] == 2

    def on_another_loop():  # a gateway in this process but on a loop of its own
        async def main():
            lone = Peer()
            ch = await RoomChannel.open(info, "gw-c", lone.on_push, lone.on_lost)
            kind = type(ch)
            ch.close()
            return kind
        return asyncio.run(main())

    assert await asyncio.to_thread(on_another_loop) is RoomChannel
    channel.close()
    foreign.close()


async def test_an_in_process_channel_ends_on_either_side_after_what_was_handed_over(room_directory):
    """The gateway's close reaches the room (its channel is forgotten, a newer one may join);
    a crash of the activation ends the gateway's end after the pushes before it."""
    room = await room_directory.get("system", "sol", {"system": SYSTEM})
    peer, channel, _ = await open_channel(room, "gw-a", via="in_process")
    channel.send(1, [join("c1", "Ada")])
    await peer.wait_for(lambda: welcomes(peer.items))
    server = channel.transport.channel.server
    assert "gw-a" in server.channels
    channel.close()
    await asyncio.wait_for(peer.lost.wait(), 5)
    async with asyncio.timeout(5):
        while "gw-a" in server.channels:
            await asyncio.sleep(0)
    channel.send(2, [join("c9", "Late")])  # after the end: dropped, never applied
    peer2, channel2, _ = await open_channel(room, "gw-a", via="in_process")
    channel2.send(1, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0}))])
    await peer2.wait_for(lambda: peer2.acks and peer2.acks[-1] == 1)
    assert (await room.stats())["connections"] == 1
    await server.close(flush=False)  # what a crash does to the activation's channels
    await asyncio.wait_for(peer2.lost.wait(), 5)
    assert channel2.lost
    with pytest.raises(ConnectionError):
        server.join_in_process("gw-z", peer2.on_push, lambda exc: None)


def test_a_push_is_written_as_msgpack_would_write_it():
    # The room encodes pushes with msgspec (faster): the bytes msgpack.packb writes for the
    # items a room pushes (tuples, lists, str, bytes, ints, floats, maps).
    from starhold._runtime.channel import _Channel

    class Transport:
        def __init__(self):
            self.data = []

        def write(self, data):
            self.data.append(data)

    channel = _Channel.__new__(_Channel)
    channel.transport = Transport()
    pushes = [(3, [("splice", b"tail", [("gw:1", b"\x93head")]), ("stats", "session/b", {"p50": 1.5, "n": 2}),
                   ("close", "gw:2", 4000, "bye"), ("hibernate",)]),
              (4, [("send", ("gw:1", "gw:3"), b"\x93\xa5error"), ("moved",)]),
              (5, [])]
    for ack, items in pushes:
        channel._write_push(ack, items)
    assert channel.transport.data == [msgpack.packb([ack, items], use_bin_type=True) for ack, items in pushes]

"""A room link's frame fan-out on the direct path (``gateway.room_link``, ``starhold.wsdirect.FrameWriter``):
a frame goes straight to a socket's transport, as the socket's own path would write it, only
while nothing is queued or being written for that socket, it is not behind or resynchronising,
and its connection is neither closing nor paused; otherwise the socket's own path takes it, in
order behind what it queued. Fake WebSocket and transport, a manual clock; no sleeps."""

from starhold.rooms import protocol as P
from starhold.gateway import metrics
from starhold.gateway.auth import Identity
from starhold.gateway.room_link import RoomLink
from starhold.gateway.sockets import ClientSocket
from starhold.wsdirect import FrameWriter, binary_frame_header

from test_limits import Clock, FakeGateway, FakeLink, FakeWS, settle


class Transport:
    def __init__(self):
        self.data = bytearray()
        self.closing = False

    def write(self, data):
        self.data += data

    def is_closing(self):
        return self.closing


class Protocol:
    _paused = False


class Writer:
    """aiohttp's ``WebSocketWriter`` as the direct path uses it."""

    def __init__(self):
        self._closing = False
        self.transport = Transport()
        self.protocol = Protocol()

    def _write_websocket_frame(self, data, opcode, compress):
        if self.transport.is_closing():  # as aiohttp's
            raise ConnectionResetError("Cannot write to closing transport")
        self.transport.write(binary_frame_header(len(data)) + data)


class Direct:
    def attach(self, callback):
        pass


class DirectWS(FakeWS):
    """A prepared ``DirectWebSocketResponse``: frames written at once go to ``_writer.transport``;
    ``send_bytes`` (the writer task's path) records them in ``sent`` while ``gate`` is set."""

    closed = False

    def __init__(self):
        super().__init__()
        self._writer = Writer()
        self.direct = Direct()


def wire(data: bytes) -> bytes:
    return binary_frame_header(len(data)) + data


def make_link(n=2):
    link = RoomLink(None, "gw-test", "session", "g-1", {}, tick_rate=None)
    link._stopped = True  # no runner: nothing here talks to a room
    socks = []
    for i in range(n):
        sock = ClientSocket(FakeGateway(FakeLink()), DirectWS(), "session", "g-1",
                            Identity(f"p{i}", f"n{i}", "guest", 0.0), now=Clock())
        link.attach(sock)
        socks.append(sock)
    return link, socks


TAIL = P.frame_tail_start(7) + b"\x80" * 50


def splice(socks, tag=b"h"):
    return [("splice", TAIL, [(s.conn_id, tag + s.conn_id.encode()) for s in socks])]


async def test_a_plain_socket_s_frame_goes_straight_to_its_transport_as_the_socket_would_write_it():
    link, socks = make_link()
    assert set(link.writers) == {s.conn_id for s in socks} and all(s.fast.plain for s in socks)
    before = metrics.TRAFFIC.messages_out
    link._dispatch_items(splice(socks))
    for s in socks:
        assert bytes(s.ws._writer.transport.data) == wire(b"h" + s.conn_id.encode() + TAIL)
        assert s.ws.sent == []  # not through the writer task
    assert metrics.TRAFFIC.messages_out - before == 2
    await link.stop()


async def test_frames_behind_a_queued_one_follow_it_through_the_queue_then_go_straight_again():
    link, (a, b) = make_link()
    a.ws._writer.protocol._paused = True  # flow control: a's transport takes nothing now
    link._dispatch_items(splice([a, b], b"1"))
    assert not a.fast.plain and b.fast.plain
    assert a.ws._writer.transport.data == b"" and a.ws.sent == []  # queued (the writer task waits)
    a.ws._writer.protocol._paused = False
    a.ws.gate.clear()  # the writer task is sending the first one and waits
    await settle()
    link._dispatch_items(splice([a, b], b"2"))
    assert a.ws._writer.transport.data == b""  # not overtaking the queued frame
    a.ws.gate.set()
    await settle()
    assert a.ws.sent == [b"1" + a.conn_id.encode() + TAIL, b"2" + a.conn_id.encode() + TAIL]
    assert a.fast.plain  # drained
    link._dispatch_items(splice([a], b"3"))
    assert bytes(a.ws._writer.transport.data) == wire(b"3" + a.conn_id.encode() + TAIL)
    assert bytes(b.ws._writer.transport.data) == wire(b"1" + b.conn_id.encode() + TAIL) + \
        wire(b"2" + b.conn_id.encode() + TAIL)
    await link.stop()


async def test_no_frame_reaches_a_socket_that_closes_or_whose_connection_is_closing():
    link, (a, b) = make_link()
    a.close_soon(P.CLOSE_NORMAL, "bye")
    b.ws._writer.transport.closing = True
    assert not a.fast.plain
    link._dispatch_items(splice([a, b]))
    assert a.ws._writer.transport.data == b"" and b.ws._writer.transport.data == b""
    await settle()
    assert a.ws.sent == [] and a.ws.closed_with == P.CLOSE_NORMAL  # the close went out, no frame before it
    await link.stop()


async def test_a_socket_that_resynchronises_gets_no_delta_until_its_keyframe():
    link, (a,) = make_link(1)
    a.awaiting_keyframe = True  # as after falling behind (test_limits.py: the resync itself)
    a._sync_fast()
    delta = [("splice", TAIL, [(a.conn_id, b"d")])]
    link._dispatch_items(delta)
    assert a.ws._writer.transport.data == b""  # dropped: the client waits for a keyframe
    keyframe_tail = P.frame_tail_start(None) + b"\x80"
    link._dispatch_items([("splice", keyframe_tail, [(a.conn_id, b"k")])])
    assert bytes(a.ws._writer.transport.data) == wire(b"k" + keyframe_tail)
    assert a.fast.plain and not a.awaiting_keyframe
    await link.stop()


async def test_a_socket_the_link_lets_go_loses_its_direct_path():
    link, (a, b) = make_link()
    link._dispatch_items([("close", a.conn_id, P.CLOSE_ROOM_UNAVAILABLE, "gone")])
    link.detach(b.conn_id, 1000, "left")
    assert link.writers == {} and link.sockets == {}
    link._dispatch_items(splice([a, b]))
    assert a.ws._writer.transport.data == b"" and b.ws._writer.transport.data == b""
    await link.stop()


def test_a_frame_writer_takes_frames_while_its_connection_is_neither_closing_nor_paused():
    ws = DirectWS()
    fast = FrameWriter(ws._writer)
    assert fast.plain and fast.ok()
    ws._writer.protocol._paused = True
    assert not fast.ok()
    ws._writer.protocol._paused = False
    ws._writer._closing = True
    assert not fast.ok()
    ws._writer._closing = False
    ws._writer.transport.closing = True
    assert not fast.ok()

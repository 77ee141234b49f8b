"""The gateway's compiled input path (``starhold.kernels.wsinput``): the frame reader gives a
connection exactly what aiohttp's reader gives it (messages, order, errors, flow control), and
the input gate handles a message exactly as ``ClientSocket.receive`` does; the compiled classes
and their Python twins alike."""

import asyncio
import random

import msgspec
import pytest

from starhold import wsdirect
from starhold._runtime.events import Connect, Message
from starhold.gateway.sockets import ClientSocket
from starhold.kernels import wsinput
from starhold.messages import RAW_ENVELOPE
from starhold.rooms import protocol as P

from test_limits import Clock, FakeLink, decoded, make_socket, settle

READERS = [pytest.param(wsinput.FrameReaderPy, id="twin")]
GATES = [pytest.param(wsinput.InputGatePy, id="twin")]
BUCKETS = [pytest.param(wsinput.TokenBucketPy, id="twin")]
if wsinput.COMPILED:
    READERS.append(pytest.param(wsinput.FrameReader, id="compiled"))
    GATES.append(pytest.param(wsinput.InputGate, id="compiled"))
    BUCKETS.append(pytest.param(wsinput.TokenBucket, id="compiled"))


def test_the_extension_is_built_for_the_test_suite():
    assert wsinput.COMPILED  # make setup builds it; without it the twins above run alone
    assert wsdirect.frame_reader_enabled() and not wsdirect.FRAME_READER_PROBLEMS


def frame(opcode, payload, fin=True, rsv=0, mask=True, length=None):
    """A frame as a client sends it (RFC 6455 §5.2); ``length`` forces the length field."""
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes(((0x80 if mask else 0) | n,))
    elif n < 65536:
        head = bytes(((0x80 if mask else 0) | 126,)) + n.to_bytes(2, "big")
    else:
        head = bytes(((0x80 if mask else 0) | 127,)) + n.to_bytes(8, "big")
    first = bytes(((0x80 if fin else 0) | rsv | opcode,))
    if not mask:
        return first + head + payload
    key = bytes(random.getrandbits(8) for _ in range(4))
    return first + head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def random_frames(rng: random.Random) -> list[bytes]:
    """A few frames of every kind a client (or an attacker) may send."""
    def blob(n):
        return bytes(rng.getrandbits(8) for _ in range(n))

    menu = [
        lambda: [frame(2, blob(rng.randint(0, 40)), mask=rng.random() < 0.9)],
        lambda: [frame(2, blob(rng.randint(126, 700)))],
        lambda: [frame(1, "h\u00e9llo".encode())],
        lambda: [frame(1, b"\xff\xfe")],  # invalid UTF-8
        lambda: [frame(9, blob(rng.randint(0, 125)))],
        lambda: [frame(10, blob(rng.randint(0, 10)))],
        lambda: [frame(8, (1000).to_bytes(2, "big") + b"bye")],
        lambda: [frame(8, b"")],
        lambda: [frame(8, (1).to_bytes(2, "big"))],  # an invalid close code
        lambda: [frame(2, b"a", fin=False), frame(9, b"p"), frame(0, b"b", fin=False), frame(0, b"c")],
        lambda: [frame(1, b"x", fin=False), frame(0, b"y")],
        lambda: [frame(0, b"orphan")],  # a continuation with no message
        lambda: [frame(2, b"a", fin=False), frame(2, b"b")],  # a new message inside a fragmented one
        lambda: [frame(2, b"r", rsv=rng.choice((0x40, 0x20, 0x10)))],
        lambda: [frame(rng.choice((3, 4, 7, 11, 15)), b"op")],
        lambda: [frame(9, b"p", fin=False)],  # a fragmented control frame
        lambda: [frame(9, blob(126))],  # a control frame over 125 bytes
        lambda: [frame(2, blob(3), length=70000)[:40]],  # a 64-bit length, never completed
        lambda: [frame(2, blob(1200))],  # over the small max_msg_size below
    ]
    frames = []
    for _ in range(rng.randint(1, 10)):
        frames += rng.choices(menu, weights=[30, 4, 3, 1, 3, 3, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])[0]()
    return frames


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` cut where a socket read might cut it."""
    chunks, pos = [], 0
    while pos < len(data):
        n = rng.choice((1, 2, 3, 5, 8, 13, 64, 500, len(data)))
        chunks.append(data[pos:pos + n])
        pos += n
    return chunks


@pytest.fixture(params=READERS)
def reader(request, monkeypatch):
    """Which frame reader ``wsdirect._trace`` wraps aiohttp's with."""
    monkeypatch.setattr(wsdirect, "FrameReader", request.param)
    return request.param


def test_the_frame_reader_gives_what_aiohttps_reader_gives(reader):
    rng = random.Random(17)
    delegated = fast = 0
    for case in range(600):
        data = b"".join(random_frames(rng))
        chunks = chunked(data, rng)
        handler = rng.random() < 0.9
        max_msg_size = rng.choice((1 << 16, 1000, 0))
        theirs = wsdirect._trace(chunks, False, handler, max_msg_size)
        ours = wsdirect._trace(chunks, True, handler, max_msg_size)
        assert ours == theirs, f"case {case}: {chunks!r}"
        fast += sum(1 for entry in ours if entry[0] == "data")
        delegated += any(entry[0] == "exception" and entry[1] != "NoneType" for entry in ours)
    assert fast > 1000 and delegated > 100  # both the fast path and aiohttp's errors were exercised


def test_a_stream_of_small_inputs_stays_on_the_fast_path(reader):
    stream = b"".join(frame(2, P.encode(P.MOVE_TO, seq, {"x": seq, "y": 1})) for seq in range(50))
    stream += frame(10, b"") + frame(9, b"hi") + frame(2, P.encode(P.PING, 51, {}))
    loop = asyncio.new_event_loop()
    try:
        from aiohttp.base_protocol import BaseProtocol

        queue = wsdirect.DirectQueue(BaseProtocol(loop), wsdirect.DEFAULT_LIMIT, loop=loop)
        inner = wsdirect.WebSocketReader(queue, 1 << 16, compress=False, decode_text=True)
        parser = queue.reader = reader(inner, queue, 1 << 16)
        got = []
        queue.attach(got.append)
        for i in range(0, len(stream), 7):  # reads that cut frames anywhere
            assert parser.feed_data(stream[i:i + 7]) == (False, b"")
        assert [msgspec.msgpack.decode(m)[1] for m in got] == list(range(50)) + [51]
        assert not parser.delegating and parser.received == 51  # the pong and the ping went to aiohttp
        assert [m.type.name for m in (queue._take(), queue._take())] == ["PONG", "PING"]
        assert queue.messages() == 53
    finally:
        loop.close()


def test_a_flood_of_control_frames_stalls_the_reader_as_aiohttp_does(reader):
    # pings the application does not read fill the queue past its limit: aiohttp stops parsing
    # (and later frames wait) until the queue drains; the frame reader hands the connection over
    pings = [frame(9, b"p" * 125) for _ in range(2 * wsdirect.DEFAULT_LIMIT // 253 + 50)]
    data = b"".join(pings) + b"".join(frame(2, bytes((i,))) for i in range(20))
    rng = random.Random(3)
    for _ in range(3):
        chunks = chunked(data, rng)
        assert wsdirect._trace(chunks, True) == wsdirect._trace(chunks, False)


def test_a_handler_that_raises_ends_the_connection_as_in_aiohttp(reader):
    def handler(data):
        if data == b"boom":
            raise ValueError("bad input")

    data = frame(2, b"ok") + frame(2, b"boom") + frame(2, b"after")
    for size in (1, 4, len(data)):
        chunks = [data[i:i + size] for i in range(0, len(data), size)] + [frame(2, b"later")]
        ours, theirs = wsdirect._trace(chunks, True, handler), wsdirect._trace(chunks, False, handler)
        assert ours == theirs
        assert ("fed", (True, b"")) in ours and ours[-1][:3] == ("exception", "ValueError", "bad input")


def test_a_long_frame_read_in_pieces_goes_to_aiohttps_reader(reader):
    data = frame(2, b"a") + frame(2, b"L" * 5000) + frame(2, b"z")
    chunks = [data[i:i + 100] for i in range(0, len(data), 100)]
    assert wsdirect._trace(chunks, True) == wsdirect._trace(chunks, False)
    assert [e[1] for e in wsdirect._trace(chunks, True) if e[0] == "data"] == [b"a", b"L" * 5000, b"z"]


@pytest.mark.parametrize("bucket_cls", BUCKETS)
def test_the_token_bucket_refills_at_its_rate_up_to_its_burst(bucket_cls):
    clock = Clock()
    bucket = bucket_cls(20, 40, now=clock)
    assert sum(bucket.take() for _ in range(100)) == 40
    clock.t += 0.5
    assert sum(bucket.take() for _ in range(100)) == 10
    clock.t += 0.0125  # a quarter token: none yet
    assert not bucket.take()
    clock.t += 100
    assert sum(bucket.take() for _ in range(100)) == 40 and bucket.tokens == 0.0


class Traffic:
    def __init__(self):
        self.messages_in = self.bytes_in = 0


def recording_gate(base):
    class Recorder(base):
        def __init__(self):
            super().__init__(RAW_ENVELOPE, P.ClientMessage, Message, P.MAX_MESSAGE_BYTES, P.MAX_SEQ)
            self.calls = []
            self.traffic = Traffic()
            self.bucket = wsinput.TokenBucket(20, 3, now=lambda: 0.0)
            self.conn_id = "c-1"

        def receive(self, data):
            self.calls.append(("receive", data))
            if data == b"raise":
                raise RuntimeError("handler bug")

        def failed(self, exc):
            self.calls.append(("failed", str(exc)))

        def _rate_limited(self, seq):
            self.calls.append(("rate", seq))

        def room_busy(self, seq):
            self.calls.append(("busy", seq))

    return Recorder()


@pytest.mark.parametrize("gate_cls", GATES)
def test_the_gate_handles_the_common_case_and_passes_everything_else_on(gate_cls):
    from starhold.messages import kind_fast_decoders, kind_schemas
    from starhold.rooms.system.room import SolarSystemRoom

    gate = recording_gate(gate_cls)
    move = P.encode(P.MOVE_TO, 7, {"x": 1.5, "y": -2})
    gate(move)  # not joined yet
    assert gate.calls == [("receive", move)]
    gate.joined, gate.link = True, FakeLink()
    gate(move)  # no schemas loaded yet
    gate.schemas = (kind_schemas(SolarSystemRoom), kind_fast_decoders(SolarSystemRoom))
    gate._errors = 2
    gate.calls.clear()
    gate(move)
    assert gate.calls == [] and gate._errors == 0
    [event] = gate.link.events
    assert event == Message("c-1", P.ClientMessage(P.MOVE_TO, 7, P.MoveTo(x=1.5, y=-2.0)))
    assert (gate.traffic.messages_in, gate.traffic.bytes_in) == (1, len(move))
    others = [P.encode(P.PING, 1, {}), P.encode(P.JOIN, 2, {}), "text", b"\xc1", P.encode("nope", 3, {}),
              P.encode(P.MOVE_TO, -1, {"x": 1, "y": 1}), P.encode(P.MOVE_TO, 4, {"x": 1}),
              P.encode(P.MOVE_TO, 4, {"x": 1, "y": 1, "z": 1}), P.encode(P.MOVE_TO, 4, {"x": "a", "y": 1}),
              b"\x93\xa7move_to\x04\x92\x01\x02", b"x" * (P.MAX_MESSAGE_BYTES + 1)]
    for data in others:
        gate(data)
    assert gate.calls == [("receive", data) for data in others] and len(gate.link.events) == 1
    for _ in range(3):  # the burst of 3 is spent by the third
        gate(move)
    assert gate.calls[-1] == ("rate", 0) and len(gate.link.events) == 3
    gate.bucket = wsinput.TokenBucket(20, 3, now=lambda: 0.0)
    gate.link.accept = False
    gate(move)
    assert gate.calls[-1] == ("busy", 7)
    gate(b"raise")
    assert gate.calls[-2:] == [("receive", b"raise"), ("failed", "handler bug")]
    gate.close_code = 1000
    gate.calls.clear()
    gate(move)
    gate.on_data(b"raise")
    assert gate.calls == []  # a closing socket ignores what it still reads


async def test_the_socket_gives_the_same_results_through_the_gate_as_through_receive():
    """Every message of a mixed stream, on two sockets: one called (the gate first), one whose
    ``receive`` takes each message while it is open (what the socket did before the gate): the
    same events for the room, frames, error count and close code."""
    rng = random.Random(5)
    corpus = [P.encode(P.JOIN, 1, {})]
    for seq in range(2, 400):
        corpus.append(rng.choices([
            P.encode(P.MOVE_TO, seq, {"x": rng.uniform(-10, 10), "y": rng.randint(-5, 5)}),
            P.encode(P.MOVE_TO, seq, {"x": 1}), P.encode(P.PING, seq, {}), P.encode("warp", seq, {}),
            P.encode(P.MOVE_TO, seq, {"x": 1e300, "y": 0}), b"\x00", P.encode(P.JOIN, seq, {}),
        ], weights=[20, 1, 2, 1, 1, 1, 1])[0])
    steps = [rng.choice((0.0, 0.01, 0.03, 0.2)) for _ in corpus]
    steps[100:100 + 2 * P.INPUT_BURST] = [0.0] * (2 * P.INPUT_BURST)  # a burst over the rate
    outcomes = []
    for through_gate in (True, False):
        sock, ws, link, clock = make_socket(FakeLink())
        sock.conn_id = "c-1"
        for i, data in enumerate(corpus):
            if through_gate:
                sock(data)
            elif sock.close_code is None:
                sock.receive(data)
            clock.t += steps[i]
            if i == 300:
                link.accept = False  # the room stops keeping up
            await settle()
        frames = [m[:2] if m[0] == P.PONG else m for m in decoded(ws)]  # (a pong carries the time)
        outcomes.append((link.events, frames, sock.close_code, sock._errors))
    assert outcomes[0] == outcomes[1]
    events, frames = outcomes[0][:2]
    assert type(events[0]) is Connect and sum(type(e) is Message for e in events) > 150
    codes = {m[2]["code"] for m in frames if m[0] == P.ERROR}
    assert {P.ERR_RATE_LIMITED, P.ERR_ROOM_BUSY, P.ERR_UNKNOWN_TYPE, P.ERR_ALREADY_JOINED} <= codes


def test_the_gateway_socket_is_its_own_input_gate():
    assert issubclass(ClientSocket, wsinput.InputGate)

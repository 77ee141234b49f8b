"""Per-socket limits of the gateway (docs/protocol.md §2), on a ClientSocket with a fake
WebSocket and a manual clock: the token bucket, sustained floods, slow consumers that skip
frames and resynchronise from a keyframe, and the bounded room input queue."""

import asyncio

from starhold.rooms import protocol as P
from starhold.rooms.system.room import SolarSystemRoom
from starhold._runtime.events import Close, Connect, Message
from starhold.gateway import room_link
from starhold.gateway.auth import Identity
from starhold.gateway.sockets import ClientSocket, TokenBucket

class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeWS:
    """Records what is sent; ``gate`` closed = the client reads nothing (a slow consumer)."""

    def __init__(self):
        self.sent: list[bytes] = []
        self.closed_with = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_bytes(self, data):
        await self.gate.wait()
        self.sent.append(data)

    async def close(self, code=1000, message=b""):
        self.closed_with = code


class FakeLink:
    def __init__(self, accept=True):
        self.events = []
        self.accept = accept

    def attach(self, sock):
        pass

    def submit(self, event, control=False):
        if not control and not self.accept:
            return False
        self.events.append(event)
        return True


class FakeGateway:
    gateway_id = "gw-test"

    def __init__(self, link):
        self._link = link
        self.directory = self  # the sockets ask it for their kind's message schemas

    def room_class(self, kind):
        return SolarSystemRoom

    def link(self, kind, room_id):
        return self._link

    def refusal(self, kind, room_id):
        return None  # admission control is tested in test_admission.py


def make_socket(link=None):
    clock = Clock()
    ws = FakeWS()
    link = link or FakeLink()
    sock = ClientSocket(FakeGateway(link), ws, "system", "sol", Identity("g-1", "Ada", "guest", 0.0), now=clock)
    return sock, ws, link, clock


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def decoded(ws):
    return [P.decode_server(d) for d in ws.sent]


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=20, burst=40, now=clock)
    assert sum(bucket.take() for _ in range(100)) == 40
    clock.t += 0.5  # 10 tokens
    assert sum(bucket.take() for _ in range(100)) == 10
    clock.t += 100  # refills to the burst, not beyond
    assert sum(bucket.take() for _ in range(100)) == 40


async def test_a_burst_over_the_rate_is_dropped_with_one_error_per_second():
    sock, ws, link, clock = make_socket()
    for seq in range(1, 61):
        sock.receive(P.encode(P.PING, seq, {}))
    await settle()
    out = decoded(ws)
    assert [m[0] for m in out].count(P.PONG) == P.INPUT_BURST
    errors = [m for m in out if m[0] == P.ERROR]
    assert len(errors) == 1 and errors[0][2]["code"] == P.ERR_RATE_LIMITED
    assert sock.close_code is None  # a burst is not abuse
    clock.t += 1.0  # 20 more tokens; the client behaves again
    sock.receive(P.encode(P.PING, 99, {}))
    await settle()
    assert decoded(ws)[-1][:2] == (P.PONG, 99)


async def test_flooding_for_five_seconds_closes_4029():
    sock, ws, link, clock = make_socket()
    for step in range(int((P.RATE_LIMIT_CLOSE_AFTER + 3) * 10)):  # 100 messages/s, 5 times the rate
        for _ in range(10):
            sock.receive(P.encode(P.PING, 1, {}))
        clock.t += 0.1
        await settle()  # the client reads its pongs
        if sock.close_code is not None:
            break
    assert sock.close_code == P.CLOSE_RATE_LIMITED
    assert ws.closed_with == P.CLOSE_RATE_LIMITED
    errors = [m for m in decoded(ws) if m[0] == P.ERROR]
    assert 3 <= len(errors) <= 6  # about one per second, not one per dropped message


async def test_a_slow_consumer_skips_frames_then_gets_a_keyframe_and_deltas_again():
    sock, ws, link, clock = make_socket()
    sock.receive(P.encode(P.JOIN, 1, {}))
    ws.gate.clear()  # the client stops reading
    delta = P.encode_frame(5, 1, P.pack_frame_tail(4, 0.5, [], [], []), P.FRAME_KEYS)
    keyframe = P.encode_frame(6, 1, P.pack_frame_tail(None, 0.6, [[1, 0.0, 0.0, 1]], [], [[1, "Ada"]]), P.FRAME_KEYS)
    for _ in range(3 * P.SEND_QUEUE_LIMIT):
        sock.deliver_frame(delta, keyframe=False)
    assert sock._queue.qsize() <= P.SEND_QUEUE_LIMIT  # bounded whatever the client does
    assert sock.behind_since is not None and sock.close_code is None
    ws.gate.set()  # it reads again and drains its queue
    await settle()
    sent_before = len(ws.sent)
    sock.deliver_frame(delta, keyframe=False)  # the gateway asks the room for a keyframe instead
    assert type(link.events[-1]) is Message and link.events[-1].message.type == P.RESYNC
    sock.deliver_frame(delta, keyframe=False)  # deltas before the keyframe would not apply: dropped
    sock.deliver_frame(keyframe, keyframe=True)
    sock.deliver_frame(delta, keyframe=False)
    await settle()
    assert ws.sent[sent_before:] == [keyframe, delta]


async def test_a_consumer_behind_for_too_long_is_closed_4008():
    sock, ws, link, clock = make_socket()
    ws.gate.clear()
    delta = P.encode_frame(5, 1, P.pack_frame_tail(4, 0.5, [], [], []), P.FRAME_KEYS)
    for _ in range(P.SEND_QUEUE_LIMIT + 1):
        sock.deliver_frame(delta, keyframe=False)
    clock.t += P.SLOW_CONSUMER_TIMEOUT + 0.1
    sock.deliver_frame(delta, keyframe=False)
    assert sock.close_code == P.CLOSE_SLOW_CONSUMER


async def test_a_full_room_queue_drops_inputs_with_room_busy():
    sock, ws, link, clock = make_socket(FakeLink(accept=False))
    sock.receive(P.encode(P.JOIN, 1, {}))  # joins always queue
    sock.receive(P.encode(P.MOVE_TO, 2, {"x": 1, "y": 1}))
    await settle()
    assert type(link.events[0]) is Connect
    error = decoded(ws)[-1]
    assert error[0] == P.ERROR and error[1] == 2 and error[2]["code"] == P.ERR_ROOM_BUSY
    assert sock.close_code is None


async def test_the_room_link_bounds_its_input_queue(monkeypatch):
    class NeverDirectory:
        async def get(self, *args):
            await asyncio.Event().wait()  # the room never answers: the queue only grows

    link = room_link.RoomLink(NeverDirectory(), "gw", "system", "sol", {})
    accepted = sum(link.submit(Message("c", None)) for _ in range(1000))
    assert accepted == P.ROOM_INPUT_QUEUE_LIMIT
    assert link.submit(Close("c", 1000, ""), control=True)  # control events always queue
    await link.stop()


async def test_the_room_input_queue_grows_with_the_sockets_of_the_link():
    class NeverDirectory:
        async def get(self, *args):
            await asyncio.Event().wait()

    link = room_link.RoomLink(NeverDirectory(), "gw", "session", "g1", {})
    for i in range(100):  # a room of 100 players behind this gateway: ~100 inputs a tick
        link.sockets[f"c{i}"] = object()
    accepted = sum(link.submit(Message("c0", None)) for _ in range(1000))
    assert accepted == 100 * P.ROOM_INPUT_QUEUE_PER_SOCKET > P.ROOM_INPUT_QUEUE_LIMIT
    await link.stop()

"""starhold.wsdirect: data messages from aiohttp's parser to a callback, the rest to receive().

These test the direct path; with an aiohttp whose internals differ (the self-check failed) or
``STARHOLD_WSDIRECT=0`` they are skipped with a reason starting ``wsdirect fallback:`` (which
``CI=true`` reports loudly but does not fail: an aiohttp release alone must not break the
build; the gateway stays correct on the public path, at ~60 % more socket CPU). The public
path it falls back to, and the self-check itself, are tested in test_wsdirect_fallback.py."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from starhold import wsdirect
from starhold.rooms import protocol as P
from starhold.gateway.app import GATEWAY
from starhold._runtime.local_host import InProcessDirectory
from starhold.wsdirect import DirectQueue, DirectWebSocketResponse, WebSocketReader, make_direct

from wire import Wire, guest_token

pytestmark = pytest.mark.skipif(
    not wsdirect.direct_enabled(),
    reason=f"wsdirect fallback: the gateway runs on the public path with aiohttp {aiohttp.__version__} "
           f"(tested: {wsdirect.TESTED_AIOHTTP}): {'; '.join(wsdirect.PROBLEMS) or 'STARHOLD_WSDIRECT=0'}")


class _Protocol:
    """What the queue needs of aiohttp's protocol (flow control)."""

    def __init__(self):
        self._reading_paused = False
        self.pauses = 0

    def pause_reading(self):
        self._reading_paused = True
        self.pauses += 1

    def resume_reading(self):
        self._reading_paused = False


def _frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


async def test_data_waits_for_attach_then_flows_in_order_and_control_messages_stay_queued():
    protocol = _Protocol()
    queue = DirectQueue(protocol, 2**16, loop=asyncio.get_running_loop())
    reader = WebSocketReader(queue, 1 << 20, compress=False, decode_text=True)
    reader.feed_data(_frame(2, b"a") + _frame(9, b"p") + _frame(1, b"b"))  # binary, ping, text
    got: list = []
    queue.attach(got.append)
    assert got == [b"a", "b"]
    reader.feed_data(_frame(2, b"c"))
    assert got == [b"a", "b", b"c"]
    ping = await queue.read()  # aiohttp's receive() still sees the control messages
    assert ping.type is WSMsgType.PING and ping.data == b"p"
    assert queue._size == 0  # its byte count (reading pauses on it) is back to empty
    queue.detach()
    reader.feed_data(_frame(2, b"d"))
    assert got == [b"a", "b", b"c"]
    reader.feed_data(_frame(8, b"\x03\xe8"))  # close 1000
    close = await queue.read()
    assert close.type is WSMsgType.CLOSE and close.data == 1000


async def test_a_flood_of_data_never_pauses_reading_once_attached():
    protocol = _Protocol()
    queue = DirectQueue(protocol, 2**10, loop=asyncio.get_running_loop())
    reader = WebSocketReader(queue, 1 << 20, compress=False, decode_text=False)
    count = 0

    def on_message(data):
        nonlocal count
        count += 1

    queue.attach(on_message)
    reader.feed_data(_frame(2, b"x" * 100) * 1000)
    assert count == 1000 and protocol.pauses == 0 and queue._size == 0


async def _serve(make_response, on_open):
    """A loopback server whose sockets are ``make_response()``; ``on_open(ws)`` after the
    handshake, then the handler reads until the end. Returns (TestServer, ws URL)."""

    async def handler(request):
        ws = make_response()
        await ws.prepare(request)
        on_open(ws)
        async for _ in ws:  # only control messages (and the end) come this way
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server, str(server.make_url("/ws"))


@pytest.fixture
async def echo_url():
    """A server echoing each message through DirectWebSocketResponse's callback."""

    def on_open(ws):
        ws.direct.attach(lambda data: asyncio.ensure_future(ws.send_bytes(b"echo:" + data)))

    server, url = await _serve(lambda: DirectWebSocketResponse(heartbeat=5.0, autoping=True), on_open)
    yield url
    await server.close()


async def test_direct_server_and_client_exchange_messages_ping_and_close(echo_url):
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(echo_url, autoping=True)
        got: asyncio.Queue = asyncio.Queue()
        queue = make_direct(ws, got.put_nowait)
        assert isinstance(queue, DirectQueue) and ws._reader is queue
        for i in range(50):
            await ws.send_bytes(b"%d" % i)
        assert [await asyncio.wait_for(got.get(), 5) for _ in range(50)] == [b"echo:%d" % i for i in range(50)]
        await ws.ping(b"hello")  # the server's aiohttp answers pings as before
        await ws.close()
        assert ws.close_code == 1000


async def test_gateway_sockets_run_in_direct_mode(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    try:
        async with aiohttp.ClientSession() as session:
            wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url))
            await wire.send(P.JOIN, 1)
            await wire.recv(P.WELCOME)
            [sock] = url.app[GATEWAY].sockets
            assert type(sock.ws) is DirectWebSocketResponse and sock.ws.direct.callback is sock
            # the compiled frame reader (when built: tests/test_wsinput.py) reads the socket, and
            # hands data messages to the socket
            reader = sock.ws.direct.reader
            if wsdirect.frame_reader_enabled():
                assert type(reader) is wsdirect.FrameReader and reader.handler is sock and reader.received >= 1
            else:
                assert reader is None
            assert sock._direct_write and sock.ws.swept_heartbeat == P.HEARTBEAT_INTERVAL
            # the queue limit aiohttp's own _post_start gives (DEFAULT_CHUNK_SIZE, 2**18 in 3.14;
            # the queue pauses reading above twice it)
            assert wsdirect.DEFAULT_LIMIT == aiohttp.helpers.DEFAULT_CHUNK_SIZE
            assert sock.ws.direct._limit == 2 * aiohttp.helpers.DEFAULT_CHUNK_SIZE
            await wire.send(P.PING, 2)
            assert (await wire.recv(P.PONG))[1] == 2
            await wire.ws.close()
    finally:
        await directory.close()


@pytest.fixture
async def held():
    """A server keeping its DirectWebSocketResponses (swept heartbeat of 20 s) in a list."""
    responses: list[DirectWebSocketResponse] = []

    def on_open(ws):
        ws.direct.attach(lambda data: None)
        responses.append(ws)

    server, url = await _serve(
        lambda: DirectWebSocketResponse(swept_heartbeat=20.0, heartbeat=None, autoping=True), on_open)
    yield url, responses
    await server.close()


async def _until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)  # waiting for sockets, not for time to pass
    raise AssertionError("condition not reached")


async def test_swept_heartbeat_pings_a_quiet_peer_and_keeps_one_that_answers(held):
    url, responses = held
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, autoping=True)  # answers pings while it reads
        reading = asyncio.create_task(ws.receive())
        await _until(lambda: responses)
        server = responses[0]
        server.sweep(1000.0)  # first look: the clock starts
        server.sweep(1019.0)
        assert server._pinged_at is None  # not quiet for a heartbeat yet
        server.sweep(1020.0)
        assert server._pinged_at == 1020.0
        await _until(lambda: server.direct.received > 0)  # the pong
        server.sweep(1031.0)  # past half a heartbeat after the ping, but the pong came
        assert not server.closed and server._pinged_at is None
        reading.cancel()
        await ws.close()


async def test_swept_heartbeat_drops_a_peer_silent_through_a_ping(held):
    url, responses = held
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, autoping=False)  # never answers pings
        await _until(lambda: responses)
        server = responses[0]
        server.sweep(1000.0)
        server.sweep(1020.0)
        ping = await asyncio.wait_for(ws.receive(), 5)
        assert ping.type is WSMsgType.PING
        server.sweep(1029.0)
        assert not server.closed
        server.sweep(1030.0)  # half a heartbeat after the ping: dropped, no close frame
        assert server.closed
        end = await asyncio.wait_for(ws.receive(), 5)
        assert end.type in (WSMsgType.CLOSED, WSMsgType.ERROR)
        assert ws.close_code == 1006

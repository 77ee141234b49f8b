"""starhold.wsdirect's self-check and the public path it falls back to (plain aiohttp
WebSockets: a receive() loop, send_bytes, aiohttp's heartbeat), forced here with
STARHOLD_WSDIRECT=0 or a failed self-check; test_wsdirect.py tests the direct path."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.client_ws import ClientWebSocketResponse

from starhold.rooms import protocol as P
from starhold import wsdirect
from starhold.client import loadtest as L
from starhold.gateway.app import GATEWAY
from starhold._runtime.local_host import InProcessDirectory
from starhold.wsdirect import DirectWebSocketResponse, make_direct, run_self_check

from wire import Wire, guest_token


@pytest.fixture
def public_path(monkeypatch):
    """The public path, as on an aiohttp whose internals differ: one warning, logged anew."""
    monkeypatch.setenv(wsdirect.ENV, "0")
    monkeypatch.setattr(wsdirect, "_warned", False)


async def test_the_public_path_serves_a_client_end_to_end(public_path, gateway_factory, tmp_path, caplog):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    try:
        async with aiohttp.ClientSession() as session:
            with caplog.at_level(logging.WARNING, logger="starhold.wsdirect"):
                wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url))
                welcome, _ = await wire.join()
            [sock] = url.app[GATEWAY].sockets
            # a plain aiohttp socket: messages through receive(), frames through send_bytes,
            # aiohttp's heartbeat with the swept one's timing, sweep() a no-op
            assert sock.ws.direct is None and not sock._direct_write
            assert sock.ws.swept_heartbeat is None and sock.ws._heartbeat == P.HEARTBEAT_INTERVAL
            sock.ws.sweep(1e9)
            assert [r.message for r in caplog.records].count(
                "starhold.wsdirect: STARHOLD_WSDIRECT=0: using plain aiohttp WebSockets") == 1
            await wire.send(P.PING, 2)
            assert (await wire.recv(P.PONG))[1] == 2
            await wire.send(P.MOVE_TO, 3, {"x": 10.0, "y": 10.0})
            await wire.recv(P.FRAME, where=lambda frame: frame["ack"] >= 3)
            await wire.ws.send_bytes(b"\xc1")  # malformed: an error frame, the socket carries on
            assert (await wire.recv(P.ERROR))[2]["code"] == P.ERR_MALFORMED
            await wire.ws.close()
            assert wire.ws.close_code == 1000
    finally:
        await directory.close()


async def test_the_load_bots_run_on_the_public_path(public_path, gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    try:
        result = await L.run_loadtest(url, clients=2, rooms=1, duration=1.0, warmup=0.2, procs=0, systems=True,
                                      ramp=0.1)
        assert result["connected"] == 2 and result["errors"] == 0 and result["disconnects"] == 0
        assert result["latency_ms"]["count"] > 0 and result["frames_received"] > 0
    finally:
        await directory.close()


def test_make_direct_leaves_the_socket_alone_on_the_public_path(public_path):
    assert make_direct(object(), print) is None  # never touches the socket


def test_the_self_check_passes_on_the_tested_aiohttp():
    if aiohttp.__version__ == wsdirect.TESTED_AIOHTTP:
        assert run_self_check() == [] == wsdirect.PROBLEMS
    assert wsdirect.DEFAULT_LIMIT == aiohttp.helpers.DEFAULT_CHUNK_SIZE  # aiohttp's own, not a copy


@pytest.mark.parametrize("owner, name, found", [
    (web.WebSocketResponse, "_handle_ping_pong_exception", "server: no WebSocketResponse._handle_ping_pong_exception"),
    (web.WebSocketResponse, "_post_start", "server: "),
    (WebSocketWriter, "_write_websocket_frame", "writer: AttributeError"),
    (ClientWebSocketResponse, "_on_data_received", "client: no ClientWebSocketResponse._on_data_received"),
])
def test_the_self_check_finds_a_missing_private_name(monkeypatch, owner, name, found):
    monkeypatch.delattr(owner, name)
    problems = run_self_check()
    assert len(problems) == 1 and problems[0].startswith(found), problems


def test_the_self_check_finds_a_changed_post_start(monkeypatch):
    def _post_start(self, request, protocol, writer):
        self._reader = object()  # not the body wsdirect copied

    monkeypatch.setattr(web.WebSocketResponse, "_post_start", _post_start)
    [problem] = run_self_check()
    assert problem.startswith("server: WebSocketResponse._post_start changed")


def test_the_self_check_finds_a_feed_data_the_parser_no_longer_calls(monkeypatch):
    base = wsdirect.WebSocketDataQueue

    class Bypassed(wsdirect.DirectQueue):  # as if feed_data became cdef: the override never runs
        def feed_data(self, data, size):
            base.feed_data(self, data, size)

    monkeypatch.setattr(wsdirect, "DirectQueue", Bypassed)
    [problem] = run_self_check()
    assert problem.startswith("queue: WebSocketReader does not call DirectQueue.feed_data")


def test_a_failed_self_check_logs_one_warning_and_takes_the_public_path(monkeypatch, caplog):
    monkeypatch.setattr(wsdirect, "PROBLEMS", ["server: no WebSocketResponse._handle_ping_pong_exception(exc)"])
    monkeypatch.setattr(wsdirect, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="starhold.wsdirect"):
        sockets = [DirectWebSocketResponse(swept_heartbeat=20.0, heartbeat=None, autoping=True) for _ in range(3)]
    assert all(ws._heartbeat == 20.0 and ws.swept_heartbeat is None and ws.direct is None for ws in sockets)
    [record] = caplog.records
    assert record.levelname == "WARNING" and "_handle_ping_pong_exception" in record.message
    assert wsdirect.TESTED_AIOHTTP in record.message and aiohttp.__version__ in record.message


def test_the_frame_reader_is_off_when_aiohttp_feeds_its_parser_otherwise(monkeypatch):
    from aiohttp.web_protocol import RequestHandler

    def data_received(self, data):  # as if aiohttp parsed WebSocket frames some other way
        self._payload_parser.parse(data)

    monkeypatch.setattr(RequestHandler, "data_received", data_received)
    [problem] = wsdirect._frame_reader_problems()
    assert "no longer feeds its payload parser" in problem


def test_the_frame_reader_is_off_when_it_reads_unlike_aiohttp(monkeypatch):
    from starhold.kernels import wsinput

    class Lossy(wsinput.FrameReaderPy):  # drops pongs: the comparison with aiohttp's reader catches it
        def feed_data(self, data):
            return super().feed_data(data.replace(b"\x8a\x80", b""))

    monkeypatch.setattr(wsdirect, "FrameReader", Lossy)
    [problem] = wsdirect._frame_reader_problems()
    assert problem.startswith("frame reader: FrameReader differs from aiohttp's reader")


async def test_without_the_frame_reader_sockets_read_through_aiohttps_reader(monkeypatch, gateway_factory, tmp_path):
    monkeypatch.setattr(wsdirect, "FRAME_READER_PROBLEMS", ["frame reader: (a test)"])
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    try:
        async with aiohttp.ClientSession() as session:
            wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url))
            await wire.join()
            [sock] = url.app[GATEWAY].sockets
            assert sock.ws.direct is not None and sock.ws.direct.reader is None  # the direct path, aiohttp's reader
            assert sock.ws.direct.callback is sock
            await wire.send(P.MOVE_TO, 3, {"x": 10.0, "y": 10.0})
            await wire.recv(P.FRAME, where=lambda frame: frame["ack"] >= 3)
            await wire.ws.close()
    finally:
        await directory.close()

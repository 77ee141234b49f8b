"""aiohttp WebSockets whose data messages go straight to a callback (gateway and load bots),
with a start-up self-check that falls back to plain aiohttp.

aiohttp parses WebSocket frames in C (``WebSocketReader``) inside the transport's
``data_received`` and puts each message in a per-socket queue (``WebSocketDataQueue``); the
reader coroutine awaiting ``receive()`` is then woken through a future and a task step. At 10
messages a second for each of thousands of sockets, that wake-up is a large share of what a
message costs. ``DirectQueue`` is aiohttp's queue with one change: once ``attach(callback)``
was called, a data message (binary or text) is handed to ``callback(data)`` synchronously, from
the parser, in arrival order. Everything else (close, ping, pong, parse errors, the end of the
stream) still queues for ``receive()``, so aiohttp keeps doing the close handshake, autoping and
error handling, and the caller still runs a ``receive()`` loop, which now wakes only for those.

- ``DirectWebSocketResponse``: the server side (``web.WebSocketResponse`` with a ``DirectQueue``,
  ``self.direct``), with a swept heartbeat: aiohttp's own heartbeat schedules a callback for
  every chunk received, so instead the owner calls ``sweep(now)`` on all its sockets every few
  seconds. The gateway also writes frames through aiohttp's frame writer when ``ws.direct`` is
  set (``gateway/sockets.py`` ``ClientSocket._write_now``), not through a writer task.
- ``make_direct(ws)``: the client side, for a ``ClientWebSocketResponse`` from ``ws_connect``.

Flow control: aiohttp pauses reading when its queue holds more than its limit (aiohttp's
``DEFAULT_CHUNK_SIZE``, read from aiohttp); data that goes to the callback is not held, so the
callback's owner bounds it (the gateway's token bucket and room input limit; ``max_msg_size``
still bounds one message). The callback must not raise: an exception would end the socket as a
parse error would.

**What it buys** (``benchmarks/ws_path.py``: a minimal aiohttp app on uvloop holding 1,000
sockets as the gateway does, 10 messages per socket per second each way, 5 s phases, 3 runs per
path, on the 2-core dev machine shared with other work; aiohttp 3.14.5): server CPU per 10,000
messages received 213-242 ms direct against 351-407 ms on the public path (a ``receive()`` loop
per socket, aiohttp's heartbeat), 1.69x; per 10,000 frames sent 221-232 ms direct against
361-407 ms (a queue and writer task awaiting ``send_bytes``), 1.60x. At 1,000 players (10,000
messages a second each way) the direct path saves about 0.3 of a core, more than a third of
the gateway's socket CPU, so it stays.

**The compiled frame reader.** On the server side, when the ``starhold.kernels.wsinput`` extension
is built, the connection's HTTP protocol feeds a ``FrameReader`` (``_post_start``; the queue's
``reader``) placed in front of aiohttp's reader: it finds the frames' boundaries itself, gives each
whole final binary frame straight to the callback (the gateway's ``ClientSocket`` is an
``InputGate``, whose compiled entry handles the common message), hands every other whole frame to
aiohttp's reader, and hands the whole connection over to it at the first frame it does not take
(fragments, reserved bits, long frames, a full queue...): see ``starhold.kernels.wsinput``. At
import ``_check_frame_reader`` feeds the same frames, whole and cut into pieces, with and without a
callback, through aiohttp's reader alone and behind the frame reader (``_trace``), and the frame
reader is used only when the two agree (``frame_reader_enabled()``, ``FRAME_READER_PROBLEMS``).
``benchmarks/input_path.py``: the gateway's half of an input 2.2-2.9 -> 1.0-1.2 µs in a loop in process
(the frame, the socket's checks, the envelope's decoding, the two events; hot caches).

**Fallback rule.** The direct path follows private aiohttp names: ``aiohttp._websocket.reader``
(subclassing ``WebSocketDataQueue``, overriding its ``cpdef feed_data``, its ``_buffer`` and
``read()``), the body of ``WebSocketResponse._post_start`` (copied, so every name it uses:
``_ws_protocol _writer _reset_heartbeat _reader _parser _loop _max_msg_size _compress
_decode_text _heartbeat _on_data_received request._protocol protocol.set_parser keep_alive``),
``_handle_ping_pong_exception`` (the swept heartbeat), ``WebSocketWriter._write_websocket_frame
_closing protocol._paused`` (the gateway's direct write), the queue's read-only ``_size _limit
_stalled_reader`` and the reader's ``feed_data``/``feed_eof`` (the frame reader) and, for ``make_direct``,
``ClientWebSocketResponse._waiting _writer _reader _parser _heartbeat _on_data_received _loop``
and the client protocol's ``set_parser`` and ``_reading_paused``. At import, ``run_self_check()``
probes them all: the queue and the frame writer are run on a few frames, and aiohttp's own
``_post_start`` must be the one copied here (its AST, ``POST_START_FINGERPRINT``), so a change
to it (as the drift of the queue limit from 2**16 to 2**18 that went unnoticed once) is caught.
On any mismatch, or with ``STARHOLD_WSDIRECT=0`` in the environment, ``direct_enabled()`` is
False, one warning is logged (at the first socket), and:

- ``DirectWebSocketResponse`` behaves as a plain ``web.WebSocketResponse`` (``direct`` is None,
  its ``swept_heartbeat`` becomes aiohttp's ``heartbeat``, ``sweep()`` does nothing), so the
  gateway's ``receive()`` loop gets the data messages and ``send_bytes`` writes the frames;
- ``make_direct`` returns None and leaves the socket alone (the caller's ``receive()`` loop
  gets the data messages).

Tested: aiohttp 3.14.5 (``TESTED_AIOHTTP``), the newest release on PyPI when this was written;
``make test-aiohttp-latest`` reruns these tests and the gateway's against the newest aiohttp in
a throwaway venv. ``setup.py`` asks for ``aiohttp>=3.14`` with no upper bound: a newer aiohttp
whose internals differ runs on the public path, a little slower, rather than broken.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import logging
import os
import re
import struct
import textwrap
from typing import Callable

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from .kernels import wsinput
from .kernels.wsinput import FrameReader

log = logging.getLogger("starhold.wsdirect")

try:
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE as DEFAULT_LIMIT
except ImportError:  # the self-check reports it; the direct path is then off
    DEFAULT_LIMIT = None
"""aiohttp's queue limit (``DEFAULT_CHUNK_SIZE``, 2**18 in 3.14), bytes: read from aiohttp,
as its own ``_post_start`` passes it; reading pauses above twice this."""

try:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:
    WebSocketDataQueue = WebSocketReader = None

TESTED_AIOHTTP = "3.14.5"
"""The aiohttp version(s) the direct path was tested with (``make test`` and
``make test-aiohttp-latest``); others run it only if ``run_self_check()`` passes."""

POST_START_FINGERPRINT = "9f6aa39ae5891702"
"""sha256 (16 hex digits) of the AST of ``aiohttp.web.WebSocketResponse._post_start``'s body as
of aiohttp 3.14.5, which ``DirectWebSocketResponse._post_start`` copies. When aiohttp changes it,
re-copy it below, check the names the copy uses, and update this (``_post_start_fingerprint()``)."""

ENV = "STARHOLD_WSDIRECT"
"""``STARHOLD_WSDIRECT=0`` forces the public path (plain aiohttp) whatever the self-check says."""

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT


def _define_queue(base):
    class DirectQueue(base):
        """aiohttp's message queue of one socket that, once attached, hands data messages to a
        callback instead of queueing them (see the module docstring)."""

        def __init__(self, protocol, limit: int, *, loop):
            super().__init__(protocol, limit, loop=loop)
            self.callback: Callable[[bytes | str], None] | None = None
            self.received = 0
            """Messages this queue was fed so far, data and control (pongs included); with the
            frame reader's own count (``reader``), the heartbeat's clock (``messages()``)."""
            self.reader = None
            """The connection's ``starhold.kernels.wsinput.FrameReader`` when it has one (set by
            ``DirectWebSocketResponse``): attaching gives it the callback too."""

        def messages(self) -> int:
            """Messages received so far: this queue's and those its frame reader handed straight
            to the callback."""
            reader = self.reader
            return self.received if reader is None else self.received + reader.received

        def attach(self, callback: Callable[[bytes | str], None]) -> None:
            """From now on, call ``callback(data)`` for every data message; the ones already
            queued go to it first, in order (control messages stay queued, after them)."""
            kept = []
            while self._buffer:
                message = self._take()
                if message.type is _BINARY or message.type is _TEXT:
                    callback(message.data)
                else:
                    kept.append(message)
            self.callback = callback
            if self.reader is not None:
                self.reader.handler = callback
            for message in kept:
                super().feed_data(message, 0)

        def detach(self) -> None:
            """Stop calling the callback: later data messages are dropped."""
            self.callback = _drop
            if self.reader is not None:
                self.reader.handler = _drop

        def _take(self):
            """The next queued message, through aiohttp's own ``read()`` so that its byte count
            (which pauses and resumes reading) stays right: with a message queued, ``read()``
            returns without suspending, so one ``send`` runs it to completion."""
            coro = self.read()
            try:
                coro.send(None)
            except StopIteration as done:
                return done.value
            coro.close()
            raise RuntimeError("WebSocketDataQueue.read() suspended with a message queued")

        def feed_data(self, data, size) -> None:  # called by aiohttp's WebSocketReader
            self.received += 1
            callback = self.callback
            if callback is not None:
                kind = data.type
                if kind is _BINARY or kind is _TEXT:
                    callback(data.data)
                    return
            super().feed_data(data, size)

    return DirectQueue


try:
    DirectQueue = _define_queue(WebSocketDataQueue)
except Exception:  # no such class, or no longer subclassable: the self-check reports it
    DirectQueue = None


def _drop(data) -> None:
    pass


_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack


def binary_frame_header(length: int) -> bytes:
    """The header of an unmasked, uncompressed, final binary WebSocket frame (a server's) with
    a ``length``-byte payload (RFC 6455 §5.2): 2, 4 or 10 bytes."""
    if length < 126:
        return bytes((0x82, length))
    if length < 65536:
        return _LEN2(0x82, 126, length)
    return _LEN3(0x82, 127, length)


def write_binary_parts_now(ws, head: bytes, tail: bytes) -> bool:
    """``write_binary_now(ws, head + tail)`` in one ``transport.write`` of header, head and
    tail joined (one copy instead of two, no call into aiohttp's writer): the gateway's path
    for a frame spliced from a per-client head and a shared tail. Same conditions and the
    same bytes on the wire as ``write_binary_now`` (``_check_writer`` compares them); False,
    writing nothing, when it cannot write now."""
    writer = getattr(ws, "_writer", None)
    try:
        if writer is None or writer._closing or writer.protocol._paused or ws.closed:
            return False
        transport = writer.transport
        if transport.is_closing():
            return False
        transport.write(b"".join((binary_frame_header(len(head) + len(tail)), head, tail)))
    except (AttributeError, ConnectionError, RuntimeError):
        return False
    return True


class FrameWriter:
    """What a fan-out reads to write one socket's frames on the direct path, in one small object:
    ``write_binary_parts_now``'s checks without the walk from the socket through the WebSocket
    response and its writer (at 10,000 frames a second those objects are cold in the cache, and
    the walk cost the gateway more than the Python it runs: ``gateway.room_link``).

    ``writer`` is the response's aiohttp ``WebSocketWriter`` (``ws._writer`` once prepared),
    ``transport``/``protocol`` its ``transport``/``protocol`` (fixed for the connection).
    ``plain`` is kept by the owner: True while a frame may be written at once (nothing queued
    before it, nothing being written, no resynchronisation under way). A frame of ``n`` bytes
    (``head + tail``) may be written when ``plain`` and ``ok()``, as
    ``transport.write(b"".join((binary_frame_header(n), head, tail)))``: the bytes and
    conditions of ``write_binary_parts_now``. Only made on the direct path (``direct_enabled()``),
    whose self-check probed those names."""

    __slots__ = ("plain", "writer", "transport", "protocol")

    def __init__(self, writer) -> None:
        self.plain = True
        self.writer = writer
        self.transport = writer.transport
        self.protocol = writer.protocol

    def ok(self) -> bool:
        """Whether the connection takes a frame now: its writer is not closing, its transport
        neither closing nor paused (flow control)."""
        return not self.protocol._paused and not self.writer._closing and not self.transport.is_closing()


# ---- the self-check ---------------------------------------------------------------------------
def _post_start_fingerprint(func=None) -> str:
    """sha256 (16 hex digits) of the AST of the body of ``func`` (default: aiohttp's
    ``WebSocketResponse._post_start``): comments and layout do not count, code does."""
    source = textwrap.dedent(inspect.getsource(func or web.WebSocketResponse._post_start))
    body = ast.parse(source).body[0].body
    return hashlib.sha256(ast.dump(ast.Module(body=body, type_ignores=[])).encode()).hexdigest()[:16]


def _code(func) -> str:
    """``func``'s source without whitespace, for looking up the lines we mirror."""
    return re.sub(r"\s+", "", inspect.getsource(func))


class _Transport:
    def __init__(self):
        self.data = bytearray()

    def write(self, data) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


def _frame(opcode: int, payload: bytes) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload


def _check_queue(loop) -> None:
    from aiohttp.base_protocol import BaseProtocol

    assert WebSocketDataQueue is not None and WebSocketReader is not None, \
        "aiohttp._websocket.reader has no WebSocketDataQueue/WebSocketReader"
    assert DirectQueue is not None, "aiohttp's WebSocketDataQueue cannot be subclassed"
    queue = DirectQueue(BaseProtocol(loop), DEFAULT_LIMIT, loop=loop)
    reader = WebSocketReader(queue, 1 << 20, compress=False, decode_text=True)
    reader.feed_data(_frame(2, b"a") + _frame(9, b"p"))
    assert len(queue._buffer) == 2, "WebSocketDataQueue._buffer does not hold the parsed messages"
    got: list = []
    queue.attach(got.append)
    assert got == [b"a"], "attach() did not hand over the queued data message"
    reader.feed_data(_frame(1, b"b"))
    assert got == [b"a", "b"] and queue.received == 3, \
        "WebSocketReader does not call DirectQueue.feed_data (no longer cpdef?)"
    ping = queue._take()
    assert ping.type is WSMsgType.PING and ping.data == b"p", "control messages are not queued for read()"


def _check_server(loop) -> None:
    fingerprint = _post_start_fingerprint()
    assert fingerprint == POST_START_FINGERPRINT, \
        f"WebSocketResponse._post_start changed (AST {fingerprint}, copied {POST_START_FINGERPRINT})"
    assert "self._post_start(request,protocol,writer)" in _code(web.WebSocketResponse.prepare), \
        "WebSocketResponse.prepare no longer calls _post_start(request, protocol, writer)"
    assert DEFAULT_LIMIT is not None and "DEFAULT_CHUNK_SIZE" in _code(web.WebSocketResponse._post_start), \
        "aiohttp.helpers.DEFAULT_CHUNK_SIZE is not the queue limit"
    handle = getattr(web.WebSocketResponse, "_handle_ping_pong_exception", None)
    assert handle is not None and len(inspect.signature(handle).parameters) == 2, \
        "no WebSocketResponse._handle_ping_pong_exception(exc)"


def _check_writer(loop) -> None:
    from aiohttp._websocket.writer import WebSocketWriter
    from aiohttp.base_protocol import BaseProtocol

    transport = _Transport()
    writer = WebSocketWriter(BaseProtocol(loop), transport)
    assert writer._closing is False and writer.protocol._paused is False, \
        "no WebSocketWriter._closing / protocol._paused"
    writer._write_websocket_frame(b"x", WSMsgType.BINARY, 0)
    writer._write_websocket_frame(b"y" * 300, WSMsgType.BINARY, 0)
    assert bytes(transport.data) == b"\x82\x01x" + b"\x82\x7e\x01\x2c" + b"y" * 300, \
        "WebSocketWriter._write_websocket_frame(message, opcode, rsv) writes something else"
    assert writer.transport is transport, "no WebSocketWriter.transport"
    for n in (0, 125, 126, 65535, 65536):
        transport.data.clear()
        writer._write_websocket_frame(b"h" + b"t" * n, WSMsgType.BINARY, 0)
        theirs = bytes(transport.data)
        transport.data.clear()
        ws = type("_WS", (), {"_writer": writer, "closed": False})()
        assert write_binary_parts_now(ws, b"h", b"t" * n) and bytes(transport.data) == theirs, \
            f"write_binary_parts_now frames a {n + 1}-byte message unlike aiohttp"


def _check_client(loop) -> None:
    from aiohttp.client_proto import ResponseHandler

    init = _code(ClientWebSocketResponse.__init__)
    for name in ("_waiting", "_writer", "_reader", "_heartbeat", "_loop"):
        assert f"self.{name}" in init, f"ClientWebSocketResponse has no {name}"
    assert callable(getattr(ClientWebSocketResponse, "_on_data_received", None)), \
        "no ClientWebSocketResponse._on_data_received"
    connect = _code(aiohttp.ClientSession._ws_connect)
    for line in ("reader=WebSocketDataQueue(conn_proto,DEFAULT_CHUNK_SIZE,loop=self._loop)",
                 "ws_resp._parser=WebSocketReader(",
                 "conn_proto.set_parser(ws_resp._parser,reader,data_received_cb=cb)"):
        assert line in connect, f"ClientSession._ws_connect no longer does {line}"
    protocol = ResponseHandler(loop)
    assert protocol._reading_paused is False and callable(protocol.resume_reading), \
        "no ResponseHandler._reading_paused / resume_reading()"
    assert list(inspect.signature(protocol.set_parser).parameters)[:3] == ["parser", "payload", "data_received_cb"], \
        "ResponseHandler.set_parser(parser, payload, data_received_cb) changed"


def _trace(chunks, wrapped: bool, handler=True, max_msg_size: int = 1 << 16) -> list:
    """What a server connection observes when it is fed ``chunks`` (bytes, as read from the
    socket): aiohttp's reader alone (``wrapped`` False) or behind a ``FrameReader``: each
    ``feed_data`` result, every data message given to the callback (attached unless ``handler``
    is False; a callable ``handler`` is called with each one after it is recorded, and may
    raise), every message queued for ``receive()``, and the queue's exception. The frame reader
    must give the same trace as aiohttp's reader (``_check_frame_reader``,
    ``tests/test_wsinput.py``)."""
    from aiohttp.base_protocol import BaseProtocol

    loop = asyncio.new_event_loop()
    try:
        queue = DirectQueue(BaseProtocol(loop), DEFAULT_LIMIT, loop=loop)
        inner = WebSocketReader(queue, max_msg_size, compress=False, decode_text=True)
        parser = inner
        if wrapped:
            parser = queue.reader = FrameReader(inner, queue, max_msg_size)
        got: list = []

        def callback(data) -> None:
            got.append(("data", data))
            if callable(handler):
                handler(data)

        if handler is not False:
            queue.attach(callback)
        for chunk in chunks:
            got.append(("fed", parser.feed_data(chunk)))
        while queue._buffer:
            message = queue._take()
            got.append(("queued", message.type, message.data, message.extra))
        exc = queue.exception()
        got.append(("exception", type(exc).__name__, str(exc), queue.messages()))
        return got
    finally:
        loop.close()


def _masked(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A client's frame (RFC 6455 §5.2), masked with a fixed key."""
    key = b"\x1f\x2e\x3d\x4c"
    n = len(payload)
    length = bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    return bytes(((0x80 if fin else 0) | rsv | opcode,)) + length + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def _check_frame_reader(loop) -> None:
    from aiohttp.web_protocol import RequestHandler

    assert "eof,tail=self._payload_parser.feed_data(data)" in _code(RequestHandler.data_received), \
        "RequestHandler.data_received no longer feeds its payload parser as (eof, tail) = feed_data(data)"
    assert "self._payload_parser.feed_eof()" in _code(RequestHandler.connection_lost), \
        "RequestHandler.connection_lost no longer calls its payload parser's feed_eof()"
    stream = (_masked(2, b"\x93\xa7move_to\x01\x82") + _masked(9, b"p") + _masked(2, b"x" * 300)
              + _masked(1, "t\u00e9".encode()) + _masked(10, b"") + _masked(2, b"a", fin=False) + _masked(0, b"b")
              + _masked(2, b"c") + _masked(8, b"\x03\xe8bye"))
    for size in (1, 3, 7, len(stream)):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        for handler in (True, False):
            theirs, ours = _trace(chunks, False, handler), _trace(chunks, True, handler)
            assert ours == theirs, f"FrameReader differs from aiohttp's reader in {size}-byte reads: {ours} != {theirs}"
    bad = [_masked(2, b"ok") + _masked(2, b"x", rsv=0x20) + _masked(2, b"never")]
    assert _trace(bad, True) == _trace(bad, False), "FrameReader reports a protocol error unlike aiohttp"


def frame_reader_enabled() -> bool:
    """Whether server sockets on the direct path read their frames through the compiled
    ``starhold.kernels.wsinput.FrameReader``: the extension is built (``wsinput.COMPILED``) and
    its self-check against aiohttp's reader passed (``FRAME_READER_PROBLEMS``)."""
    return wsinput.COMPILED and not FRAME_READER_PROBLEMS


def run_self_check() -> list[str]:
    """Probe every private aiohttp name the direct path uses (see the module docstring);
    returns the problems found, empty when the direct path can be used. Never raises."""
    problems = []
    loop = asyncio.new_event_loop()
    try:
        for check in (_check_queue, _check_server, _check_writer, _check_client):
            try:
                check(loop)
            except Exception as exc:  # noqa: BLE001 - any surprise means "internals differ"
                problems.append(f"{check.__name__[7:]}: {exc or type(exc).__name__}"
                                if isinstance(exc, AssertionError) else f"{check.__name__[7:]}: {exc!r}")
    finally:
        loop.close()
    return problems


PROBLEMS: list[str] = run_self_check()
"""What the self-check found at import (empty: the direct path is usable)."""


def _frame_reader_problems() -> list[str]:
    if PROBLEMS or not wsinput.COMPILED:
        return ["the direct path is off" if PROBLEMS else "the wsinput extension is not built"]
    try:
        _check_frame_reader(None)
    except Exception as exc:  # noqa: BLE001 - any difference means "do not use it"
        return [f"frame reader: {exc or type(exc).__name__}"]
    return []


FRAME_READER_PROBLEMS: list[str] = _frame_reader_problems()
"""Why server sockets do not use the compiled frame reader (empty: they do)."""
_warned = False


def direct_enabled() -> bool:
    """Whether sockets take the direct path: the self-check passed and ``STARHOLD_WSDIRECT``
    is not 0. Logs one warning the first time it says no."""
    global _warned
    forced = os.environ.get(ENV, "").strip().lower() in ("0", "false", "no", "off")
    if not forced and not PROBLEMS:
        return True
    if not _warned:
        _warned = True
        if PROBLEMS:
            log.warning("starhold.wsdirect: aiohttp %s differs from the internals the direct WebSocket path "
                        "follows (tested: %s); using plain aiohttp WebSockets (more CPU per message): %s",
                        aiohttp.__version__, TESTED_AIOHTTP, "; ".join(PROBLEMS))
        else:
            log.warning("starhold.wsdirect: %s=0: using plain aiohttp WebSockets", ENV)
    return False


class DirectWebSocketResponse(web.WebSocketResponse):
    """A server WebSocket whose reader queue is a ``DirectQueue`` (``self.direct``); call
    ``self.direct.attach(callback)`` after ``prepare()``. Same arguments as
    ``web.WebSocketResponse``, plus ``swept_heartbeat`` (seconds; give aiohttp's ``heartbeat``
    as None): the peer is pinged after that long without a message, and dropped when nothing
    arrives within half of it after the ping (what aiohttp's heartbeat does), provided the owner
    calls ``sweep()`` every ``swept_heartbeat / 8`` seconds or so. A silent peer then lasts at
    most 1.5 heartbeats plus two sweep periods.

    When ``direct_enabled()`` is False this is a plain ``web.WebSocketResponse``: ``direct`` stays
    None (data messages come out of ``receive()``), ``swept_heartbeat`` is given to aiohttp as
    its ``heartbeat`` (same timing) and ``sweep()`` does nothing."""

    direct: DirectQueue | None = None

    def __init__(self, *, swept_heartbeat: float | None = None, **kwargs):
        self._direct_mode = direct_enabled()
        if not self._direct_mode and swept_heartbeat is not None and kwargs.get("heartbeat") is None:
            kwargs["heartbeat"], swept_heartbeat = swept_heartbeat, None
        super().__init__(**kwargs)
        self.swept_heartbeat = swept_heartbeat
        self._seen = -1  # DirectQueue.received at the last sweep
        self._quiet_since = 0.0
        self._pinged_at: float | None = None
        self._ping_task: asyncio.Future | None = None  # held: a task only weakly referenced may vanish

    def _post_start(self, *args, **kwargs) -> None:
        if not self._direct_mode:
            return super()._post_start(*args, **kwargs)
        request, protocol, writer = args
        # aiohttp 3.14.5's _post_start (POST_START_FINGERPRINT), with a DirectQueue as the queue.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        loop = self._loop
        assert loop is not None
        self._reader = self.direct = DirectQueue(request._protocol, DEFAULT_LIMIT, loop=loop)
        self._parser = WebSocketReader(self._reader, self._max_msg_size, compress=bool(self._compress),
                                       decode_text=self._decode_text)
        parser = self._parser
        if not self._compress and frame_reader_enabled():  # (starhold's addition to the copy)
            parser = self._reader.reader = FrameReader(self._parser, self._reader, self._max_msg_size)
        cb = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(parser, data_received_cb=cb)
        request.protocol.keep_alive(False)

    def sweep(self, now: float) -> None:
        """One heartbeat check at monotonic time ``now`` (seconds; see the class docstring).
        A dead peer's connection is dropped as aiohttp drops it on a missing pong: closed
        without a close frame (1006 on the client), ``receive()`` returning an error."""
        queue, heartbeat = self.direct, self.swept_heartbeat
        if queue is None or heartbeat is None or self.closed:
            return
        received = queue.messages()
        if received != self._seen:
            self._seen, self._quiet_since, self._pinged_at = received, now, None
        elif self._pinged_at is None:
            if now - self._quiet_since >= heartbeat:
                self._pinged_at = now
                self._ping_task = asyncio.ensure_future(self._ping())
        elif now - self._pinged_at >= heartbeat / 2:
            self._handle_ping_pong_exception(asyncio.TimeoutError(f"no pong within {heartbeat / 2:g} s"))

    async def _ping(self) -> None:
        try:
            await self.ping()
        except (ConnectionError, RuntimeError):
            pass  # closing anyway


def make_direct(ws: ClientWebSocketResponse, callback: Callable[[bytes | str], None],
                max_msg_size: int = 0) -> DirectQueue | None:
    """Switch a client WebSocket (fresh from ``ws_connect``, no ``receive()`` pending, no
    compression) to direct delivery: data messages go to ``callback(data)``, the rest to
    ``ws.receive()``. ``max_msg_size`` as given to ``ws_connect`` (0: unlimited). Returns None,
    leaving ``ws`` as it is (data messages come out of ``receive()``), when ``direct_enabled()``
    is False."""
    if not direct_enabled():
        return None
    if ws._waiting:
        raise RuntimeError("make_direct() while a receive() is pending")
    protocol = ws._writer.protocol
    old = ws._reader
    queue = DirectQueue(protocol, DEFAULT_LIMIT, loop=ws._loop)
    parser = WebSocketReader(queue, max_msg_size, compress=False, decode_text=True)
    ws._reader, ws._parser = queue, parser
    cb = None if ws._heartbeat is None else ws._on_data_received
    protocol.set_parser(parser, queue, data_received_cb=cb)
    while old._buffer:  # parsed before the switch
        message, size = old._buffer.popleft()
        queue.feed_data(message, size)
    if protocol._reading_paused:  # the old queue's count paused reading; the new one decides now
        protocol.resume_reading()
    queue.attach(callback)
    return queue


def write_binary_now(ws, data: bytes) -> bool:
    """Write ``data`` as one binary frame on server WebSocket ``ws`` now, through aiohttp's
    frame writer below ``send_bytes`` (synchronous for an uncompressed frame until the transport
    pauses): the direct path's send, which ``_check_writer`` probed. False, writing nothing,
    when the writer is missing, closing or paused, or anything is unexpected: then send it
    the public way (``send_bytes``)."""
    writer = getattr(ws, "_writer", None)
    try:
        if writer is None or writer._closing or writer.protocol._paused or ws.closed:
            return False
        writer._write_websocket_frame(data, WSMsgType.BINARY, 0)
    except (AttributeError, ConnectionError, RuntimeError):
        return False
    return True


__all__ = ["DirectQueue", "DirectWebSocketResponse", "FrameWriter", "binary_frame_header", "direct_enabled",
           "make_direct", "run_self_check", "write_binary_now", "write_binary_parts_now"]

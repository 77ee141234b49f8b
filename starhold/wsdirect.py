"""aiohttp WebSockets whose data messages go straight to a callback (gateway and load bots).

aiohttp parses WebSocket frames in C (``WebSocketReader``) inside the transport's
``data_received`` and puts each message in a per-socket queue (``WebSocketDataQueue``); the
reader coroutine awaiting ``receive()`` is then woken through a future and a task step. At 10
messages a second for each of thousands of sockets, that wake-up is a large share of what a
message costs. ``DirectQueue`` is aiohttp's queue with one change: once ``attach(callback)``
was called, a data message (binary or text) is handed to ``callback(data)`` synchronously, from
the parser, in arrival order. Everything else (close, ping, pong, parse errors, the end of the
stream) still queues for ``receive()``, so aiohttp keeps doing the close handshake, autoping and
error handling, and the caller still runs a ``receive()`` loop, which now wakes only for those.

- ``DirectWebSocketResponse``: the server side (``web.WebSocketResponse`` with a ``DirectQueue``),
  with a swept heartbeat: aiohttp's own heartbeat schedules a callback for every chunk
  received, so instead the owner calls ``sweep(now)`` on all its sockets every few seconds.
- ``make_direct(ws)``: the client side, for a ``ClientWebSocketResponse`` from ``ws_connect``.

Flow control: aiohttp pauses reading when its queue holds more than its limit; data that goes
to the callback is not held, so the callback's owner bounds it (the gateway's token bucket and
room input limit; ``max_msg_size`` still bounds one message). The callback must not raise:
an exception would end the socket as a parse error would.

This relies on aiohttp's reader classes (``aiohttp._websocket.reader``) and on the body of
``WebSocketResponse._post_start`` as of aiohttp 3.14; ``setup.py`` pins aiohttp to 3.14.x, and
``tests/test_wsdirect.py`` checks the queue and that the gateway's sockets run in direct mode.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.client_ws import ClientWebSocketResponse

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
DEFAULT_LIMIT = 2**16
"""aiohttp's queue limit (``DEFAULT_CHUNK_SIZE``), bytes: reading pauses above twice this."""


class DirectQueue(WebSocketDataQueue):
    """aiohttp's message queue of one socket that, once attached, hands data messages to a
    callback instead of queueing them (see the module docstring)."""

    def __init__(self, protocol, limit: int, *, loop):
        super().__init__(protocol, limit, loop=loop)
        self.callback: Callable[[bytes | str], None] | None = None
        self.received = 0
        """Messages received so far, data and control (pongs included): the heartbeat's clock."""

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
        for message in kept:
            super().feed_data(message, 0)

    def detach(self) -> None:
        """Stop calling the callback: later data messages are dropped."""
        self.callback = _drop

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


def _drop(data) -> None:
    pass


class DirectWebSocketResponse(web.WebSocketResponse):
    """A server WebSocket whose reader queue is a ``DirectQueue`` (``self.direct``); call
    ``self.direct.attach(callback)`` after ``prepare()``. Same arguments as
    ``web.WebSocketResponse``, plus ``swept_heartbeat`` (seconds; give aiohttp's ``heartbeat``
    as None): the peer is pinged after that long without a message, and dropped when nothing
    arrives within half of it after the ping (what aiohttp's heartbeat does), provided the owner
    calls ``sweep()`` every ``swept_heartbeat / 8`` seconds or so. A silent peer then lasts at
    most 1.5 heartbeats plus two sweep periods."""

    direct: DirectQueue | None = None

    def __init__(self, *, swept_heartbeat: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.swept_heartbeat = swept_heartbeat
        self._seen = -1  # DirectQueue.received at the last sweep
        self._quiet_since = 0.0
        self._pinged_at: float | None = None
        self._ping_task: asyncio.Future | None = None  # held: a task only weakly referenced may vanish

    def _post_start(self, request, protocol, writer) -> None:
        # aiohttp's _post_start, with a DirectQueue as the reader's queue.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        self._reader = self.direct = DirectQueue(request._protocol, DEFAULT_LIMIT, loop=self._loop)
        self._parser = WebSocketReader(self._reader, self._max_msg_size, compress=bool(self._compress),
                                       decode_text=self._decode_text)
        cb = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=cb)
        request.protocol.keep_alive(False)

    def sweep(self, now: float) -> None:
        """One heartbeat check at monotonic time ``now`` (seconds; see the class docstring).
        A dead peer's connection is dropped as aiohttp drops it on a missing pong: closed
        without a close frame (1006 on the client), ``receive()`` returning an error."""
        queue, heartbeat = self.direct, self.swept_heartbeat
        if queue is None or heartbeat is None or self.closed:
            return
        if queue.received != self._seen:
            self._seen, self._quiet_since, self._pinged_at = queue.received, now, None
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
                max_msg_size: int = 0) -> DirectQueue:
    """Switch a client WebSocket (fresh from ``ws_connect``, no ``receive()`` pending, no
    compression) to direct delivery: data messages go to ``callback(data)``, the rest to
    ``ws.receive()``. ``max_msg_size`` as given to ``ws_connect`` (0: unlimited)."""
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


__all__ = ["DirectQueue", "DirectWebSocketResponse", "make_direct"]

"""WebSocket termination: one ``ClientSocket`` per player socket (DESIGN §6).

The gateway validates every message before anything reaches a room: the envelope
(``starhold.protocol``) and the payload against the schemas the room's kind declares
(``Room.messages``, ``starhold.messages``; the kind's class comes from the directory,
``RoomDirectory.room_class``). It enforces the limits of docs/protocol.md §2:

- oversized messages (over ``MAX_MESSAGE_BYTES``): 1009 after the answers already queued;
  aiohttp's ``max_msg_size`` (``WS_READ_LIMIT``) caps what is read at all;
- malformed or invalid input: an error frame, and after ``MAX_CONSECUTIVE_ERRORS`` rejected
  messages in a row a 4000 close;
- rate: a token bucket per connection (``INPUT_RATE``/s, bursts of ``INPUT_BURST``); excess
  messages are dropped with an error frame (at most one per second), and a client that keeps
  exceeding it for ``RATE_LIMIT_CLOSE_AFTER`` seconds is closed with 4029;
- pings are answered here, without involving (or waking) the room;
- outgoing: a bounded queue drained by a writer task. A client that falls ``SEND_QUEUE_LIMIT``
  messages behind skips frames; once its queue has drained to half, the gateway asks the room
  for a keyframe on its behalf and drops deltas until it arrives, so the client's state is
  whole again. A client behind for ``SLOW_CONSUMER_TIMEOUT`` seconds is closed with 4008.
  Memory per socket is bounded by the queue whatever the client does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .. import protocol
from .._runtime.events import Connect, Message
from ..kernels.wsinput import InputGate, TokenBucket
from ..messages import RAW_ENVELOPE, kind_fast_decoders, kind_schemas, parse_client_message
from ..wsdirect import FrameWriter, write_binary_now, write_binary_parts_now
from . import metrics

if TYPE_CHECKING:
    from .app import Gateway
    from .auth import Identity
    from .room_link import RoomLink

log = logging.getLogger("starhold.gateway")

_ids = itertools.count(1)
_RESYNC = protocol.ClientMessage(protocol.RESYNC, 0, protocol.Resync())
_CLOSE = object()


def _schemas(directory, kind: str) -> tuple[dict[str, type], dict]:
    """The message schemas of ``kind`` (``starhold.messages.kind_schemas``) as the directory
    runs it, and their fast decoders (``kind_fast_decoders``); only the protocol's own types
    for a kind it does not know (its socket is refused with 4004 before any message matters)."""
    try:
        room_cls = directory.room_class(kind)
    except KeyError:
        room_cls = _NoMessages
    return kind_schemas(room_cls), kind_fast_decoders(room_cls)


class _NoMessages:
    messages: dict = {}


class ClientSocket(InputGate):
    """One player's WebSocket on this gateway, joined to at most one room.

    ``identity`` is the verified token (``gateway.auth.Identity``); ``kind``/``room_id`` the
    room the URL named. ``conn_id`` is unique across gateways (``<gateway id>:<n>``).

    Data messages arrive by calling the socket (``InputGate``, the compiled input path of
    ``starhold.kernels.wsinput``): the common case (a valid message of the room's kind on a joined
    socket) is handled there, every other message by ``receive``, with the same results.
    """

    def __init__(self, gateway: "Gateway", ws: web.WebSocketResponse, kind: str, room_id: str,
                 identity: "Identity", now=time.monotonic):
        InputGate.__init__(self, RAW_ENVELOPE, protocol.ClientMessage, Message, protocol.MAX_MESSAGE_BYTES,
                           protocol.MAX_SEQ)
        self.traffic = metrics.TRAFFIC
        self.gateway = gateway
        self.ws = ws
        self.kind = kind
        self.room_id = room_id
        self.identity = identity
        self.conn_id = f"{gateway.gateway_id}:{next(_ids)}"
        self.connected = False  # the room has applied our connect event
        self.joined = False  # we sent a connect event
        self.link: RoomLink | None = None
        self.now = now
        self.schemas: tuple[dict, dict] | None = None  # the kind's message schemas and fast decoders, on first use
        self.bucket = TokenBucket(protocol.INPUT_RATE, protocol.INPUT_BURST, now)
        self._errors = 0
        self._limited_since: float | None = None
        self._last_drop = 0.0
        self._last_limit_error = -1e9
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=protocol.SEND_QUEUE_LIMIT)
        self.behind_since: float | None = None  # frames are being skipped since then
        self.awaiting_keyframe = False
        self._writing = False  # the writer task is sending (possibly waiting for the transport)
        self._writer = asyncio.create_task(self._write_loop())
        self.close_code: int | None = None
        direct = getattr(ws, "direct", None)
        # starhold.wsdirect's direct path (its self-check passed): messages arrive through
        # calling this socket (InputGate), not through receive(), and _write_now writes through
        # aiohttp's frame writer.
        self._direct_write = direct is not None
        writer = getattr(ws, "_writer", None) if direct is not None else None
        self.fast: FrameWriter | None = FrameWriter(writer) if writer is not None else None
        """The direct frame path's state for a room link's fan-out (``RoomLink``): ``fast.plain``
        is kept True exactly while ``deliver_spliced`` would write at once (``_sync_fast``)."""
        if direct is not None:
            direct.attach(self)

    def _sync_fast(self) -> None:
        """Keep ``fast.plain``: nothing queued or being written, not closing, not behind, no
        keyframe awaited (the conditions of ``deliver_spliced``'s direct write)."""
        fast = self.fast
        if fast is not None:
            fast.plain = (self.close_code is None and self.behind_since is None and not self.awaiting_keyframe
                          and not self._writing and not self._queue.qsize())

    def log_extra(self) -> dict:
        return {"conn": self.conn_id, "room": f"{self.kind}/{self.room_id}", "player": self.identity.player}

    # ---- outgoing --------------------------------------------------------------------------
    def deliver(self, data: bytes) -> None:
        """Queue a message that must arrive (welcome, error, pong); closes the socket (4008)
        rather than buffer without bound when the client is too far behind."""
        if self.close_code is not None or self._write_now(data):
            return
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.close_soon(protocol.CLOSE_SLOW_CONSUMER, "too far behind")
        self._sync_fast()

    def _write_now(self, data: bytes) -> bool:
        """Write ``data`` to the socket at once when nothing is queued before it and the
        transport is not paused: no writer-task switch per frame (10,000 frames/s for 1,000
        players). This uses aiohttp's frame writer below ``send_bytes`` (which is itself
        synchronous for uncompressed frames until the transport pauses), only on
        ``starhold.wsdirect``'s direct path (whose self-check probed that writer); otherwise, or
        when anything is unexpected, it returns False and the queue takes the message
        (``send_bytes`` in the writer task)."""
        if not self._direct_write or self._writing or self._queue.qsize() or not write_binary_now(self.ws, data):
            return False
        traffic = metrics.TRAFFIC
        traffic.messages_out += 1
        traffic.bytes_out += len(data)
        return True

    def deliver_frame(self, data: bytes, keyframe: bool) -> None:
        """Queue a frame. Frames may be skipped: a client that falls behind skips them until
        it catches up, then resynchronises from a keyframe (see the module docstring)."""
        if self.close_code is not None:
            return
        try:
            self._deliver_frame(data, keyframe)
        finally:
            self._sync_fast()

    def _deliver_frame(self, data: bytes, keyframe: bool) -> None:
        if self.awaiting_keyframe:
            if not keyframe:
                return
            self.awaiting_keyframe = False
        if self.behind_since is not None:
            if self._queue.qsize() > protocol.SEND_QUEUE_LIMIT // 2:
                if self.now() - self.behind_since > protocol.SLOW_CONSUMER_TIMEOUT:
                    self.close_soon(protocol.CLOSE_SLOW_CONSUMER, "too far behind")
                return
            self.behind_since = None  # drained: ask the room for a keyframe
            if not keyframe:
                self.awaiting_keyframe = True
                if self.link is not None:
                    self.link.submit(Message(self.conn_id, _RESYNC), control=True)
                return
        if self._write_now(data):
            return
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.behind_since = self.now()
            metrics.FRAMES_SKIPPED.inc()

    def deliver_spliced(self, head: bytes, tail: bytes, keyframe: bool) -> None:
        """``deliver_frame(head + tail, keyframe)``: a frame spliced from this client's head and
        the tick's shared tail. When the frame can be written at once (``fast.plain``: the
        direct path, nothing queued or being written, not behind, no keyframe awaited), it is,
        by ``starhold.wsdirect.write_binary_parts_now`` (one join of header, head and tail, no
        call chain per frame: it runs for every client every tick); otherwise as
        ``deliver_frame``."""
        fast = self.fast
        if fast is not None and fast.plain and write_binary_parts_now(self.ws, head, tail):
            traffic = metrics.TRAFFIC
            traffic.messages_out += 1
            traffic.bytes_out += len(head) + len(tail)
            return
        self.deliver_frame(head + tail, keyframe)

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what is already queued has been sent."""
        if self.close_code is None:
            self.close_code = code
            self._sync_fast()
            while True:  # make room for the close marker
                try:
                    self._queue.put_nowait((_CLOSE, code, reason))
                    break
                except asyncio.QueueFull:
                    self._queue.get_nowait()

    async def _write_loop(self) -> None:
        send = self.ws.send_bytes
        try:
            while True:
                item = await self._queue.get()
                if type(item) is tuple:
                    await self.ws.close(code=item[1], message=item[2].encode()[:120])
                    return
                metrics.TRAFFIC.messages_out += 1
                metrics.TRAFFIC.bytes_out += len(item)
                self._writing = True
                try:
                    await send(item)
                finally:
                    self._writing = False
                    self._sync_fast()
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the read loop ends too

    def _error(self, code: int, message: str, seq: int = 0, count: bool = True) -> None:
        metrics.ERRORS_SENT.labels(str(code)).inc()
        self.deliver(protocol.error_frame(code, message, seq))
        if count:
            self._errors += 1
            if self._errors >= protocol.MAX_CONSECUTIVE_ERRORS:
                self.close_soon(protocol.CLOSE_PROTOCOL_ERROR, "too many invalid messages")

    def _rate_limited(self, seq_hint: int) -> None:
        """A message over the rate: drop it, tell the client (at most once a second), and close
        a client that has exceeded the rate for RATE_LIMIT_CLOSE_AFTER seconds on end."""
        now = self.now()
        metrics.INPUTS_DROPPED.labels("rate").inc()
        if self._limited_since is None or now - self._last_drop > 1.0:
            self._limited_since = now
        self._last_drop = now
        if now - self._limited_since >= protocol.RATE_LIMIT_CLOSE_AFTER:
            self.close_soon(protocol.CLOSE_RATE_LIMITED, "rate limit exceeded")
        elif now - self._last_limit_error >= 1.0:
            self._last_limit_error = now
            self._error(protocol.ERR_RATE_LIMITED,
                        f"more than {protocol.INPUT_RATE:g} messages/s; message dropped", seq_hint, count=False)

    # ---- incoming --------------------------------------------------------------------------
    # A data message, handed over by aiohttp's parser (``starhold.wsdirect``), calls the socket
    # (``InputGate.on_data``): ignored once the socket is closing, never raising into the parser
    # (``failed``), the common case handled by the gate, the rest by ``receive``.
    def failed(self, exc: Exception) -> None:
        """Handling a message raised ``exc``: logged, the socket closed with 1011."""
        log.error("message handling failed", exc_info=exc, extra=self.log_extra())
        self.close_soon(protocol.CLOSE_INTERNAL_ERROR, "internal error")

    def room_busy(self, seq: int) -> None:
        """The room link refused message ``seq`` (its input queue is full): dropped, with an
        error frame that does not count toward ``MAX_CONSECUTIVE_ERRORS``."""
        metrics.INPUTS_DROPPED.labels("room_busy").inc()
        self._error(protocol.ERR_ROOM_BUSY, "the room is busy; message dropped", seq, count=False)

    def receive(self, data: bytes | str) -> None:
        """Validate one client message and route it (every message the gate does not handle)."""
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
        traffic = self.traffic
        traffic.messages_in += 1
        traffic.bytes_in += size
        if size > protocol.MAX_MESSAGE_BYTES:  # after the answers already queued, like 4000 and 4029
            return self.close_soon(protocol.CLOSE_MESSAGE_TOO_BIG, "message too big")
        if not self.bucket.take():
            return self._rate_limited(0)
        if isinstance(data, str):
            return self._error(protocol.ERR_MALFORMED, "text frames are not accepted; send binary msgpack")
        schemas = self.schemas
        if schemas is None:
            schemas = self.schemas = _schemas(self.gateway.directory, self.kind)
        try:
            msg = parse_client_message(data, *schemas)
        except protocol.ProtocolError as exc:
            return self._error(exc.code, str(exc), exc.seq)
        if msg.type == protocol.PING:
            self._errors = 0
            return self.deliver(protocol.encode(protocol.PONG, msg.seq, {"time": time.time()}))
        if msg.type == protocol.JOIN:
            if self.joined:
                return self._error(protocol.ERR_ALREADY_JOINED, "already joined", msg.seq)
            refusal = None if "resume" in msg.payload else self.gateway.refusal(self.kind, self.room_id)
            if refusal is not None:  # gateway/admission.py: a held seat is always taken back
                metrics.JOINS_REFUSED.labels(refusal).inc()
                self._error(protocol.ERR_OVERLOADED, f"the {'server' if refusal == 'gateway' else 'room'} is "
                            "overloaded; try again later", msg.seq, count=False)
                return self.close_soon(protocol.CLOSE_TRY_AGAIN_LATER, "overloaded; try again later")
            self._errors = 0
            self.joined = True
            self.link = self.gateway.link(self.kind, self.room_id)
            self.link.attach(self)
            self.link.submit(Connect(self.conn_id, msg.payload, msg.seq, {
                "player": self.identity.player, "name": self.identity.name, "kind": self.identity.kind}),
                control=True)
            return
        if not self.joined or self.link is None:
            return self._error(protocol.ERR_NOT_JOINED, "send join first", msg.seq)
        self._errors = 0
        if not self.link.submit(Message(self.conn_id, msg)):
            self.room_busy(msg.seq)

    async def run(self) -> None:
        """Read until the socket closes, then tell the room how: the client's close code when
        it sent a close frame (1000 = it left: its seat is released), ours when we closed it,
        1006 when the connection dropped (its seat is held). With a ``DirectWebSocketResponse``
        on wsdirect's direct path data messages go to ``on_data`` as they are parsed, and
        ``receive()`` here returns only the close handshake and errors; on its public path they
        come from ``receive()`` and go to the same ``on_data``."""
        peer_code = None
        try:
            while self.close_code is None:
                msg = await self.ws.receive()
                kind = msg.type
                if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:  # wsdirect's public path
                    self.on_data(msg.data)
                elif kind is WSMsgType.CLOSE:
                    peer_code = msg.data
                    break
                elif kind in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            direct = getattr(self.ws, "direct", None)
            if direct is not None:
                direct.detach()
            code = self.close_code or peer_code or 1006
            if self.link is not None:
                self.link.detach(self.conn_id, code, "closed")
            if self.close_code is not None:
                try:  # let the writer flush the error frame and the close
                    await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
                except (asyncio.TimeoutError, Exception):
                    pass
            self._writer.cancel()
            if not self.ws.closed:  # the writer did not get to it: close with the same code
                await self.ws.close(code=self.close_code or protocol.CLOSE_NORMAL)
            metrics.CLOSES.labels(str(code)).inc()

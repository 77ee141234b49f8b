"""The gateway's per-socket input path: a WebSocket frame reader in front of aiohttp's, and the
common case of a client message, in one compiled pass (issue 17: a player's input cost the
server ~16 µs of user CPU, against ~9 µs for Colyseus, most of it Python frames and objects of
the path visited cold: aiohttp's parser, its message tuple and queue, the socket's handler, its
token bucket, the envelope's parse, two Structs and the room link).

- ``FrameReader(inner, queue, max_msg_size)`` is what a server connection's HTTP protocol
  feeds after the upgrade (``protocol.set_parser``; ``feed_data(data) -> (eof, tail)`` and
  ``feed_eof()``, the interface of aiohttp's ``WebSocketReader``), wrapped around aiohttp's own
  reader ``inner`` and its message queue ``queue`` (``starhold.wsdirect.DirectQueue``). It finds
  the frames' boundaries itself (RFC 6455 §5.2) and:

  * a whole, final, binary frame with no reserved bit, its payload shorter than
    ``max_msg_size`` (0: no limit), masked or not, when a ``handler`` is set: unmasked into a new
    ``bytes`` and given to ``handler`` (an ``InputGate``: its compiled entry; any other callable:
    called), counted in ``received``;
  * any other whole final frame of a known opcode (text, binary before a handler is set, close,
    ping, pong), at most 125 bytes for a control frame: handed whole to ``inner``, which queues
    it (or gives a data message to the queue's callback) and raises on what it refuses;
  * a fragment, a continuation, a reserved bit, an unknown opcode, a 64-bit length, a control
    frame over 125 bytes, a data frame of ``max_msg_size`` or more, an incomplete frame of more
    than ``TAIL_LIMIT`` bytes, or a queue over its limit or stalled: from that frame's first byte
    on, every byte goes to ``inner`` (``delegating``) for the rest of the connection.

  ``inner`` thus always sees whole frames while this reader parses, at the boundary of a final
  frame, so its state is that of a reader that saw every frame; and what the connection
  receives (messages, their order, the errors and close codes of aiohttp's reader, flow
  control) is what ``inner`` alone would give, with data messages going to the handler as
  ``DirectQueue`` gives them to its callback. An incomplete small frame waits for the next
  read. When ``inner`` reports an error or the end (``(True, ...)``), that is returned and the
  rest goes to ``inner`` too. A handler that raises ends the socket as a parse error would:
  ``queue.set_exception(exc)``, ``(True, b"")``, then ``(True, data)``.
- ``InputGate``: the base class of ``gateway.sockets.ClientSocket``, holding what the common case
  reads (``close_code``, ``joined``, ``link``, ``_errors``, ``schemas``, ``bucket``, ``conn_id``,
  ``traffic``). Calling it (or ``on_data``) with a data message does nothing once
  ``close_code`` is set; otherwise a message that is bytes of at most ``max_bytes``, on a joined
  socket with a link, whose envelope decodes as ``parse_client_message``'s fast path decodes it
  (``schemas[1]``: ``kind_fast_decoders``) is handled here exactly as the subclass's
  ``receive`` would: the traffic counted, a token taken (``_rate_limited(0)`` when none), the
  error count reset, ``link.submit(Message(conn_id, ClientMessage(type, seq, payload)))``
  (``room_busy(seq)`` when it refuses). Every other message goes to ``receive(data)``. An
  exception from either goes to ``failed(exc)``. The subclass defines ``receive``, ``failed``,
  ``_rate_limited`` and ``room_busy``.
- ``TokenBucket``: rate ``rate`` tokens/s, capacity ``burst``, on an injectable clock.

The compiled classes (``_wsinput.pyx``) are used unless the extension is missing or
``STARHOLD_NO_EXTENSIONS=1``; the ``*Py`` classes here are their readable twins, with the same
behaviour (``tests/test_wsinput.py`` runs both). Without the extension the gateway's sockets
take ``InputGatePy`` as their base and keep aiohttp's own reader (``FrameReaderPy`` would cost
more than aiohttp's compiled one: ``starhold.wsdirect.frame_reader_enabled``).
"""

from __future__ import annotations

import time

from msgspec import DecodeError, ValidationError

from ._extensions import load

__all__ = ["COMPILED", "FrameReader", "FrameReaderPy", "InputGate", "InputGatePy", "TAIL_LIMIT", "TokenBucket",
           "TokenBucketPy"]

TAIL_LIMIT = 512
"""Bytes: a frame still incomplete after a read is kept for the next one up to this size;
larger, the connection is handed to aiohttp's reader, which collects long frames in pieces."""

_EMPTY = (False, b"")
_ERROR = (True, b"")


class TokenBucketPy:
    """A token bucket (rate ``rate`` tokens/s, capacity ``burst``) on an injectable clock
    (``now()`` in seconds). ``take()`` returns whether a token was available."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "now")

    def __init__(self, rate: float, burst: float, now=time.monotonic):
        self.rate, self.burst, self.now = float(rate), float(burst), now
        self.tokens = float(burst)
        self.stamp = now()

    def take(self) -> bool:
        t = self.now()
        self.tokens = min(self.burst, self.tokens + (t - self.stamp) * self.rate)
        self.stamp = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class InputGatePy:
    """Twin of the compiled ``InputGate`` (see the module docstring). ``envelope`` decodes an
    envelope into ``(type, seq, msgspec.Raw payload)``; ``client_message(type, seq, payload)``
    and ``message(conn_id, client_message)`` build the events; ``max_bytes`` and ``max_seq`` are
    the protocol's limits."""

    def __init__(self, envelope, client_message, message, max_bytes: int, max_seq: int):
        self._envelope, self._client_message, self._message = envelope, client_message, message
        self._max_bytes, self._max_seq = max_bytes, max_seq
        self.close_code = None
        self.joined = False
        self.link = None
        self._errors = 0
        self.schemas = None
        self.bucket = None
        self.conn_id = ""
        self.traffic = None

    def __call__(self, data) -> None:
        self.on_data(data)

    def on_data(self, data) -> None:
        """One data message (bytes or str) from the socket's parser."""
        if self.close_code is not None:
            return
        try:
            if not self._fast(data):
                self.receive(data)
        except Exception as exc:  # noqa: BLE001 - the subclass decides (logs and closes)
            self.failed(exc)

    def _fast(self, data) -> bool:
        if type(data) is not bytes or not self.joined or self.link is None or self.schemas is None \
                or self.bucket is None:
            return False
        n = len(data)
        if n > self._max_bytes:
            return False
        fast = self.schemas[1]
        if not fast:
            return False
        try:
            type_, seq, raw = self._envelope.decode(data)
        except (DecodeError, ValidationError):
            return False
        entry = fast.get(type_)
        if entry is None or not (0 <= seq <= self._max_seq):
            return False
        header = data[n - len(raw)]
        if header < 0x80 or header > entry[1]:
            return False
        try:
            payload = entry[0].decode(raw)
        except (DecodeError, ValidationError):
            return False
        traffic = self.traffic
        traffic.messages_in += 1
        traffic.bytes_in += n
        if not self.bucket.take():
            self._rate_limited(0)
            return True
        self._errors = 0
        if not self.link.submit(self._message(self.conn_id, self._client_message(type_, seq, payload))):
            self.room_busy(seq)
        return True


def _unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


class FrameReaderPy:
    """Twin of the compiled ``FrameReader`` (see the module docstring)."""

    def __init__(self, inner, queue, max_msg_size: int):
        self.inner, self.queue, self.max_msg_size = inner, queue, max_msg_size
        self.handler = None
        self.received = 0
        self._tail: bytes | None = None
        self._delegate = False
        self._failed = False

    @property
    def delegating(self) -> bool:
        """Whether every byte now goes to the inner reader."""
        return self._delegate

    def feed_eof(self) -> None:
        self.inner.feed_eof()

    def feed_data(self, data):
        if self._delegate:
            return self.inner.feed_data(data)
        if self._failed:
            return True, data
        if type(data) is not bytes:
            data = bytes(data)
        if self._tail is not None:
            data, self._tail = self._tail + data, None
        queue = self.queue
        if queue._stalled_reader is not None or queue._size > queue._limit:
            return self._hand_over(data, 0)
        n, pos = len(data), 0
        while n - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            op = b0 & 0x0F
            if b0 & 0xF0 != 0x80 or op not in (1, 2, 8, 9, 10):
                return self._hand_over(data, pos)
            length, hdr = b1 & 0x7F, 2
            if length == 126:
                if op >= 8:
                    return self._hand_over(data, pos)
                if n - pos < 4:
                    break
                length, hdr = (data[pos + 2] << 8) | data[pos + 3], 4
            elif length == 127:
                return self._hand_over(data, pos)
            if op < 8 and self.max_msg_size and length >= self.max_msg_size:
                return self._hand_over(data, pos)
            if b1 & 0x80:
                hdr += 4
            end = pos + hdr + length
            if end > n:
                if end - pos > TAIL_LIMIT:
                    return self._hand_over(data, pos)
                break
            if op == 2 and self.handler is not None:
                payload = data[pos + hdr:end]
                if b1 & 0x80:
                    payload = _unmask(payload, data[pos + hdr - 4:pos + hdr])
                pos = end
                self.received += 1
                try:
                    self.handler(payload)
                except Exception as exc:  # noqa: BLE001 - as aiohttp's reader: the socket ends
                    self._failed = True
                    queue.set_exception(exc)
                    return _ERROR
                continue
            result = self.inner.feed_data(data[pos:end])
            pos = end
            if result[0]:
                self._delegate = True
                return result
            if queue._stalled_reader is not None or queue._size > queue._limit:
                return self._hand_over(data, pos)
        if pos < n:
            self._tail = data[pos:]
        return _EMPTY

    def _hand_over(self, data: bytes, pos: int):
        self._delegate = True
        if pos >= len(data):
            return _EMPTY
        return self.inner.feed_data(data[pos:] if pos else data)


_compiled = load("_wsinput")
COMPILED = _compiled is not None
"""Whether the compiled classes are in use."""

if COMPILED:
    TokenBucket = _compiled.TokenBucket
    InputGate = _compiled.InputGate
    FrameReader = _compiled.FrameReader
else:
    TokenBucket, InputGate, FrameReader = TokenBucketPy, InputGatePy, FrameReaderPy

"""The envelope protocol: what every Starhold room shares, whatever game it runs.

Every WebSocket message is one *binary* frame holding one msgpack-encoded envelope::

    [type: str, seq: int, payload: map]

This module holds the envelope (encoding, decoding, size and shape limits), the protocol's own
message types (``join``, ``ping``, ``resync`` from clients; ``welcome``, ``frame``, ``error``,
``pong`` from the server), its error and close codes, the socket limits, and the frame splice
helpers the gateway reads keyframes with. It names no game message: each room kind declares
its own (``Room.messages``; validated by ``starhold.messages``). Starhold's game adds its
messages and constants in ``starhold.rooms.protocol``.

``docs/protocol.md`` is the normative description; the JavaScript constants in
``client/web/src/protocol.generated.js`` are generated from this module and the game's
(``python -m starhold.rooms.protocol --js``, through ``js_constants``; ``tests/test_protocol.py``
fails when they drift). Units: times are seconds, rates are Hz.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import msgpack
import msgspec

PROTOCOL_VERSION = 2
MAX_MESSAGE_BYTES = 4096
"""Largest client message accepted; a larger one closes the socket with 1009."""
MAX_SEQ = 2**53 - 1
"""Largest sequence number (the largest integer a JavaScript number holds exactly)."""
MAX_NAME_LENGTH = 32
MAX_SEAT_TOKEN_LENGTH = 64
SEND_QUEUE_LIMIT = 64
"""Messages queued for one client socket. A client that falls further behind stops receiving
frames; when its queue has drained it is sent a full snapshot (a keyframe) and deltas resume."""
SLOW_CONSUMER_TIMEOUT = 10.0
"""Seconds a client may stay too far behind before it is closed with CLOSE_SLOW_CONSUMER."""
MAX_CONSECUTIVE_ERRORS = 20
"""A client whose last this-many messages were all rejected is closed with CLOSE_PROTOCOL_ERROR."""
INPUT_RATE = 20.0
"""Sustained client messages per second per connection (token bucket refill rate)."""
INPUT_BURST = 40
"""Token bucket capacity: messages a client may send at once after being quiet."""
RATE_LIMIT_CLOSE_AFTER = 5.0
"""Seconds of continuous rate limiting (every refill spent at once) before CLOSE_RATE_LIMITED."""
ROOM_INPUT_QUEUE_LIMIT = 256
"""Client messages a gateway holds for one room that the room has not processed yet (queued,
or sent and not acknowledged), at least; beyond the limit (this, or ``ROOM_INPUT_QUEUE_PER_SOCKET``
per socket the gateway has in the room when that is more) the room is busy and inputs are
dropped with ERR_ROOM_BUSY (joins and closes are never dropped)."""
ROOM_INPUT_QUEUE_PER_SOCKET = 4
"""The room input queue's limit per socket of the gateway in the room: players send up to one
input per tick (10 Hz), which a gateway holds until the flush point before the room's tick, so
a room of 100 players behind one gateway has ~100 in its queue each tick while it keeps up; the
limit lets it fall ~4 ticks behind (a busy room host) before inputs are dropped."""
HEARTBEAT_INTERVAL = 20.0
"""Seconds without any frame from a client before the server pings it; a client from which
nothing (a pong or anything else) arrives within half of it after the ping is disconnected. The
gateway checks every HEARTBEAT_INTERVAL / 8 s, so a dead or silent peer lasts at most
1.75 x HEARTBEAT_INTERVAL (35 s); there is no separate receive timeout (any frame, pongs
included, would reset it, so it could never fire before the heartbeat does, and aiohttp's costs
a timer per received message)."""
# The protocol's own message types, client -> server (a room kind's own types are its
# ``Room.messages``; they may not reuse these names).
JOIN = "join"
RESYNC = "resync"
PING = "ping"
PROTOCOL_TYPES = (JOIN, RESYNC, PING)

# Message types, server -> client.
WELCOME = "welcome"
FRAME = "frame"
ERROR = "error"
PONG = "pong"
SERVER_TYPES = (WELCOME, FRAME, ERROR, PONG)

# Error codes carried in ERROR frames; the connection stays open.
ERR_MALFORMED = 1
ERR_UNKNOWN_TYPE = 2
ERR_INVALID_FIELD = 3
ERR_OUT_OF_RANGE = 4
ERR_NOT_JOINED = 5
ERR_ALREADY_JOINED = 6
ERR_UNKNOWN_ROOM = 7
ERR_ROOM_ERROR = 8
ERR_RATE_LIMITED = 9
ERR_ROOM_BUSY = 10
ERR_UNAUTHORIZED = 11
ERR_ROOM_FULL = 12
# 13-15 are the game's (``starhold.rooms.protocol``): codes a room sends about its own messages.
ERR_OVERLOADED = 16
"""``join``: the server or the room is overloaded and takes no new players for now (the socket
closes with CLOSE_TRY_AGAIN_LATER); a ``join`` with ``resume`` is always admitted."""

# WebSocket close codes used by the server (RFC 6455 codes plus the 4000-4999 private range).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_PROTOCOL_ERROR = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_ROOM_FULL = 4003
CLOSE_UNKNOWN_ROOM = 4004
CLOSE_SLOW_CONSUMER = 4008
CLOSE_REPLACED = 4009
CLOSE_RATE_LIMITED = 4029
CLOSE_ROOM_UNAVAILABLE = 4503

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_SEAT_TOKEN_LENGTH)

MAX_ARRAY_LENGTH = 256
"""Longest array anywhere in a client message (else ERR_MALFORMED)."""
MAX_MAP_LENGTH = 64
"""Most keys of a map anywhere in a client message (else ERR_MALFORMED)."""

_UNPACK_LIMITS = dict(
    max_str_len=MAX_MESSAGE_BYTES,
    max_bin_len=MAX_MESSAGE_BYTES,
    max_array_len=MAX_ARRAY_LENGTH,
    max_map_len=MAX_MAP_LENGTH,
    max_ext_len=MAX_MESSAGE_BYTES,
)


class ProtocolError(ValueError):
    """A client message was rejected.

    ``code`` is one of the ``ERR_*`` constants, ``seq`` the offending message's sequence
    number when it could be read (else 0).
    """

    def __init__(self, code: int, message: str, seq: int = 0):
        super().__init__(message)
        self.code = code
        self.seq = seq


class ClientMessage(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A validated client message, as ``Room.on_message`` receives it: ``type`` (str), ``seq``
    (the client's sequence number, int in ``[0, MAX_SEQ]``) and ``payload``: an instance of
    the ``msgspec.Struct`` the room kind declared for ``type`` (``Room.messages``), or
    ``Resync()`` for ``resync``. ``join`` never reaches ``on_message`` (its validated payload
    dict is ``ConnectRequest.payload``); ``ping`` is answered by the gateway.

    On the data channel it travels as ``[type, seq, payload]`` with the payload as a map; the
    room builds the declared Struct back from it (``starhold.messages``). Frozen and not tracked
    by the cyclic garbage collector (``gc=False``; one is made per input): do not make a value
    it holds refer back to it."""

    type: str
    seq: int
    payload: Any


class Resync(msgspec.Struct, frozen=True):
    """The payload of ``resync``: no fields (unknown keys are ignored)."""


def encode(type_: str, seq: int, payload: dict) -> bytes:
    """Encode one envelope ``[type, seq, payload]`` to msgpack bytes."""
    return msgpack.packb([type_, seq, payload], use_bin_type=True)


_FLAT_ENVELOPE = msgspec.msgpack.Decoder(tuple[str, int, dict[str, bool | int | float | str | None]])
"""The common shape of a client message, decoded in one typed pass: ``[str, int, map]`` whose
map has string keys and only scalar values (a ``move_to``, a ``ping``, a ``say``...)."""


def decode(data: bytes) -> tuple[str, int, Any]:
    """Decode msgpack bytes into ``(type, seq, payload)`` without validating the payload.

    Raises ``ProtocolError(ERR_MALFORMED)`` when ``data`` is not one msgpack envelope of
    shape ``[str, int, map]``.

    Fast path: an envelope whose payload map has only string keys and scalar values (no
    nested array or map, so the shape limits reduce to the map's key count; strings fit the
    message's 4096 bytes) is decoded by msgspec's typed decoder (~0.4 us against ~2.6 us for
    ``msgpack.unpackb`` with limits, whose keyword arguments cost most of that); any other
    message, malformed ones included, takes the ``msgpack`` path below, which decides. Both
    give the same result for what the fast path accepts (duplicate keys: the last wins).
    """
    if type(data) is bytes and len(data) <= MAX_MESSAGE_BYTES:
        try:
            type_, seq, payload = _FLAT_ENVELOPE.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            if 0 <= seq <= MAX_SEQ and len(payload) <= MAX_MAP_LENGTH:
                return type_, seq, payload
    return _decode_msgpack(data)


def _decode_msgpack(data: bytes) -> tuple[str, int, Any]:
    """``decode`` without its fast path: ``msgpack.unpackb`` with the shape limits."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(ERR_MALFORMED, "messages must be binary msgpack frames")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(ERR_MALFORMED, f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = msgpack.unpackb(bytes(data), raw=False, strict_map_key=False, **_UNPACK_LIMITS)
    except Exception as exc:  # msgpack raises many types: ExtraData, StackError, ValueError...
        raise ProtocolError(ERR_MALFORMED, f"not a msgpack message: {type(exc).__name__}") from None
    if not isinstance(obj, list) or len(obj) != 3:
        raise ProtocolError(ERR_MALFORMED, "envelope must be an array [type, seq, payload]")
    type_, seq, payload = obj
    if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise ProtocolError(ERR_MALFORMED, "envelope seq must be an integer in [0, 2^53-1]")
    if not isinstance(type_, str):
        raise ProtocolError(ERR_MALFORMED, "envelope type must be a string", seq)
    if not isinstance(payload, dict):
        raise ProtocolError(ERR_MALFORMED, "envelope payload must be a map", seq)
    return type_, seq, payload


def join_payload(payload: dict, seq: int) -> dict:
    """The validated payload of a ``join``: ``{"resume"?: str, "name"?: str}`` (``name``
    stripped; other keys dropped). Raises ``ProtocolError(ERR_INVALID_FIELD)`` for a
    ``resume`` that is not a seat token (1-``MAX_SEAT_TOKEN_LENGTH`` characters of
    ``[A-Za-z0-9_-]``) or a ``name`` that is not 1-``MAX_NAME_LENGTH`` printable characters."""
    out = {}
    resume = payload.get("resume")
    if resume is not None:
        if not isinstance(resume, str) or not _TOKEN_RE.fullmatch(resume):
            raise ProtocolError(
                ERR_INVALID_FIELD,
                f"join.resume must be a seat token of 1-{MAX_SEAT_TOKEN_LENGTH} characters of [A-Za-z0-9_-]",
                seq,
            )
        out["resume"] = resume
    name = payload.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise ProtocolError(ERR_INVALID_FIELD, f"join.name must be 1-{MAX_NAME_LENGTH} printable characters", seq)
        out["name"] = name.strip()
    return out


def decode_server(data: bytes) -> tuple[str, int, dict]:
    """Decode a server message (no size limits: the server is trusted) to ``(type, seq, payload)``."""
    type_, seq, payload = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return type_, seq, payload


def error_frame(code: int, message: str, seq: int = 0) -> bytes:
    """Encode an ERROR envelope ``["error", seq, {"code": code, "message": message}]``."""
    return encode(ERROR, seq, {"code": code, "message": message})


def frame_tail_start(base: int | None) -> bytes:
    """The first bytes of every frame tail: the key ``base`` and its value (the tick the frame
    is a delta against, or None for a keyframe). A room's frame tail (the part of a ``frame``
    payload that is the same for every client, after ``tick`` and ``ack``) starts with them,
    so that the gateway can tell a keyframe by ``tail_is_keyframe`` without decoding it."""
    return _KEY_BASE + msgpack.packb(base)


def frame_prefix(tick: int, keys: int) -> bytes:
    """The bytes of a ``frame`` envelope up to its ``ack`` value (the same for every client
    of a tick): ``frame_prefix(tick, keys) + msgpack.packb(ack) + tail`` is the whole frame.
    ``keys``: the payload's key count (2 for ``tick`` and ``ack`` plus the tail's keys); the
    map header is the only byte that depends on it. Raises ``ValueError`` outside 2-15."""
    if not 2 <= keys <= 15:
        raise ValueError("a frame has 2-15 keys")
    return b"".join((b"\x93", _FRAME_TYPE, msgpack.packb(tick), bytes((0x80 | keys,)), _KEY_TICK,
                     msgpack.packb(tick), _KEY_ACK))


def encode_frame(tick: int, ack: int, tail: bytes, keys: int, prefix: bytes | None = None) -> bytes:
    """Encode ``["frame", tick, {"tick": tick, "ack": ack, "base": ..., <the tail's keys>}]``
    around a ``tail`` that starts with ``frame_tail_start``; byte-identical to ``encode(FRAME,
    tick, {...})`` with that key order. Only the ack is encoded per client. ``keys``: the
    payload's key count (ignored when ``prefix``, a ``frame_prefix``, is given). ``tick`` and
    ``ack`` are the first two keys of every frame, so partial decoders that stop after the ack
    work for every room."""
    return (prefix or frame_prefix(tick, keys)) + msgpack.packb(ack) + tail


def tail_is_keyframe(tail: bytes) -> bool:
    """Whether a frame tail (starting with ``frame_tail_start``) is a keyframe's (its ``base``
    is nil), without decoding."""
    return tail[len(_KEY_BASE)] == 0xC0


_FRAME_TYPE = msgpack.packb(FRAME)
_KEY_TICK, _KEY_ACK, _KEY_BASE = (msgpack.packb(k) for k in ("tick", "ack", "base"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def constant_names(module: ModuleType) -> list[str]:
    """The protocol constants a module defines (not imports): upper-case names bound to an int,
    float, str or tuple of str, in definition order."""
    names = vars(module).get("__all__") or list(vars(module))
    return [n for n in names if n.isupper() and not n.startswith("_")
            and isinstance(getattr(module, n), (int, float, str, tuple))]


def js_constants(modules: list[ModuleType], command: str) -> str:
    """The JavaScript ES module of the constants of ``modules`` (``constant_names``, in order),
    headed by a comment naming ``command``, the one that generates it. A name a later module
    re-exports with the same value is written once; with another value it raises
    ``ValueError``."""
    lines = [f"// Generated by `{command}` from " + " and ".join(m.__file__.rsplit("/", 2)[-2] + "/" +
             m.__file__.rsplit("/", 1)[-1] for m in modules) + ". Do not edit."]
    seen: dict[str, Any] = {}
    for module in modules:
        for n in constant_names(module):
            v = getattr(module, n)
            if n in seen:
                if seen[n] != v or type(seen[n]) is not type(v):
                    raise ValueError(f"protocol constant {n} has two values: {seen[n]!r} and {v!r}")
                continue
            seen[n] = v
            if isinstance(v, tuple):
                js = "[" + ", ".join(f'"{x}"' for x in v) + "]"
            elif isinstance(v, str):
                js = f'"{v}"'
            elif isinstance(v, float):
                js = repr(v)
            else:
                js = str(v)
            lines.append(f"export const {n} = {js};")
    return "\n".join(lines) + "\n"


__all__ = [n for n in list(globals()) if not n.startswith("_") and n not in (
    "annotations", "hashlib", "re", "ModuleType", "Any", "msgpack", "msgspec")]

"""The Starhold wire protocol: one module shared by gateway, rooms and both clients.

Every WebSocket message is one *binary* frame holding one msgpack-encoded envelope::

    [type: str, seq: int, payload: map]

``docs/protocol.md`` is the normative description; this module is its executable form and
the JavaScript constants in ``client/web/src/protocol.generated.js`` are generated from it
(``python -m starhold.protocol --js``; ``tests/test_protocol.py`` fails when they drift).

Units: coordinates are world units in a system's plane, times are seconds, rates are Hz.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
import hashlib
from typing import Any

import msgpack

PROTOCOL_VERSION = 2
TICK_RATE = 10
"""Room simulation and frame rate, Hz."""


def tick_offset(room_key: str) -> float:
    """Seconds, in ``[0, 1/TICK_RATE)``, by which the tick boundaries of the room ``room_key``
    (``"kind/id"``) follow the multiples of ``1/TICK_RATE`` of game time. Spread by a hash of
    the key, so that rooms do not all tick, and push their frames to the gateways, at the same
    instant: the work of many rooms spreads over the tick instead of arriving in one burst
    (which delayed the last frames of the burst by tens of ms at 10 rooms of 100 players)."""
    digest = hashlib.blake2s(room_key.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 / TICK_RATE

WORLD_LIMIT = 1000.0
"""Coordinates are valid in the square ``[-WORLD_LIMIT, WORLD_LIMIT]**2`` (world units)."""
SHIP_SPEED = 50.0
"""Ship cruise speed, world units per second."""
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
or sent and not acknowledged); beyond it the room is busy and inputs are dropped with
ERR_ROOM_BUSY (joins and closes are never dropped)."""
HEARTBEAT_INTERVAL = 20.0
"""Seconds without any frame from a client before the server pings it; a client from which
nothing (a pong or anything else) arrives within half of it after the ping is disconnected. The
gateway checks every HEARTBEAT_INTERVAL / 8 s, so a dead or silent peer lasts at most
1.75 x HEARTBEAT_INTERVAL (35 s); there is no separate receive timeout (any frame, pongs
included, would reset it, so it could never fire before the heartbeat does, and aiohttp's costs
a timer per received message)."""
SEAT_HOLD = 30.0
"""Seconds a dropped player's seat (ship, input sequence) is held for ``join.resume``."""
RESPAWN_DELAY = 10.0
"""Seconds a destroyed ship waits (flagged ``SHIP_DESTROYED``) before it respawns with full hp."""

# Message types, client -> server.
JOIN = "join"
MOVE_TO = "move_to"
RESYNC = "resync"
PING = "ping"
ATTACK = "attack"
CLIENT_TYPES = (JOIN, MOVE_TO, RESYNC, PING, ATTACK)

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
ERR_UNKNOWN_TARGET = 13
"""``attack``: no ship with that id in the room."""
ERR_INVALID_TARGET = 14
"""``attack``: the target is your own ship, destroyed, or parked (its player is not connected),
or your own ship is destroyed; or the room has no combat (a game session)."""
ERR_NO_PATH = 15
"""``move_to``: no path around the obstacles leads there; the ship keeps its course."""
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

# Bit flags of a ship row's ``flags`` column.
SHIP_ONLINE = 1
"""The ship's player is connected."""
SHIP_MOVING = 2
"""The ship is travelling toward a target."""
SHIP_HELD = 4
"""The ship's player dropped and its seat is held for ``SEAT_HOLD`` seconds."""
SHIP_IN_COMBAT = 8
"""The ship is fighting: it moves by combat steering, not toward its ``move_to`` target."""
SHIP_DESTROYED = 16
"""The ship was destroyed; it respawns with full hp ``RESPAWN_DELAY`` seconds after."""
SHIP_NPC = 32
"""The ship is a non-player ship (a pirate)."""

# Kinds of a frame's combat ``events`` rows ``[kind, a, b, value]``.
EVENT_ATTACK = 0
"""``[0, attacker id, target id, damage]``."""
EVENT_DESTROYED = 1
"""``[1, ship id, -1, 0]``."""

FRAME_KEYS = 7
"""Keys of a ``frame`` payload: tick, ack, base, time, ships, removed, names."""
COMBAT_FRAME_KEYS = 9
"""Keys of a ``frame`` payload of a room with combat (a solar system): the 7 plus hp, events."""

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


@dataclass(frozen=True)
class ClientMessage:
    """A validated client message: ``type`` is one of ``CLIENT_TYPES``; ``payload`` is
    normalised (``move_to`` has float ``x`` and ``y``; ``join`` has optional str ``player``
    and ``name``; ``attack`` has int ``target``)."""

    type: str
    seq: int
    payload: dict


def encode(type_: str, seq: int, payload: dict) -> bytes:
    """Encode one envelope ``[type, seq, payload]`` to msgpack bytes."""
    return msgpack.packb([type_, seq, payload], use_bin_type=True)


def decode(data: bytes) -> tuple[str, int, Any]:
    """Decode msgpack bytes into ``(type, seq, payload)`` without validating the payload.

    Raises ``ProtocolError(ERR_MALFORMED)`` when ``data`` is not one msgpack envelope of
    shape ``[str, int, map]``.
    """
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


def parse_client_message(data: bytes) -> ClientMessage:
    """Decode and validate one client message.

    Raises ``ProtocolError`` with ``ERR_MALFORMED``, ``ERR_UNKNOWN_TYPE``,
    ``ERR_INVALID_FIELD`` (missing field or wrong type) or ``ERR_OUT_OF_RANGE`` (coordinate
    not finite or outside ``[-WORLD_LIMIT, WORLD_LIMIT]``, ``attack.target`` not in
    ``[0, MAX_SEQ]``). Unknown payload keys are ignored.
    """
    type_, seq, payload = decode(data)
    if type_ == MOVE_TO:
        return ClientMessage(type_, seq, {"x": _coord(payload, "x", seq), "y": _coord(payload, "y", seq)})
    if type_ == JOIN:
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
                raise ProtocolError(
                    ERR_INVALID_FIELD, f"join.name must be 1-{MAX_NAME_LENGTH} printable characters", seq
                )
            out["name"] = name.strip()
        return ClientMessage(type_, seq, out)
    if type_ == ATTACK:
        target = payload.get("target")
        if target is None:
            raise ProtocolError(ERR_INVALID_FIELD, "missing field 'target'", seq)
        if not _is_int(target):
            raise ProtocolError(ERR_INVALID_FIELD, "field 'target' must be an integer ship id", seq)
        if not 0 <= target <= MAX_SEQ:
            raise ProtocolError(ERR_OUT_OF_RANGE, "field 'target' must be in [0, 2^53-1]", seq)
        return ClientMessage(type_, seq, {"target": target})
    if type_ == RESYNC:
        return ClientMessage(type_, seq, {})
    if type_ == PING:
        return ClientMessage(type_, seq, {})
    raise ProtocolError(ERR_UNKNOWN_TYPE, f"unknown message type {type_[:32]!r}", seq)


def decode_server(data: bytes) -> tuple[str, int, dict]:
    """Decode a server message (no size limits: the server is trusted) to ``(type, seq, payload)``."""
    type_, seq, payload = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return type_, seq, payload


def error_frame(code: int, message: str, seq: int = 0) -> bytes:
    """Encode an ERROR envelope ``["error", seq, {"code": code, "message": message}]``."""
    return encode(ERROR, seq, {"code": code, "message": message})


_row_packer = msgpack.Packer(use_bin_type=True, use_single_float=True)


def quantize(value: float) -> float:
    """``value`` rounded to float32, the precision of coordinates on the wire (about 6e-5
    world units at 1000). Deltas compare quantized values, so a ship at rest never reappears."""
    return _F32.unpack(_F32.pack(value))[0]


def pack_frame_tail(base: int | None, time: float, rows: list, removed: list, names: list,
                    hp: list | None = None, events: list | None = None) -> bytes:
    """Encode the part of a ``frame`` payload that is the same for every client: the keys
    ``base``, ``time``, ``ships``, ``removed`` and ``names`` with their values, then ``hp`` and
    ``events`` when either is given (rooms with combat), for ``frame_prefix`` to prefix once
    per client (the tick and that client's ack).

    ``base``: tick of the frame this one is a delta against, or None for a keyframe (a full
    snapshot); ``time``: game time of the tick, seconds; ``rows``: ``[id, x, y, flags]`` per
    changed ship (every ship in a keyframe), x and y in world units, packed as float32;
    ``removed``: ids of ships gone since ``base``; ``names``: ``[id, name]`` per ship new since
    ``base`` or renamed (every ship in a keyframe); ``hp``: ``[id, hp, max_hp]`` (ints) per ship
    whose hit points changed since ``base`` (every ship in a keyframe); ``events``: this tick's
    combat events ``[kind, a, b, value]`` (``EVENT_*``). A tail with ``hp``/``events`` has
    ``COMBAT_FRAME_KEYS`` keys in all (pass that to ``frame_prefix``), else ``FRAME_KEYS``.
    """
    parts = [
        _KEY_BASE, msgpack.packb(base), _KEY_TIME, msgpack.packb(float(time)),
        _KEY_SHIPS, _row_packer.pack(rows), _KEY_REMOVED, msgpack.packb(removed),
        _KEY_NAMES, msgpack.packb(names, use_bin_type=True),
    ]
    if hp is not None or events is not None:
        parts += [_KEY_HP, msgpack.packb(hp or []), _KEY_EVENTS, msgpack.packb(events or [])]
    return b"".join(parts)


def frame_prefix(tick: int, keys: int = FRAME_KEYS) -> bytes:
    """The bytes of a ``frame`` envelope up to its ``ack`` value (the same for every client
    of a tick): ``frame_prefix(tick, keys) + msgpack.packb(ack) + tail`` is the whole frame.
    ``keys``: the payload's key count, ``FRAME_KEYS`` (7) or ``COMBAT_FRAME_KEYS`` (9) for a
    tail with ``hp`` and ``events``; the map header is the only byte that depends on it."""
    if not 2 <= keys <= 15:
        raise ValueError("a frame has 2-15 keys")
    return b"".join((b"\x93", _FRAME_TYPE, msgpack.packb(tick), bytes((0x80 | keys,)), _KEY_TICK,
                     msgpack.packb(tick), _KEY_ACK))


def encode_frame(tick: int, ack: int, tail: bytes, prefix: bytes | None = None, keys: int = FRAME_KEYS) -> bytes:
    """Encode ``["frame", tick, {"tick", "ack", "base", "time", "ships", "removed", "names"
    [, "hp", "events"]}]`` around a tail from ``pack_frame_tail``; byte-identical to
    ``encode(FRAME, tick, {...})`` with that key order (and float32 coordinates). Only the ack
    is encoded per client. ``keys``: ``COMBAT_FRAME_KEYS`` when the tail has ``hp``/``events``
    (ignored when ``prefix`` is given). ``tick`` and ``ack`` stay the first two keys in
    every frame, so partial decoders that stop after the ack work for both."""
    return (prefix or frame_prefix(tick, keys)) + msgpack.packb(ack) + tail


def tail_is_keyframe(tail: bytes) -> bool:
    """Whether a ``pack_frame_tail`` tail is a keyframe's (its ``base`` is nil), without decoding."""
    return tail[len(_KEY_BASE)] == 0xC0


_F32 = struct.Struct("<f")
_FRAME_TYPE = msgpack.packb(FRAME)
_KEY_TICK, _KEY_ACK, _KEY_BASE, _KEY_TIME, _KEY_SHIPS, _KEY_REMOVED, _KEY_NAMES, _KEY_HP, _KEY_EVENTS = (
    msgpack.packb(k) for k in ("tick", "ack", "base", "time", "ships", "removed", "names", "hp", "events"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _coord(payload: dict, key: str, seq: int) -> float:
    value = payload.get(key)
    if value is None:
        raise ProtocolError(ERR_INVALID_FIELD, f"missing field {key!r}", seq)
    if not (_is_int(value) or isinstance(value, float)):
        raise ProtocolError(ERR_INVALID_FIELD, f"field {key!r} must be a number", seq)
    value = float(value)
    if not math.isfinite(value) or abs(value) > WORLD_LIMIT:
        raise ProtocolError(ERR_OUT_OF_RANGE, f"field {key!r} must be finite and within ±{WORLD_LIMIT:g}", seq)
    return value


def js_constants() -> str:
    """The JavaScript ES module of this module's constants (generated; do not edit by hand)."""
    names = [
        n
        for n, v in globals().items()
        if n.isupper() and not n.startswith("_") and isinstance(v, (int, float, str, tuple))
    ]
    lines = ["// Generated by `python -m starhold.protocol --js` from starhold/protocol.py. Do not edit."]
    for n in names:
        v = globals()[n]
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


if __name__ == "__main__":  # pragma: no cover - exercised by the drift test through js_constants()
    import sys

    if sys.argv[1:] == ["--js"]:
        sys.stdout.write(js_constants())
    else:
        sys.exit("usage: python -m starhold.protocol --js")

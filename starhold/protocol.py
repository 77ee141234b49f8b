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
from dataclasses import dataclass
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
TICK_RATE = 10
"""Room simulation and frame rate, Hz."""
WORLD_LIMIT = 1000.0
"""Coordinates are valid in the square ``[-WORLD_LIMIT, WORLD_LIMIT]**2`` (world units)."""
SHIP_SPEED = 50.0
"""Ship cruise speed, world units per second."""
MAX_MESSAGE_BYTES = 4096
"""Largest client message accepted; a larger one closes the socket with 1009."""
MAX_SEQ = 2**53 - 1
"""Largest sequence number (the largest integer a JavaScript number holds exactly)."""
MAX_NAME_LENGTH = 32
MAX_PLAYER_KEY_LENGTH = 64
SEND_QUEUE_LIMIT = 64
"""Messages queued for one client socket; a client that falls further behind is closed (4008)."""
MAX_CONSECUTIVE_ERRORS = 20
"""A client whose last this-many messages were all rejected is closed with CLOSE_PROTOCOL_ERROR."""

# Message types, client -> server.
JOIN = "join"
MOVE_TO = "move_to"
PING = "ping"
CLIENT_TYPES = (JOIN, MOVE_TO, PING)

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

# WebSocket close codes used by the server (RFC 6455 codes plus the 4000-4999 private range).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_PROTOCOL_ERROR = 4000
CLOSE_UNKNOWN_ROOM = 4004
CLOSE_SLOW_CONSUMER = 4008
CLOSE_REPLACED = 4009
CLOSE_ROOM_UNAVAILABLE = 4503

# Bit flags of a ship row's ``flags`` column.
SHIP_ONLINE = 1
"""The ship's player is connected."""
SHIP_MOVING = 2
"""The ship is travelling toward a target."""

_PLAYER_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,%d}$" % MAX_PLAYER_KEY_LENGTH)

_UNPACK_LIMITS = dict(
    max_str_len=MAX_MESSAGE_BYTES,
    max_bin_len=MAX_MESSAGE_BYTES,
    max_array_len=256,
    max_map_len=64,
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
    and ``name``)."""

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
    not finite or outside ``[-WORLD_LIMIT, WORLD_LIMIT]``). Unknown payload keys are ignored.
    """
    type_, seq, payload = decode(data)
    if type_ == MOVE_TO:
        return ClientMessage(type_, seq, {"x": _coord(payload, "x", seq), "y": _coord(payload, "y", seq)})
    if type_ == JOIN:
        out = {}
        player = payload.get("player")
        if player is not None:
            if not isinstance(player, str) or not _PLAYER_KEY_RE.match(player):
                raise ProtocolError(
                    ERR_INVALID_FIELD,
                    f"join.player must be 1-{MAX_PLAYER_KEY_LENGTH} characters of [A-Za-z0-9_-]",
                    seq,
                )
            out["player"] = player
        name = payload.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH or not name.isprintable():
                raise ProtocolError(
                    ERR_INVALID_FIELD, f"join.name must be 1-{MAX_NAME_LENGTH} printable characters", seq
                )
            out["name"] = name.strip()
        return ClientMessage(type_, seq, out)
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


def pack_ship_rows(rows: list) -> bytes:
    """Pre-encode the ``"ships"`` key and its rows (``[id, x, y, flags, name]`` each) once per
    tick, for ``encode_frame`` to splice into every client's frame."""
    return msgpack.packb("ships") + msgpack.packb(rows, use_bin_type=True)


def encode_frame(tick: int, time: float, ack: int, ships_field: bytes) -> bytes:
    """Encode ``["frame", tick, {"tick", "time", "ack", "ships"}]`` around pre-encoded ships.

    Byte-identical to ``encode(FRAME, tick, {...})`` with the same key order; only the small
    per-client part (the ack) is encoded per client.
    """
    head = msgpack.packb(FRAME) + msgpack.packb(tick)
    body = msgpack.packb("tick") + msgpack.packb(tick) + msgpack.packb("time") + msgpack.packb(float(time))
    return b"\x93" + head + b"\x84" + body + msgpack.packb("ack") + msgpack.packb(ack) + ships_field


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

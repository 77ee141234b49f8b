"""The game's protocol: Starhold's client messages, frame contents and constants.

This is the envelope protocol of ``starhold.protocol`` (re-exported here: game code and the
clients import one module) plus what the game adds to it (docs/protocol.md §3, §4, §9):

- its client messages ``move_to`` (``MoveTo``) and ``attack`` (``Attack``), the schemas the
  ship rooms declare in ``Room.messages`` (``GAME_MESSAGES``);
- the error codes its rooms send about them (13-15), the ship rows' flags, combat event kinds;
- its frame tails (``pack_frame_tail``: ships, removed, names, hp, events), spliced behind the
  envelope's ``frame_prefix``.

The browser client's constants (``client/web/src/protocol.generated.js``) are generated from
both modules: ``python -m starhold.rooms.protocol --js``.

Units: coordinates are world units in a system's plane, times are seconds, speeds units/s.
"""

from __future__ import annotations

import struct
import sys
from typing import Annotated

import msgpack
import msgspec

from starhold import protocol as _envelope
from starhold.protocol import *  # noqa: F403 - the envelope, re-exported (see the docstring)
from starhold.protocol import MAX_SEQ, frame_tail_start

TICK_RATE = 10
"""Simulation and frame rate of the ship rooms (``Room.tick_rate``), Hz."""
SEAT_HOLD = 30.0
"""Seconds a dropped player's seat (ship, input sequence) is held for ``join.resume``."""
WORLD_LIMIT = 1000.0
"""Coordinates are valid in the square ``[-WORLD_LIMIT, WORLD_LIMIT]**2`` (world units)."""
SHIP_SPEED = 50.0
"""Ship cruise speed, world units per second."""
RESPAWN_DELAY = 10.0
"""Seconds a destroyed ship waits (flagged ``SHIP_DESTROYED``) before it respawns with full hp."""

# The game's message types, client -> server.
MOVE_TO = "move_to"
ATTACK = "attack"
JUMP = "jump"
"""Client -> system: fly to the jump point toward a lane neighbour and jump; server -> client:
the ship jumped (then the socket closes with ``CLOSE_JUMPED``)."""
ROUTE = "route"
"""Client -> system: autopilot along the lanes to a system; server -> client: the plotted route."""
SAY = "say"
TELL = "tell"
SCAN = "scan"
"""Client -> system: scan a planet, asteroid field or anomaly; server -> client: the scan
started, completed (with its result) or was cancelled (docs/protocol.md §3 "Economy")."""
MINE = "mine"
"""Client -> system: mine a field (or stop: target null); server -> client: mining started,
a cycle's yield, or mining stopped."""
LOOT = "loot"
"""Client -> system: take what fits from a wreck; server -> client: what was taken."""
GAME_TYPES = (MOVE_TO, ATTACK, JUMP, ROUTE, SAY, TELL, SCAN, MINE, LOOT)

# The game's message types, server -> client.
CHAT = "chat"
PRESENCE = "presence"
ELSEWHERE = "elsewhere"
CARGO = "cargo"
"""The system's view of your pilot's ledger: credits, cargo, hold capacity, reserved units."""
WRECKS = "wrecks"
"""The system's wrecks, on join and to everyone whenever they change."""

# The game's error codes (after the envelope's 1-12; 16 is the envelope's ERR_OVERLOADED).
ERR_UNKNOWN_TARGET = 13
"""``attack``: no ship with that id in the room."""
ERR_INVALID_TARGET = 14
"""``attack``: the target is your own ship, destroyed, or parked (its player is not connected),
or your own ship is destroyed; or the room has no combat (a game session)."""
ERR_NO_PATH = 15
"""``move_to``: no path around the obstacles leads there; the ship keeps its course."""
ERR_NO_LANE = 17
"""``jump``: no lane leads from this system to that one."""
ERR_SHIP_BUSY = 18
"""``jump``/``route``: the ship is destroyed (or has no seat here); it cannot jump now."""
ERR_NO_ROUTE = 19
"""``route``: unknown system, this system, or no chain of lanes leads there."""
ERR_ELSEWHERE = 20
"""``join`` of a system: the ship is in another system or in transit (an ``elsewhere``
message says where; the socket closes with ``CLOSE_ELSEWHERE``)."""
ERR_UNKNOWN_PLAYER = 21
"""``tell``: no pilot with that id has ever flown."""
ERR_TOO_FAR = 22
"""``scan``/``mine``/``loot``: the target is beyond the order's range (``SCAN_RANGE``,
``MINE_RANGE``, ``LOOT_RANGE``); also sent (seq 0) when mining stops out of range."""
ERR_UNKNOWN_OBJECT = 23
"""``scan``/``mine``/``loot``: no such planet, field, anomaly or wreck in this system (or a
planet your ship has not scanned, for ``mine``; or a target that cannot be mined)."""
ERR_HOLD_FULL = 24
"""``mine``/``loot``: the hold has no free space (the system's view of your ledger); also
sent (seq 0) when mining stops for it."""
ERR_EMPTY = 25
"""``mine``: the field has nothing left to mine (also sent, seq 0, when mining stops for it);
``loot``: the wreck holds nothing."""

CLOSE_ELSEWHERE = 4110
"""A system refused the join: the pilot's ship is elsewhere (see ``ELSEWHERE``)."""
CLOSE_JUMPED = 4111
"""The pilot's ship jumped out of the system (see ``JUMP``): join the target system."""

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
SHIP_SCANNING = 64
"""The ship is scanning (``scan``: ``SCAN_SECONDS``)."""
SHIP_MINING = 128
"""The ship is mining a field (``mine``)."""

# The economy's ranges and times (docs/economy.md §3-4).
SCAN_SECONDS = 3.0
"""Seconds a scan takes."""
SCAN_RANGE = 250.0
"""A scan's target must be this close at its start and at its end, world units."""
MINE_RANGE = 150.0
"""A mining ship must stay this close to its field, world units."""
MINE_YIELD = 4
"""Units a mining cycle takes (at most; less when the hold or the field has less room/left)."""
MINE_CYCLE = 2.0
"""Seconds between two mining cycles."""
LOOT_RANGE = 100.0
"""A wreck must be this close to be looted, world units."""
WRECK_TTL = 600.0
"""Seconds a wreck lasts; what is left in it then is destroyed."""
MAX_TARGET = 64
"""Longest ``scan``/``mine`` target string (``planet:<id>``, ``field:<index>``, ``anomaly:<index>``)."""

# Kinds of a frame's combat ``events`` rows ``[kind, a, b, value]``.
EVENT_ATTACK = 0
"""``[0, attacker id, target id, damage]``."""
EVENT_DESTROYED = 1
"""``[1, ship id, -1, 0]``."""

FRAME_KEYS = 7
"""Keys of a ``frame`` payload: tick, ack, base, time, ships, removed, names."""
COMBAT_FRAME_KEYS = 9
"""Keys of a ``frame`` payload of a room with combat (a solar system): the 7 plus hp, events."""

Coordinate = Annotated[float, msgspec.Meta(ge=-WORLD_LIMIT, le=WORLD_LIMIT)]
"""A world coordinate: a finite number in ``[-WORLD_LIMIT, WORLD_LIMIT]`` (ints accepted)."""


class MoveTo(msgspec.Struct, frozen=True):
    """``move_to``: fly your ship toward ``(x, y)``, world units (the room clamps them to its
    own limit and plans a path)."""

    x: Coordinate
    y: Coordinate


class Attack(msgspec.Struct, frozen=True):
    """``attack``: attack the ship with id ``target`` (an int in ``[0, MAX_SEQ]``)."""

    target: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


SystemId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
"""A system id (``sol``, ``hip-71683``...): 1-64 characters."""
MAX_CHAT_INPUT = 1024
"""Longest ``text`` a chat message may carry on the wire; the room then cleans it and
refuses more than ``rooms.social.text.MAX_CHAT_LENGTH`` (280) characters."""


class Jump(msgspec.Struct, frozen=True):
    """``jump``: fly to the jump point toward lane neighbour ``to`` and jump when there."""

    to: SystemId


class Route(msgspec.Struct, frozen=True):
    """``route``: autopilot to system ``to`` along the shortest chain of lanes."""

    to: SystemId


class Say(msgspec.Struct, frozen=True):
    """``say``: a line on the system's channel."""

    text: Annotated[str, msgspec.Meta(max_length=MAX_CHAT_INPUT)]


class Tell(msgspec.Struct, frozen=True):
    """``tell``: a direct message to the pilot with player id ``to``."""

    to: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    text: Annotated[str, msgspec.Meta(max_length=MAX_CHAT_INPUT)]


Target = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TARGET)]
"""A scan or mining target: ``planet:<id>``, ``field:<index>`` or ``anomaly:<index>`` (the room
checks it exists: ``ERR_UNKNOWN_OBJECT``)."""


class Scan(msgspec.Struct, frozen=True):
    """``scan``: scan ``target`` (``SCAN_SECONDS``, within ``SCAN_RANGE``)."""

    target: Target


class Mine(msgspec.Struct, frozen=True):
    """``mine``: mine ``target`` (``field:<index>``, or ``planet:<id>`` once scanned) every
    ``MINE_CYCLE`` seconds; ``null`` (or absent) stops mining."""

    target: Target | None = None


class Loot(msgspec.Struct, frozen=True):
    """``loot``: take what fits from wreck ``wreck`` (an id of the ``wrecks`` message)."""

    wreck: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


GAME_MESSAGES = {MOVE_TO: MoveTo, ATTACK: Attack}
"""The ship rooms' ``Room.messages`` (a game session's)."""
SYSTEM_MESSAGES = {**GAME_MESSAGES, JUMP: Jump, ROUTE: Route, SAY: Say, TELL: Tell, SCAN: Scan, MINE: Mine,
                   LOOT: Loot}
"""A solar system's ``Room.messages``: the ship rooms' plus travel, chat and the economy."""

_F32 = struct.Struct("<f")
_row_packer = msgpack.Packer(use_bin_type=True, use_single_float=True)
_KEY_TIME, _KEY_SHIPS, _KEY_REMOVED, _KEY_NAMES, _KEY_HP, _KEY_EVENTS = (
    msgpack.packb(k) for k in ("time", "ships", "removed", "names", "hp", "events"))


def quantize(value: float) -> float:
    """``value`` rounded to float32, the precision of coordinates on the wire (about 6e-5
    world units at 1000). Deltas compare quantized values, so a ship at rest never reappears."""
    return _F32.unpack(_F32.pack(value))[0]


def quantize_many(values) -> list[float]:
    """``[quantize(v) for v in values]`` for a float64 numpy array of shape (N,), in one pass:
    float64 -> float32 rounds to nearest-even as ``struct``'s ``"<f"`` does, so the results are
    bit-identical. (A ship room's tick quantizes in ``starhold.kernels.motion.ship_rows``, the
    same float32 rounding.)"""
    return values.astype("float32").astype("float64").tolist()


def pack_frame_tail(base: int | None, time: float, rows: list | bytes, removed: list, names: list,
                    hp: list | None = None, events: list | None = None) -> bytes:
    """Encode the part of a ``frame`` payload that is the same for every client: the keys
    ``base``, ``time``, ``ships``, ``removed`` and ``names`` with their values, then ``hp`` and
    ``events`` when either is given (rooms with combat), for ``frame_prefix`` to prefix once
    per client (the tick and that client's ack).

    ``base``: tick of the frame this one is a delta against, or None for a keyframe (a full
    snapshot); ``time``: game time of the tick, seconds; ``rows``: ``[id, x, y, flags]`` per
    changed ship (every ship in a keyframe), x and y in world units, packed as float32 (or
    those rows already packed, bytes: ``starhold.kernels.frames.pack_rows``);
    ``removed``: ids of ships gone since ``base``; ``names``: ``[id, name]`` per ship new since
    ``base`` or renamed (every ship in a keyframe); ``hp``: ``[id, hp, max_hp]`` (ints) per ship
    whose hit points changed since ``base`` (every ship in a keyframe); ``events``: this tick's
    combat events ``[kind, a, b, value]`` (``EVENT_*``). A tail with ``hp``/``events`` has
    ``COMBAT_FRAME_KEYS`` keys in all (pass that to ``frame_prefix``), else ``FRAME_KEYS``.
    """
    parts = [
        frame_tail_start(base), _KEY_TIME, msgpack.packb(float(time)),
        _KEY_SHIPS, rows if type(rows) is bytes else _row_packer.pack(rows), _KEY_REMOVED, msgpack.packb(removed),
        _KEY_NAMES, msgpack.packb(names, use_bin_type=True),
    ]
    if hp is not None or events is not None:
        parts += [_KEY_HP, msgpack.packb(hp or []), _KEY_EVENTS, msgpack.packb(events or [])]
    return b"".join(parts)


__all__ = [*_envelope.__all__, "TICK_RATE", "SEAT_HOLD", "WORLD_LIMIT", "SHIP_SPEED", "RESPAWN_DELAY", "MOVE_TO", "ATTACK", "GAME_TYPES",
           "JUMP", "ROUTE", "SAY", "TELL", "CHAT", "PRESENCE", "ELSEWHERE", "ERR_NO_LANE", "ERR_SHIP_BUSY",
           "ERR_NO_ROUTE", "ERR_ELSEWHERE", "ERR_UNKNOWN_PLAYER", "CLOSE_ELSEWHERE", "CLOSE_JUMPED", "SystemId",
           "MAX_CHAT_INPUT", "Jump", "Route", "Say", "Tell", "SYSTEM_MESSAGES",
           "SCAN", "MINE", "LOOT", "CARGO", "WRECKS", "ERR_TOO_FAR", "ERR_UNKNOWN_OBJECT", "ERR_HOLD_FULL", "ERR_EMPTY",
           "SHIP_SCANNING", "SHIP_MINING", "SCAN_SECONDS", "SCAN_RANGE", "MINE_RANGE", "MINE_YIELD", "MINE_CYCLE",
           "LOOT_RANGE", "WRECK_TTL", "MAX_TARGET", "Target", "Scan", "Mine", "Loot",
           "ERR_UNKNOWN_TARGET", "ERR_INVALID_TARGET", "ERR_NO_PATH", "SHIP_ONLINE", "SHIP_MOVING", "SHIP_HELD",
           "SHIP_IN_COMBAT", "SHIP_DESTROYED", "SHIP_NPC", "EVENT_ATTACK", "EVENT_DESTROYED", "FRAME_KEYS",
           "COMBAT_FRAME_KEYS", "Coordinate", "MoveTo", "Attack", "GAME_MESSAGES", "quantize", "quantize_many", "pack_frame_tail"]

JS_COMMAND = "python -m starhold.rooms.protocol --js"


def js_constants() -> str:
    """``client/web/src/protocol.generated.js``: the envelope's constants, then the game's."""
    return _envelope.js_constants([_envelope, sys.modules[__name__]], JS_COMMAND)


if __name__ == "__main__":  # pragma: no cover - exercised by the drift test through js_constants()
    if sys.argv[1:] == ["--js"]:
        sys.stdout.write(js_constants())
    else:
        sys.exit("usage: python -m starhold.rooms.protocol --js")

"""Closed-form straight-line ship motion, vectorised over N ships.

A ship that left ``(x0, y0)`` at time ``t0`` toward ``(tx, ty)`` at constant ``speed`` is, at
time ``t``, ``min(speed * (t - t0), dist)`` along the segment. Because the position is a pure
function of time, a room that slept for an hour computes where its ships are without
replaying ticks (DESIGN §3, catch-up by closed form).

The compiled kernel (``_motion.pyx``) is used unless it is missing or
``STARHOLD_NO_EXTENSIONS=1``; ``positions_at_py`` is the readable twin and both give
bit-identical results (no FMA contraction: the extension is built with ``-ffp-contract=off``).
"""

from __future__ import annotations

import math
import struct
import sys

import numpy as np

from ._extensions import load

__all__ = ["positions_at", "positions_at_py", "position_at", "ship_rows", "ship_rows_py", "set_legs",
           "set_legs_py", "ship_position", "ship_position_py", "steer", "steer_py", "steer_rows", "steer_rows_py",
           "take_rows", "take_rows_py", "sync_rows", "sync_rows_py", "pack_legs", "pack_legs_py", "unpack_legs",
           "LEG_DTYPE", "COMPILED"]


def positions_at_py(x0, y0, tx, ty, t0, speed, t, out_x, out_y, moving):
    """Pure-Python twin of the compiled kernel; same arguments, same results bit for bit."""
    n = len(x0)
    if not (len(y0) == len(tx) == len(ty) == len(t0) == n and len(out_x) == len(out_y) == len(moving) == n):
        raise ValueError("all arrays must have the same length")
    for i in range(n):
        dx = float(tx[i]) - float(x0[i])
        dy = float(ty[i]) - float(y0[i])
        dist = math.sqrt(dx * dx + dy * dy)
        travel = max(speed * (t - float(t0[i])), 0.0)
        if travel >= dist:
            out_x[i], out_y[i], moving[i] = tx[i], ty[i], 0
        else:
            f = travel / dist
            out_x[i] = float(x0[i]) + dx * f
            out_y[i] = float(y0[i]) + dy * f
            moving[i] = 1


def position_at(x0: float, y0: float, tx: float, ty: float, t0: float, speed: float,
                t: float) -> tuple[float, float, bool]:
    """One ship's ``(x, y, moving)`` at time ``t`` (world units; seconds; speed in world units
    per second): the same operations as ``positions_at_py`` on plain floats, so bit-identical
    to both kernels, without building arrays (a room applies one order at a time)."""
    dx = tx - x0
    dy = ty - y0
    dist = math.sqrt(dx * dx + dy * dy)
    travel = max(speed * (t - t0), 0.0)
    if travel >= dist:
        return tx, ty, False
    f = travel / dist
    return x0 + dx * f, y0 + dy * f, True


def ship_rows_py(legs, ids, status, speed, t, moving_flag):
    """Pure-Python twin of the compiled ``ship_rows``; same arguments, same results bit for bit."""
    if legs.ndim != 2 or legs.shape[1] != 5 or len(ids) != legs.shape[0]:
        raise ValueError("legs must be (N, 5) with one id per row")
    rows, any_moving = {}, False
    for i, ship_id in enumerate(ids):
        x, y, moving = position_at(*(float(v) for v in legs[i]), speed, t)
        flags = int(status.get(ship_id, 0))
        if moving:
            flags |= moving_flag
            any_moving = True
        rows[ship_id] = (float(np.float32(x)), float(np.float32(y)), flags)
    return rows, any_moving


def ship_position_py(ship: dict, speed: float, t: float) -> tuple[float, float, bool]:
    """Pure-Python twin of the compiled ``ship_position``."""
    return position_at(ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"], speed, t)


def steer_py(ship: dict, tx: float, ty: float, t: float, speed: float) -> dict:
    """Pure-Python twin of the compiled ``steer``."""
    x, y, _ = position_at(ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"], speed, t)
    return {**ship, "x0": x, "y0": y, "tx": tx, "ty": ty, "t0": t}


def steer_rows_py(batch: list, by_conn: dict, seats: dict, acked: set, index: dict, legs, flags, mark: int,
                  limit: float, t: float, speed: float) -> int:
    """Pure-Python twin of the compiled ``steer_rows``."""
    n = legs.shape[0]
    if legs.ndim != 2 or legs.shape[1] != 5 or flags.shape[0] != n:
        raise ValueError("legs must be (N, 5) and flags (N,)")
    applied = 0
    for conn, message in batch:
        player = by_conn.get(conn.id)
        if player is None:
            continue
        seat = seats[player]
        r = index.get(seat["ship"])
        if r is None:
            continue
        if not 0 <= r < n:
            raise IndexError(f"row {r} out of range")
        x, y = float(message.payload.x), float(message.payload.y)
        x = -limit if x < -limit else limit if x > limit else x
        y = -limit if y < -limit else limit if y > limit else y
        x0, y0, ox, oy, t0 = (float(v) for v in legs[r])
        px, py, _ = position_at(x0, y0, ox, oy, t0, speed, t)
        legs[r] = (px, py, x, y, t)
        flags[r] |= mark
        if message.seq > seat["ack"]:
            seat["ack"] = message.seq
            acked.add(player)
        applied += 1
    return applied


def take_rows_py(ids: list, legs, flags, mark: int) -> tuple[bytes, list]:
    """Pure-Python twin of the compiled ``take_rows``."""
    n = legs.shape[0]
    if legs.ndim != 2 or legs.shape[1] != 5 or flags.shape[0] != n or len(ids) != n:
        raise ValueError("legs must be (N, 5), flags (N,) and ids N long")
    taken = [i for i in range(n) if flags[i] & mark]
    packed = b"".join(_LEG.pack(ids[i], *(float(v) for v in legs[i])) for i in taken)
    for i in taken:
        flags[i] &= ~mark & 0xFF
    return packed, [ids[i] for i in taken]


def sync_rows_py(ids: list, legs, flags, mark: int, ships: dict) -> int:
    """Pure-Python twin of the compiled ``sync_rows``."""
    n = legs.shape[0]
    if legs.ndim != 2 or legs.shape[1] != 5 or flags.shape[0] != n or len(ids) != n:
        raise ValueError("legs must be (N, 5), flags (N,) and ids N long")
    synced = 0
    for i in range(n):
        if flags[i] & mark:
            x0, y0, tx, ty, t0 = (float(v) for v in legs[i])
            ships[ids[i]] = {**ships[ids[i]], "x0": x0, "y0": y0, "tx": tx, "ty": ty, "t0": t0}
            flags[i] &= ~mark & 0xFF
            synced += 1
    return synced


def set_legs_py(legs, rows, ships):
    """Pure-Python twin of the compiled ``set_legs``."""
    if len(ships) != len(rows) or legs.ndim != 2 or legs.shape[1] != 5:
        raise ValueError("legs must be (N, 5), with one ship per row index")
    for r, ship in zip(rows, ships):
        if not 0 <= r < legs.shape[0]:
            raise IndexError(f"row {r} out of range")
        legs[r] = (ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"])


LEG_DTYPE = np.dtype([("id", "<i8"), ("x0", "<f8"), ("y0", "<f8"), ("tx", "<f8"), ("ty", "<f8"), ("t0", "<f8")])
"""One packed leg (``pack_legs``): the ship id (int64) and ``x0, y0, tx, ty, t0`` (float64),
little-endian, 48 bytes."""
_LEG = struct.Struct("<q5d")


def pack_legs_py(ships: list[dict]) -> bytes:
    """Pure-Python twin of the compiled ``pack_legs``."""
    return b"".join(_LEG.pack(s["id"], s["x0"], s["y0"], s["tx"], s["ty"], s["t0"]) for s in ships)


def unpack_legs(data: bytes) -> list[tuple[int, float, float, float, float, float]]:
    """The ``(id, x0, y0, tx, ty, t0)`` of each leg ``pack_legs`` packed in ``data``, in order.
    Raises ``ValueError`` when ``len(data)`` is not a multiple of 48."""
    if len(data) % LEG_DTYPE.itemsize:
        raise ValueError(f"packed legs are {LEG_DTYPE.itemsize} bytes each, not {len(data)} in all")
    return np.frombuffer(data, dtype=LEG_DTYPE).tolist()


_ext = load("_motion")
COMPILED = _ext is not None
_compiled = _ext.positions_at if COMPILED else positions_at_py
_ship_rows = _ext.ship_rows if COMPILED else ship_rows_py
_set_legs = _ext.set_legs if COMPILED else set_legs_py
ship_position = _ext.ship_position if COMPILED else ship_position_py
steer = _ext.steer if COMPILED else steer_py
pack_legs = _ext.pack_legs if COMPILED and sys.byteorder == "little" else pack_legs_py
pack_legs.__doc__ = """``pack_legs(ships) -> bytes``: the leg of each ship dict of the list ``ships`` (its
``id``, an int in int64, and ``x0, y0, tx, ty, t0``, numbers) packed as ``LEG_DTYPE`` records,
48 bytes each, in order (``unpack_legs`` reads them back, bit for bit). Raises ``KeyError``
for a missing key, ``TypeError``/``OverflowError`` for a value that does not fit."""
steer_rows = _ext.steer_rows if COMPILED else steer_rows_py
steer_rows.__doc__ = """``steer_rows(batch, by_conn, seats, acked, index, legs, flags, mark, limit, t, speed) -> int``:
a run of ``move_to`` inputs applied to the legs of a struct of arrays, as ``steer`` would apply
each to a ship dict, in order, bit for bit, with each input's ack recorded in its seat.
``batch``: ``[(connection, message)]``, each connection with an ``id`` and each message a
``seq`` and a ``payload`` with ``x``/``y`` (world units); ``by_conn``: connection id -> player
(inputs of other connections are skipped); ``seats``: player -> seat dict (``"ship"``: a ship
id; ``"ack"``: an int, raised to the input's ``seq`` when larger, the player then added to the
set ``acked``; a player of ``by_conn`` without a seat raises ``KeyError``); ``index``: ship id
-> row of ``legs`` (inputs for a ship not in it are skipped); ``legs``: float64 (N, 5),
C-contiguous, each row ``x0, y0, tx, ty, t0`` (world units, seconds), written in place;
``flags``: uint8 (N,), ``mark`` or-ed into the row of every ship steered. Each target is
clamped to ``[-limit, limit]`` on both axes, then the ship is steered at clock time ``t``
(seconds) at ``speed`` (world units/s); a ship moved twice starts its second leg from its first.
Returns how many inputs were applied. Raises ``ValueError`` for arrays of other shapes,
``IndexError`` for a row outside them (the inputs before it are applied). The twin is
``steer_rows_py``."""
take_rows = _ext.take_rows if COMPILED and sys.byteorder == "little" else take_rows_py
take_rows.__doc__ = """``take_rows(ids, legs, flags, mark) -> (packed, taken)``: the legs of the rows of ``legs``
(float64 (N, 5), ``x0, y0, tx, ty, t0``) whose ``flags`` (uint8 (N,)) have a bit of ``mark``,
with their ids from the list ``ids`` (N ints, in int64), packed as ``pack_legs`` packs them
(``LEG_DTYPE`` records, row order), and the list of those ids; clears ``mark`` in those rows.
Raises ``ValueError`` for arrays or lists of other lengths. The twin is ``take_rows_py``."""
sync_rows = _ext.sync_rows if COMPILED else sync_rows_py
sync_rows.__doc__ = """``sync_rows(ids, legs, flags, mark, ships) -> int``: for every row of ``legs`` (float64
(N, 5)) whose ``flags`` (uint8 (N,)) have a bit of ``mark``, replace ``ships[ids[row]]`` (a
dict) by a copy with ``x0, y0, tx, ty, t0`` from the row (Python floats), and clear ``mark``
there; the dicts replaced are not changed. Returns how many were. Raises ``ValueError`` for
arrays or lists of other lengths, ``KeyError`` for an id not in ``ships`` (the rows before it
are synced). The twin is ``sync_rows_py``."""
steer.__doc__ = """``steer(ship, tx, ty, t, speed) -> dict``: a copy of the dict ``ship`` flying a new
leg from where it is at time ``t`` (``ship_position``, bit-identical) toward ``(tx, ty)``:
``x0, y0`` that position, ``tx, ty`` the target, ``t0 = t`` (world units, seconds; ``speed``
world units per second); every other key as in ``ship``, which is not changed. The move order
of a ship room, one C call per input. Raises ``KeyError`` or ``TypeError`` for a ship without
those numbers."""
ship_position.__doc__ = """``ship_position(ship, speed, t) -> (x, y, moving)``: ``position_at`` of the leg in the
dict ``ship`` (its ``x0, y0, tx, ty, t0``: world units, seconds; ``speed`` world units per
second, ``t`` seconds), bit-identical, without unpacking the dict in Python (a room applies
one order per input). Raises ``KeyError`` or ``TypeError`` for a ship without those numbers."""


def set_legs(legs, rows: list, ships: list) -> None:
    """Write ships' legs into their rows: ``legs[rows[k]] = x0, y0, tx, ty, t0`` of the dict
    ``ships[k]`` (world units, seconds), for every k. ``legs``: float64 (N, 5), C-contiguous,
    written in place. Raises ``ValueError`` when the lists differ in length or ``legs`` is
    not (N, 5), ``IndexError`` for a row outside it, ``KeyError``/``TypeError`` for a ship
    without those numbers (rows before it are already written)."""
    _set_legs(legs, rows, ships)


def ship_rows(legs, ids: list, status: dict, speed: float, t: float, moving_flag: int):
    """Every ship's frame row at time ``t``, in one pass: ``(rows, any_moving)``.

    ``legs``: float64 array of shape (N, 5), C-contiguous, each row a ship's leg
    ``x0, y0, tx, ty, t0`` (world units, seconds; ``Fleet.arrays``); ``ids``: the N ship ids
    (ints) in row order; ``status``: ship id -> int flags (ships not in it: 0); ``speed`` in
    world units per second; ``t`` in seconds. ``rows`` maps each id to ``(x, y, flags)``:
    the position as ``positions_at`` computes it, rounded to float32 (``protocol.quantize``:
    nearest-even), and ``flags`` the ship's status with ``moving_flag`` or-ed in while it
    moves; ``any_moving`` is whether any ship moves. Raises ``ValueError`` when ``legs`` is
    not (N, 5) or ``ids`` has another length.
    """
    return _ship_rows(legs, ids, status, float(speed), float(t), int(moving_flag))


def positions_at(x0, y0, tx, ty, t0, speed: float, t: float):
    """Positions of N ships at time ``t``.

    Arguments: ``x0, y0`` departure points, ``tx, ty`` targets (world units), ``t0`` departure
    times (seconds): float64 arrays of shape (N,); ``speed`` in world units per second; ``t``
    in seconds. Returns ``(x, y, moving)``: float64 (N,), float64 (N,), bool (N,).
    Raises ``ValueError`` when the arrays differ in length.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (x0, y0, tx, ty, t0)]
    n = arrays[0].shape[0]
    out_x = np.empty(n, dtype=np.float64)
    out_y = np.empty(n, dtype=np.float64)
    moving = np.empty(n, dtype=np.uint8)
    _compiled(*arrays, float(speed), float(t), out_x, out_y, moving)
    return out_x, out_y, moving.astype(bool)

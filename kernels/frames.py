"""A ship room's frame, per player per tick: the delta's rows and every client's head.

Every tick a ship room (``rooms.ships``) compares each ship's row ``(x, y, flags)`` with the
previous frame's and packs the changed ones (the delta of ``rooms.ships.sync.FrameSync``), and
builds each seated client's head (the frame envelope up to its ``ack``,
``starhold.protocol.frame_prefix``, plus that ack). Done in Python that is a few hundred
bytecodes per player per tick, and on a busy server each tick runs with cold caches; the
compiled kernel (``_frames.pyx``) does both in C loops over the same dicts. It is used unless
it is missing or ``STARHOLD_NO_EXTENSIONS=1``; the ``*_py`` twins are the reference, and both
give the same results byte for byte (the kernel falls back to the twin for a value it does not
pack itself: anything but exact ``int`` ids, flags and acks in int64 and exact ``float``
coordinates).
"""

from __future__ import annotations

import msgpack

from ._extensions import load

__all__ = ["pack_rows", "pack_rows_py", "frame_heads", "frame_heads_py", "COMPILED"]

_row_packer = msgpack.Packer(use_bin_type=True, use_single_float=True)
_ack_packer = msgpack.Packer()


def pack_rows_py(rows: dict, prev: dict | None = None) -> tuple[bytes, int, list]:
    """Pure-Python twin of ``pack_rows``."""
    if prev is None:
        changed = [[i, *r] for i, r in rows.items()]
        removed = []
    else:
        changed = [[i, *r] for i, r in rows.items() if prev.get(i) != r]
        removed = [i for i in prev if i not in rows]
    return _row_packer.pack(changed), len(changed), removed


def frame_heads_py(prefix: bytes, conns: list, by_conn: dict, acks: dict, welcome: dict, durable: int,
                   keyframe: set) -> tuple[list, list, set]:
    """Pure-Python twin of ``frame_heads``."""
    heads, key_heads, waiting = [], [], set()
    packb = _ack_packer.pack
    for conn in conns:
        conn_id = conn.id
        player = by_conn.get(conn_id)
        if player is None:
            continue
        joined = welcome.get(conn_id)
        if joined is not None:
            if joined > durable:  # its welcome is not released yet: nothing before it
                waiting.add(conn_id)
                continue
            del welcome[conn_id]
        head = prefix + packb(acks.get(player, 0))
        (key_heads if conn_id in keyframe else heads).append((conn, head))
    return heads, key_heads, waiting


_compiled = load("_frames")
COMPILED = _compiled is not None
"""Whether the compiled kernel is in use (else the ``*_py`` twins)."""


def pack_rows(rows: dict, prev: dict | None = None) -> tuple[bytes, int, list]:
    """The frame rows of ``rows`` (ship id -> ``(x, y, flags)``: x and y floats already
    quantized to float32, flags an int) that differ from ``prev`` (the last frame's rows; all
    of them when ``prev`` is None), packed as the msgpack array ``[[id, x, y, flags], ...]``
    in ``rows``' order with x and y as float32 (``msgpack.Packer(use_bin_type=True,
    use_single_float=True)``); returns ``(packed bytes, number of rows packed, [ids of prev
    missing from rows], in prev's order)``. A row differs when ``prev`` has no row for its id
    or ``prev[id] != row``. Cost O(len(rows) + len(prev)). Raises what msgpack raises for a
    value it cannot pack."""
    if _compiled is not None:
        result = _compiled.pack_rows(rows, prev)
        if result is not None:
            return result
    return pack_rows_py(rows, prev)


def frame_heads(prefix: bytes, conns: list, by_conn: dict, acks: dict, welcome: dict, durable: int,
                keyframe: set) -> tuple[list, list, set]:
    """Each seated connection's frame head for one tick: ``prefix`` (a
    ``starhold.protocol.frame_prefix``) + the msgpack of its player's ack.

    ``conns``: the room's connections (objects with an ``id``), in send order; ``by_conn``:
    connection id -> player (connections not in it are skipped); ``acks``: player -> the ack to
    send (0 when absent); ``welcome``: connection id -> the commit mark its welcome waits for
    (a connection whose mark is above ``durable`` is skipped and returned in ``waiting``; one
    at or below it is removed from ``welcome`` and served: **``welcome`` is changed**);
    ``keyframe``: connection ids that get the keyframe instead of the delta. Returns
    ``(heads, key_heads, waiting)``: ``[(conn, head bytes)]`` for the delta and for the
    keyframe, in ``conns``' order, and the set of waiting connection ids."""
    if _compiled is not None:
        result = _compiled.frame_heads(prefix, conns, by_conn, acks, welcome, durable, keyframe)
        if result is not None:
            return result
    return frame_heads_py(prefix, conns, by_conn, acks, welcome, durable, keyframe)

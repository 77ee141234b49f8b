"""The frame kernel (``starhold.kernels.frames``): the compiled functions give the twins' bytes
and results exactly, fall back to them for values they do not pack, and decode as the frame's
rows and heads."""

import os
import random
import struct

import msgpack
import pytest

from starhold.kernels import frames

compiled = frames._compiled  # None when the twins are forced (STARHOLD_NO_EXTENSIONS=1)
needs_compiled = pytest.mark.skipif(compiled is None, reason="twin forced by STARHOLD_NO_EXTENSIONS=1")

# Every msgpack integer form, both signs (fixint, 8/16/32/64 bits).
EDGE_INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1,
             -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_compiled_frames_kernel_is_imported_in_ci():
    if os.environ.get("STARHOLD_NO_EXTENSIONS") == "1":
        pytest.skip("twin forced by STARHOLD_NO_EXTENSIONS=1")
    assert frames.COMPILED


@needs_compiled
def test_pack_rows_gives_the_twin_s_bytes_changed_rows_and_removed_ids():
    rng = random.Random(3)
    for trial in range(600):
        n = rng.choice([0, 1, 15, 16, 17, 100, 400])
        ids = rng.sample(range(-2**40, 2**40), n) if trial % 3 == 0 else list(range(1, n + 1))
        rows = {i: (_f32(rng.uniform(-1e4, 1e4)), _f32(rng.uniform(-1e4, 1e4)), rng.choice(EDGE_INTS)) for i in ids}
        prev = None
        if trial % 4:
            kept = list(rows.items())[: n // 2]
            prev = {i: r if rng.random() < 0.5 else (r[0], _f32(r[1] + 1.0), r[2]) for i, r in kept}
            prev.update({10**12 + k: (0.0, 0.0, 0) for k in range(rng.randint(0, 3))})  # gone since
        assert compiled.pack_rows(rows, prev) == frames.pack_rows_py(rows, prev) == frames.pack_rows(rows, prev)


def test_pack_rows_packs_the_changed_rows_as_float32_in_order():
    rows = {7: (1.5, -2.25, 3), 2: (0.0, 0.0, 0), 9: (10.0, 20.0, 1)}
    prev = {7: (1.5, -2.25, 3), 2: (0.0, 1.0, 0), 4: (5.0, 5.0, 0)}
    packed, count, removed = frames.pack_rows(rows, prev)
    assert (count, removed) == (2, [4])
    assert msgpack.unpackb(packed) == [[2, 0.0, 0.0, 0], [9, 10.0, 20.0, 1]]
    assert packed[1:3] == b"\x94\x02" and packed[3] == 0xCA  # [id, float32 ...]
    packed, count, removed = frames.pack_rows(rows)
    assert (count, removed) == (3, []) and len(msgpack.unpackb(packed)) == 3
    assert frames.pack_rows({}, prev) == (b"\x90", 0, [7, 2, 4])


@needs_compiled
def test_pack_rows_leaves_other_values_to_the_twin():
    # A bool is an int to Python but packs as true/false; a 4-tuple, an int beyond int64, a
    # string id, an int coordinate, a list row: the kernel declines and the twin packs them.
    for rows in ({1: (1.0, 2.0, True)}, {1: (1.0, 2.0, 3, 4)}, {1: (1.0, 2.0, 2**64 - 1)}, {"a": (1.0, 2.0, 0)},
                 {1: (1, 2.0, 0)}, {1: [1.0, 2.0, 0]}):
        assert compiled.pack_rows(rows, None) is None
        assert frames.pack_rows(rows) == frames.pack_rows_py(rows)
    assert msgpack.unpackb(frames.pack_rows({1: (1.0, 2.0, True)})[0]) == [[1, 1.0, 2.0, True]]


class _Conn:
    __slots__ = ("id",)

    def __init__(self, conn_id: str):
        self.id = conn_id


@needs_compiled
def test_frame_heads_give_the_twin_s_heads_and_update_welcome_alike():
    rng = random.Random(5)
    for _ in range(600):
        conns = [_Conn(f"c{i}") for i in range(rng.randint(0, 60))]
        by_conn = {c.id: f"p{c.id}" for c in conns if rng.random() < 0.9}
        acks = {p: rng.choice(EDGE_INTS) for p in by_conn.values() if rng.random() < 0.9}
        welcome = {c.id: rng.randint(0, 10) for c in conns if rng.random() < 0.2}
        keyframe = {c.id for c in conns if rng.random() < 0.2}
        w1, w2 = dict(welcome), dict(welcome)
        got = compiled.frame_heads(b"\x93PRE", conns, by_conn, acks, w1, 5, keyframe)
        assert got == frames.frame_heads_py(b"\x93PRE", conns, by_conn, acks, w2, 5, keyframe)
        assert w1 == w2


def test_frame_heads_are_prefix_and_ack_for_seated_released_connections():
    conns = [_Conn(c) for c in ("a", "b", "c", "d", "e")]
    by_conn = {"a": "pa", "b": "pb", "c": "pc", "e": "pe"}  # d is not seated
    acks = {"pa": 300, "pb": 7}  # pc has none yet: 0
    welcome = {"b": 4, "c": 9}  # b's welcome is durable at 5, c's is not
    heads, key_heads, waiting = frames.frame_heads(b"P", conns, by_conn, acks, welcome, 5, {"e"})
    assert heads == [(conns[0], b"P" + msgpack.packb(300)), (conns[1], b"P\x07")]
    assert key_heads == [(conns[4], b"P\x00")]
    assert waiting == {"c"} and welcome == {"c": 9}


@needs_compiled
def test_frame_heads_leave_other_acks_to_the_twin():
    conns = [_Conn("a"), _Conn("b")]
    for ack in (True, 2**64 - 1, 1.5):
        welcome = {"a": 1}
        assert compiled.frame_heads(b"P", conns, {"a": "pa", "b": "pb"}, {"pb": ack}, welcome, 5, set()) is None
        assert welcome == {}  # served before the kernel declined; the twin serves it as released
        heads, _, _ = frames.frame_heads(b"P", conns, {"a": "pa", "b": "pb"}, {"pb": ack}, {"a": 1}, 5, set())
        assert heads[1] == (conns[1], b"P" + msgpack.packb(ack))

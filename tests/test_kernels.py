"""Kernels: the compiled motion kernel is the one imported and matches its twin bit for bit."""

import os

import numpy as np
import pytest

from starhold.kernels import motion


def test_compiled_kernel_is_imported_in_ci():
    if os.environ.get("STARHOLD_NO_EXTENSIONS") == "1":
        pytest.skip("twin forced by STARHOLD_NO_EXTENSIONS=1")
    assert motion.COMPILED


def test_compiled_and_twin_agree_bit_for_bit():
    rng = np.random.default_rng(7)
    n = 500
    x0, y0, tx, ty = (rng.uniform(-1000, 1000, n) for _ in range(4))
    tx[:10], ty[:10] = x0[:10], y0[:10]  # zero-length trips
    t0 = rng.uniform(0, 50, n)
    x, y, moving = motion.positions_at(x0, y0, tx, ty, t0, 50.0, 30.0)
    ox, oy, om = np.empty(n), np.empty(n), np.empty(n, dtype=np.uint8)
    motion.positions_at_py(x0, y0, tx, ty, t0, 50.0, 30.0, ox, oy, om)
    assert np.array_equal(x, ox) and np.array_equal(y, oy) and np.array_equal(moving, om.astype(bool))
    assert not moving[:10].any()


def test_positions_follow_the_closed_form():
    x, y, moving = motion.positions_at([0.0], [0.0], [300.0], [400.0], [10.0], 50.0, 12.0)
    assert (x[0], y[0], moving[0]) == (60.0, 80.0, True)
    x, y, moving = motion.positions_at([0.0], [0.0], [300.0], [400.0], [10.0], 50.0, 20.0)
    assert (x[0], y[0], moving[0]) == (300.0, 400.0, False)
    x, _, _ = motion.positions_at([5.0], [0.0], [300.0], [400.0], [10.0], 50.0, 0.0)  # before departure
    assert x[0] == 5.0
    with pytest.raises(ValueError):
        motion.positions_at([0.0, 1.0], [0.0], [1.0], [1.0], [0.0], 1.0, 1.0)


def test_scalar_position_matches_the_kernels_bit_for_bit():
    """``position_at`` (one ship, plain floats: the room's per-order path) gives the kernels'
    results exactly, arrived or not, including a zero-length leg and a start in the future."""
    rng = np.random.default_rng(7)
    n = 2000
    x0, y0, tx, ty = (rng.uniform(-600, 600, n) for _ in range(4))
    tx[:10], ty[:10] = x0[:10], y0[:10]  # already there
    t0 = rng.uniform(1_800_000_000.0, 1_800_000_030.0, n)
    t = 1_800_000_012.345
    x, y, moving = motion.positions_at(x0, y0, tx, ty, t0, 50.0, t)
    assert 0 < moving.sum() < n
    for i in range(n):
        got = motion.position_at(float(x0[i]), float(y0[i]), float(tx[i]), float(ty[i]), float(t0[i]), 50.0, t)
        assert got == (x[i], y[i], bool(moving[i]))
        assert type(got[0]) is float and type(got[2]) is bool


def _legs(rng, n):
    legs = np.empty((n, 5))
    legs[:, :4] = rng.uniform(-5000, 5000, (n, 4))
    legs[:, 4] = rng.uniform(0, 100, n)
    legs[: n // 5, 2:4] = legs[: n // 5, 0:2]  # at rest from the start
    return legs


def test_ship_rows_are_the_quantized_positions_and_flags_of_the_kernel_and_its_twin():
    """``ship_rows`` = ``positions_at`` rounded to float32 (``protocol.quantize``), each ship's
    status with the moving flag or-ed in while it moves; compiled and twin alike."""
    from starhold.rooms import protocol

    rng = np.random.default_rng(11)
    for n in (0, 1, 7, 300):
        legs = _legs(rng, n)
        ids = [int(i) for i in rng.permutation(10 * n + 1)[:n]]
        status = {i: int(rng.integers(0, 8)) for i in ids if rng.random() < 0.7}
        t = 60.0
        rows, any_moving = motion.ship_rows(legs, ids, status, protocol.SHIP_SPEED, t, protocol.SHIP_MOVING)
        assert (rows, any_moving) == motion.ship_rows_py(legs, ids, status, protocol.SHIP_SPEED, t,
                                                         protocol.SHIP_MOVING)
        assert list(rows) == ids
        for i, ship_id in enumerate(ids):
            x, y, moving = motion.position_at(*legs[i], protocol.SHIP_SPEED, t)
            flags = status.get(ship_id, 0) | (protocol.SHIP_MOVING if moving else 0)
            assert rows[ship_id] == (protocol.quantize(x), protocol.quantize(y), flags)
        assert any_moving == any(r[2] & protocol.SHIP_MOVING for r in rows.values())
    with pytest.raises(ValueError):
        motion.ship_rows(np.zeros((2, 5)), [1], {}, 1.0, 0.0, 2)
    with pytest.raises(ValueError):
        motion.ship_rows(np.zeros((2, 4)), [1, 2], {}, 1.0, 0.0, 2)


@pytest.mark.parametrize("set_legs", [motion.set_legs, motion.set_legs_py], ids=["kernel", "twin"])
def test_set_legs_writes_each_ship_s_leg_into_its_row(set_legs):
    legs = np.zeros((4, 5))
    ships = [{"x0": 1.5, "y0": -2.0, "tx": 3, "ty": 4.25, "t0": 10.0, "name": "a"},
             {"x0": 0.1, "y0": 0.2, "tx": 0.3, "ty": 0.4, "t0": 0.5}]
    set_legs(legs, [3, 1], ships)
    assert legs.tolist() == [[0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5], [0.0] * 5, [1.5, -2.0, 3.0, 4.25, 10.0]]
    with pytest.raises(ValueError):
        set_legs(legs, [0], ships)
    with pytest.raises(IndexError):
        set_legs(legs, [4], ships[:1])
    with pytest.raises(KeyError):
        set_legs(legs, [0], [{"x0": 1.0}])


@pytest.mark.parametrize("ship_position", [motion.ship_position, motion.ship_position_py], ids=["kernel", "twin"])
def test_ship_position_is_position_at_of_the_ship_s_leg(ship_position):
    rng = np.random.default_rng(5)
    for x0, y0, tx, ty, t0 in _legs(rng, 200):
        ship = {"id": 1, "x0": float(x0), "y0": float(y0), "tx": float(tx), "ty": float(ty), "t0": float(t0)}
        for t in (0.0, float(t0), 55.5, 1e4):
            assert ship_position(ship, 50.0, t) == motion.position_at(*map(float, (x0, y0, tx, ty, t0)), 50.0, t)
    with pytest.raises(KeyError):
        ship_position({"x0": 0.0}, 50.0, 1.0)


@pytest.mark.parametrize("steer", [motion.steer, motion.steer_py], ids=["kernel", "twin"])
def test_steer_starts_a_new_leg_where_the_ship_is_on_a_copy(steer):
    rng = np.random.default_rng(7)
    for x0, y0, tx, ty, t0 in _legs(rng, 200):
        ship = {"id": 3, "name": "Vega", "x0": float(x0), "y0": float(y0), "tx": float(tx), "ty": float(ty),
                "t0": float(t0), "hp": 80}
        before = dict(ship)
        for t in (0.0, float(t0), 55.5, 1e4):
            x, y, _ = motion.position_at(*map(float, (x0, y0, tx, ty, t0)), 50.0, t)
            moved = steer(ship, -12.5, 400.0, t, 50.0)
            assert moved == {**before, "x0": x, "y0": y, "tx": -12.5, "ty": 400.0, "t0": t}
            assert moved is not ship and ship == before
    with pytest.raises(KeyError):
        steer({"x0": 0.0}, 1.0, 1.0, 1.0, 50.0)
    with pytest.raises(TypeError):
        steer({"x0": "a", "y0": 0.0, "tx": 0.0, "ty": 0.0, "t0": 0.0}, 1.0, 1.0, 1.0, 50.0)


class _Conn:
    def __init__(self, conn_id):
        self.id = conn_id


class _Message:
    def __init__(self, seq, x, y):
        self.seq = seq
        self.payload = type("P", (), {"x": x, "y": y})()


_KERNELS = [(motion.steer_rows, motion.take_rows, motion.sync_rows),
            (motion.steer_rows_py, motion.take_rows_py, motion.sync_rows_py)]


@pytest.mark.parametrize("steer_rows,take_rows,sync_rows", _KERNELS, ids=["kernel", "twin"])
def test_steer_rows_applies_a_run_as_steer_would_one_by_one(steer_rows, take_rows, sync_rows):
    ships = {i: {"id": i, "name": f"s{i}", "x0": 0.0, "y0": 0.0, "tx": 10.0 * i, "ty": 0.0, "t0": 0.0} for i in (1, 2, 3)}
    seats = {"pa": {"ship": 1, "ack": 0}, "pb": {"ship": 2, "ack": 9}, "pc": {"ship": 9, "ack": 0}}  # pc's ship is gone
    by_conn = {"a": "pa", "b": "pb", "c": "pc"}
    ids = [3, 1, 2]  # rows in another order than the ids
    legs = np.array([[ships[i][k] for k in ("x0", "y0", "tx", "ty", "t0")] for i in ids])
    index = {ship_id: row for row, ship_id in enumerate(ids)}
    flags = np.zeros(3, dtype=np.uint8)
    acked = set()
    batch = [(_Conn("a"), _Message(5, 5000.0, -3.0)), (_Conn("x"), _Message(6, 1.0, 1.0)),  # x: not seated
             (_Conn("c"), _Message(7, 1.0, 1.0)), (_Conn("b"), _Message(8, 4, -9000)),  # b: seq 8 below its ack
             (_Conn("a"), _Message(9, 1.0, 2.0))]  # a's ship again: from its first new leg
    assert steer_rows(batch, by_conn, seats, acked, index, legs, flags, 6, 1000.0, 0.1, 50.0) == 3
    first = motion.steer(ships[1], 1000.0, -3.0, 0.1, 50.0)  # clamped to the limit
    want = {1: motion.steer(first, 1.0, 2.0, 0.1, 50.0), 2: motion.steer(ships[2], 4.0, -1000.0, 0.1, 50.0), 3: ships[3]}
    assert legs.tolist() == [[want[i][k] for k in ("x0", "y0", "tx", "ty", "t0")] for i in ids]  # bit for bit
    assert flags.tolist() == [0, 6, 6] and acked == {"pa"}
    assert [seat["ack"] for seat in seats.values()] == [9, 9, 0]
    packed, taken = take_rows(ids, legs, flags, 2)
    assert taken == [1, 2] and packed == motion.pack_legs_py([want[1], want[2]]) and flags.tolist() == [0, 4, 4]
    assert take_rows(ids, legs, flags, 2) == (b"", [])
    before = {i: ships[i] for i in ships}
    assert sync_rows(ids, legs, flags, 4, ships) == 2
    assert ships == want and flags.tolist() == [0, 0, 0]
    assert before[1] == {"id": 1, "name": "s1", "x0": 0.0, "y0": 0.0, "tx": 10.0, "ty": 0.0, "t0": 0.0}  # new dicts
    with pytest.raises(KeyError):  # a seated connection whose player has no seat
        steer_rows([(_Conn("a"), _Message(1, 0.0, 0.0))], by_conn, {}, acked, index, legs, flags, 1, 1000.0, 0.1, 50.0)
    with pytest.raises(IndexError):
        steer_rows(batch[:1], by_conn, seats, acked, {1: 3}, legs, flags, 1, 1000.0, 0.1, 50.0)
    with pytest.raises(ValueError):
        steer_rows(batch, by_conn, seats, acked, index, legs, np.zeros(2, dtype=np.uint8), 1, 1000.0, 0.1, 50.0)
    with pytest.raises(ValueError):
        take_rows(ids[:2], legs, flags, 1)
    with pytest.raises(KeyError):
        flags[0] = 4
        sync_rows(ids, legs, flags, 4, {})
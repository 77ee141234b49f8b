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

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

import numpy as np

from ._extensions import load

__all__ = ["positions_at", "positions_at_py", "position_at", "COMPILED"]


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


_ext = load("_motion")
COMPILED = _ext is not None
_compiled = _ext.positions_at if COMPILED else positions_at_py


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

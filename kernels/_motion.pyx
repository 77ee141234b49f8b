# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Compiled closed-form ship motion (the twin is ``starhold.kernels.motion.positions_at_py``)."""

from libc.math cimport sqrt


def positions_at(const double[::1] x0, const double[::1] y0, const double[::1] tx,
                 const double[::1] ty, const double[::1] t0, double speed, double t,
                 double[::1] out_x, double[::1] out_y, unsigned char[::1] moving):
    """See ``starhold.kernels.motion.positions_at``."""
    cdef Py_ssize_t i, n = x0.shape[0]
    cdef double dx, dy, dist, travel, f
    if not (y0.shape[0] == tx.shape[0] == ty.shape[0] == t0.shape[0] == n
            and out_x.shape[0] == out_y.shape[0] == moving.shape[0] == n):
        raise ValueError("all arrays must have the same length")
    with nogil:
        for i in range(n):
            dx = tx[i] - x0[i]
            dy = ty[i] - y0[i]
            dist = sqrt(dx * dx + dy * dy)
            travel = speed * (t - t0[i])
            if travel < 0.0:
                travel = 0.0
            if travel >= dist:
                out_x[i] = tx[i]
                out_y[i] = ty[i]
                moving[i] = 0
            else:
                f = travel / dist
                out_x[i] = x0[i] + dx * f
                out_y[i] = y0[i] + dy * f
                moving[i] = 1

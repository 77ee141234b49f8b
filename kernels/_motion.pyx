# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Compiled closed-form ship motion (the twin is ``starhold.kernels.motion.positions_at_py``)."""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
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


def ship_rows(const double[:, ::1] legs, list ids, dict status, double speed, double t, long moving_flag):
    """See ``starhold.kernels.motion.ship_rows``."""
    cdef Py_ssize_t i, n = legs.shape[0]
    cdef double dx, dy, dist, travel, f, x, y
    cdef bint moving, any_moving = False
    cdef long flags
    cdef dict rows = {}
    cdef object ship_id, st
    if legs.shape[1] != 5 or len(ids) != n:
        raise ValueError("legs must be (N, 5) with one id per row")
    for i in range(n):
        dx = legs[i, 2] - legs[i, 0]
        dy = legs[i, 3] - legs[i, 1]
        dist = sqrt(dx * dx + dy * dy)
        travel = speed * (t - legs[i, 4])
        if travel < 0.0:
            travel = 0.0
        if travel >= dist:
            x = legs[i, 2]
            y = legs[i, 3]
            moving = False
        else:
            f = travel / dist
            x = legs[i, 0] + dx * f
            y = legs[i, 1] + dy * f
            moving = True
        ship_id = ids[i]
        st = status.get(ship_id)
        flags = 0 if st is None else <long>st
        if moving:
            flags |= moving_flag
            any_moving = True
        rows[ship_id] = (<double>(<float>x), <double>(<float>y), flags)
    return rows, any_moving


def set_legs(double[:, ::1] legs, list rows, list ships):
    """See ``starhold.kernels.motion.set_legs``."""
    cdef Py_ssize_t k, r, n = len(rows)
    cdef dict ship
    if len(ships) != n or legs.shape[1] != 5:
        raise ValueError("legs must be (N, 5), with one ship per row index")
    for k in range(n):
        r = rows[k]
        if r < 0 or r >= legs.shape[0]:
            raise IndexError(f"row {r} out of range")
        ship = ships[k]
        legs[r, 0] = ship["x0"]
        legs[r, 1] = ship["y0"]
        legs[r, 2] = ship["tx"]
        legs[r, 3] = ship["ty"]
        legs[r, 4] = ship["t0"]


def ship_position(dict ship, double speed, double t):
    """See ``starhold.kernels.motion.ship_position``."""
    cdef double x0 = ship["x0"], y0 = ship["y0"], tx = ship["tx"], ty = ship["ty"], t0 = ship["t0"]
    cdef double dx = tx - x0, dy = ty - y0, dist, travel, f
    dist = sqrt(dx * dx + dy * dy)
    travel = speed * (t - t0)
    if travel < 0.0:
        travel = 0.0
    if travel >= dist:
        return tx, ty, False
    f = travel / dist
    return x0 + dx * f, y0 + dy * f, True


cpdef dict steer(dict ship, double tx, double ty, double t, double speed):
    """See ``starhold.kernels.motion.steer``."""
    cdef double x0 = ship["x0"], y0 = ship["y0"], ox = ship["tx"], oy = ship["ty"], t0 = ship["t0"]
    cdef double dx = ox - x0, dy = oy - y0, dist, travel, f, x, y
    dist = sqrt(dx * dx + dy * dy)
    travel = speed * (t - t0)
    if travel < 0.0:
        travel = 0.0
    if travel >= dist:
        x = ox
        y = oy
    else:
        f = travel / dist
        x = x0 + dx * f
        y = y0 + dy * f
    cdef dict out = ship.copy()
    out["x0"] = x
    out["y0"] = y
    out["tx"] = tx
    out["ty"] = ty
    out["t0"] = t
    return out


cdef packed struct _Leg:
    long long id
    double x0, y0, tx, ty, t0


def pack_legs(list ships):
    """See ``starhold.kernels.motion.pack_legs`` (native byte order: the wrapper uses this on
    little-endian machines only)."""
    cdef Py_ssize_t i, n = len(ships)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n * sizeof(_Leg))
    cdef _Leg* legs = <_Leg*>PyBytes_AS_STRING(out)
    cdef dict ship
    for i in range(n):
        ship = ships[i]
        legs[i].id = ship["id"]
        legs[i].x0 = ship["x0"]
        legs[i].y0 = ship["y0"]
        legs[i].tx = ship["tx"]
        legs[i].ty = ship["ty"]
        legs[i].t0 = ship["t0"]
    return out


def steer_rows(list batch, dict by_conn, dict seats, set acked, dict index, double[:, ::1] legs,
               unsigned char[::1] flags, unsigned char mark, double limit, double t, double speed):
    """See ``starhold.kernels.motion.steer_rows``."""
    cdef Py_ssize_t r, n = legs.shape[0], applied = 0
    cdef double x, y, x0, y0, ox, oy, dx, dy, dist, travel, f
    cdef object conn, message, player, seat, row, payload, seq
    if legs.shape[1] != 5 or flags.shape[0] != n:
        raise ValueError("legs must be (N, 5) and flags (N,)")
    for conn, message in batch:
        player = by_conn.get(conn.id)
        if player is None:
            continue
        seat = seats[player]
        row = index.get(seat["ship"])
        if row is None:
            continue
        r = row
        if r < 0 or r >= n:
            raise IndexError(f"row {r} out of range")
        payload = message.payload
        x = payload.x
        y = payload.y
        x = -limit if x < -limit else limit if x > limit else x
        y = -limit if y < -limit else limit if y > limit else y
        x0 = legs[r, 0]
        y0 = legs[r, 1]
        ox = legs[r, 2]
        oy = legs[r, 3]
        dx = ox - x0
        dy = oy - y0
        dist = sqrt(dx * dx + dy * dy)
        travel = speed * (t - legs[r, 4])
        if travel < 0.0:
            travel = 0.0
        if travel >= dist:
            legs[r, 0] = ox
            legs[r, 1] = oy
        else:
            f = travel / dist
            legs[r, 0] = x0 + dx * f
            legs[r, 1] = y0 + dy * f
        legs[r, 2] = x
        legs[r, 3] = y
        legs[r, 4] = t
        flags[r] |= mark
        seq = message.seq
        if seq > seat["ack"]:
            seat["ack"] = seq
            acked.add(player)
        applied += 1
    return applied


def take_rows(list ids, const double[:, ::1] legs, unsigned char[::1] flags, unsigned char mark):
    """See ``starhold.kernels.motion.take_rows`` (native byte order: the wrapper uses this on
    little-endian machines only)."""
    cdef Py_ssize_t i, k = 0, n = legs.shape[0]
    if legs.shape[1] != 5 or flags.shape[0] != n or len(ids) != n:
        raise ValueError("legs must be (N, 5), flags (N,) and ids N long")
    for i in range(n):
        if flags[i] & mark:
            k += 1
    cdef bytes out = PyBytes_FromStringAndSize(NULL, k * sizeof(_Leg))
    cdef _Leg* packed = <_Leg*>PyBytes_AS_STRING(out)
    cdef list taken = []
    k = 0
    for i in range(n):
        if flags[i] & mark:
            packed[k].id = ids[i]
            packed[k].x0 = legs[i, 0]
            packed[k].y0 = legs[i, 1]
            packed[k].tx = legs[i, 2]
            packed[k].ty = legs[i, 3]
            packed[k].t0 = legs[i, 4]
            flags[i] &= ~mark
            taken.append(ids[i])
            k += 1
    return out, taken


def sync_rows(list ids, const double[:, ::1] legs, unsigned char[::1] flags, unsigned char mark, dict ships):
    """See ``starhold.kernels.motion.sync_rows``."""
    cdef Py_ssize_t i, k = 0, n = legs.shape[0]
    cdef dict ship
    cdef object ship_id
    if legs.shape[1] != 5 or flags.shape[0] != n or len(ids) != n:
        raise ValueError("legs must be (N, 5), flags (N,) and ids N long")
    for i in range(n):
        if flags[i] & mark:
            ship_id = ids[i]
            ship = (<dict>ships[ship_id]).copy()
            ship["x0"] = legs[i, 0]
            ship["y0"] = legs[i, 1]
            ship["tx"] = legs[i, 2]
            ship["ty"] = legs[i, 3]
            ship["t0"] = legs[i, 4]
            ships[ship_id] = ship
            flags[i] &= ~mark
            k += 1
    return k

# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, language_level=3
"""Compiled combat tick (specs/combat.md); the readable twin is
``starhold.kernels.combat.combat_tick_py`` and both agree bit for bit.

O(N) per tick for bounded density. Phase 1 uses the uniform grid of spec §5: the live ships
are counting-sorted into cells of size G >= Rmax * (1 + 2**-20) (G doubled while the cell count
exceeds 2 * live + 64), CSR cell lists; in-range candidates come from the 3x3 cells around a
ship, narrowed to the cells its weapon range can reach; the sensor fallback scans the 3x3
cells, then rings 2..k of cells (k from the spec's formula), stopping once every ship of the
next ring is provably farther than the best found. Every candidate then goes through the exact
predicate (d computed as in spec §2) and the exact tie rules. A squared-distance prefilter skips
the sqrt only when ``s2 > (r*r) * (1 + 2**-40)``, which implies the rounded ``sqrt(s2) > r``:
results are unchanged (the proofs are in the comments below).

Only + - * / sqrt floor are used on doubles, each written with explicit parentheses in the
spec's order; the module must be compiled with ``-ffp-contract=off -fno-fast-math``
(setup.py's BIT_EXACT flags). The hot loops run without the GIL. Scratch memory is one block
kept between calls (behind a lock; a concurrent caller allocates its own).
"""

from libc.math cimport sqrt, floor, fabs
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

import threading

import numpy as np

# §8 constants, spelled as the exact binary64 values (C99 hex floats).
cdef extern from *:
    """
    #define SH_DT       (0x1.999999999999ap-4)
    #define SH_C02      (0x1.999999999999ap-3)
    #define SH_C03      (0x1.3333333333333p-2)
    #define SH_C04      (0x1.999999999999ap-2)
    #define SH_C05      (0x1.0000000000000p-1)
    #define SH_C066     (0x1.51eb851eb851fp-1)
    #define SH_C07      (0x1.6666666666666p-1)
    #define SH_C08      (0x1.999999999999ap-1)
    #define SH_C1000    (0x1.f400000000000p+9)
    #define SH_C4       (0x1.0000000000000p+2)
    #define SH_PI       (0x1.921fb54442d18p+1)
    #define SH_PIO2     (0x1.921fb54442d18p+0)
    #define SH_PIO4     (0x1.921fb54442d18p-1)
    #define SH_MB       (0x1.1a62633145c07p-54)
    #define SH_HALF_MB  (0x1.1a62633145c07p-55)
    #define SH_MB2      (0x1.1a62633145c07p-53)
    #define SH_P0       (-0x1.c007fa1f72594p-1)
    #define SH_P1       (-0x1.028545b6b807ap+4)
    #define SH_P2       (-0x1.2c08c36880273p+6)
    #define SH_P3       (-0x1.eb8bf2d05ba25p+6)
    #define SH_P4       (-0x1.03669fd28ec8ep+6)
    #define SH_Q0       (0x1.8dbc45b14603cp+4)
    #define SH_Q1       (0x1.4a0dd43b8fa25p+7)
    #define SH_Q2       (0x1.b0e18d2e2be3bp+8)
    #define SH_Q3       (0x1.e563f13b049eap+8)
    #define SH_Q4       (0x1.8519efbbd62ecp+7)
    #define SH_TWO_M53  (0x1.0000000000000p-53)
    /* grid margins (spec §5): cell size >= Rmax * (1 + 2**-20); we use (1 + 2**-18) */
    #define SH_G_MARGIN   (0x1.00004p+0)
    #define SH_K_MARGIN   (0x1.00001p+0)      /* 1 + 2**-20 */
    #define SH_RING_SHRINK (0x1.ffffep-1)     /* 1 - 2**-20 */
    #define SH_TWO_M28    (0x1.0p-28)
    #define SH_TWO_M20    (0x1.0p-20)
    #define SH_TWO_M900   (0x1.0p-900)
    #define SH_SQ_MARGIN  (0x1.0000000001p+0)   /* 1 + 2**-40 */
    #define SH_INF        (__builtin_inf())
    """
    const double SH_DT, SH_C02, SH_C03, SH_C04, SH_C05, SH_C066, SH_C07, SH_C08, SH_C1000, SH_C4
    const double SH_PI, SH_PIO2, SH_PIO4, SH_MB, SH_HALF_MB, SH_MB2
    const double SH_P0, SH_P1, SH_P2, SH_P3, SH_P4, SH_Q0, SH_Q1, SH_Q2, SH_Q3, SH_Q4
    const double SH_TWO_M53, SH_G_MARGIN, SH_K_MARGIN, SH_RING_SHRINK, SH_TWO_M28, SH_TWO_M900
    const double SH_TWO_M20
    const double SH_SQ_MARGIN, SH_INF


def _constants():
    """The §8 constants as compiled into this module (checked against the spec's hex by the tests)."""
    return {"0.1": SH_DT, "0.2": SH_C02, "0.3": SH_C03, "0.4": SH_C04, "0.5": SH_C05,
            "0.66": SH_C066, "0.7": SH_C07, "0.8": SH_C08, "1000.0": SH_C1000, "4.0": SH_C4,
            "PI": SH_PI, "PIO2": SH_PIO2, "PIO4": SH_PIO4, "MB": SH_MB, "HALF_MB": SH_HALF_MB,
            "MB2": SH_MB2, "P0": SH_P0, "P1": SH_P1, "P2": SH_P2, "P3": SH_P3, "P4": SH_P4,
            "Q0": SH_Q0, "Q1": SH_Q1, "Q2": SH_Q2, "Q3": SH_Q3, "Q4": SH_Q4, "2**-53": SH_TWO_M53}


# --- §6 splitmix64 / variance (uint64 arithmetic wraps modulo 2**64) -------------------------

cdef inline uint64_t c_splitmix64(uint64_t z) noexcept nogil:
    z = z + <uint64_t>0x9E3779B97F4A7C15ULL
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double c_variance_from_base(uint64_t base, uint64_t ship_id) noexcept nogil:
    cdef uint64_t h = c_splitmix64(base ^ ship_id)
    cdef double u = (<double>(h >> 11)) * SH_TWO_M53
    return SH_C08 + (SH_C04 * u)


# --- §7 det_atan2 -------------------------------------------------------------------------------

cdef inline double c_xatan(double t) noexcept nogil:
    cdef double z = t * t
    cdef double p = ((((((((SH_P0 * z) + SH_P1) * z) + SH_P2) * z) + SH_P3) * z) + SH_P4)
    cdef double q = (((((((((z + SH_Q0) * z) + SH_Q1) * z) + SH_Q2) * z) + SH_Q3) * z) + SH_Q4)
    return (t * ((z * p) / q)) + t


cdef inline double c_det_atan2(double y, double x) noexcept nogil:
    cdef double ax = fabs(x)
    cdef double ay = fabs(y)
    cdef double a, r
    cdef bint swap
    if ay > ax:
        a = ax / ay
        swap = True
    else:
        a = ay / ax
        swap = False
    if a <= SH_C066:
        r = c_xatan(a)
    else:
        r = (SH_PIO4 + c_xatan((a - 1.0) / (a + 1.0))) + SH_HALF_MB
    if swap:
        r = (SH_PIO2 - r) + SH_MB
    if x < 0.0:
        r = (SH_PI - r) + SH_MB2
    if y < 0.0:
        r = -r
    return r


def splitmix64(z):
    """Compiled splitmix64 (spec §6), for the tests: ``z`` in [0, 2**64)."""
    return c_splitmix64(<uint64_t>z)


def variance(seed, t, ship_id):
    """Compiled variance(seed, t, id) (spec §6), for the tests."""
    cdef uint64_t base = c_splitmix64(c_splitmix64(<uint64_t>seed) ^ <uint64_t>t)
    return c_variance_from_base(base, <uint64_t>ship_id)


def det_atan2(double y, double x):
    """Compiled det_atan2(y, x) (spec §7), for the tests; (x, y) != (0, 0)."""
    if x == 0.0 and y == 0.0:
        raise ZeroDivisionError("det_atan2(0, 0) is undefined")
    return c_det_atan2(y, x)


cdef char* _cache = NULL
cdef size_t _cache_size = 0
_cache_lock = threading.Lock()


# --- the tick ------------------------------------------------------------------------------------

cdef struct Cand:
    # a live ship in cell order: start-of-tick position, team, array index (= id order)
    double x
    double y
    int64_t team
    int64_t idx


cdef inline double sq_limit(double r) noexcept nogil:
    """An upper bound L on the squared distances that can give a computed d <= r:
    ``s2 > L`` implies ``sqrt(s2) > r`` after rounding (so the sqrt can be skipped; results
    unchanged). (r*r)*(1+2**-40) exceeds (r + ulp(r)/2)**2 with ample margin while r*r is a
    normal number; for tiny or negative r no shortcut is taken."""
    if r >= 1e-150:
        return (r * r) * SH_SQ_MARGIN
    return SH_INF


cdef inline void scan_sensor(int q0, int q1, const Cand* c, double xi, double yi, int64_t ti,
                             double S, double S2, int* bs, double* bd,
                             double* bd2) noexcept nogil:
    """Sensor fallback over the sorted ships q0..q1-1: nearest enemy with d <= S, ties by the
    lowest id (= lowest index). ``bd2`` bounds the squared distances that can still tie or win."""
    cdef int q, j
    cdef double dx, dy, s2, d
    for q in range(q0, q1):
        dx = c[q].x - xi
        dy = c[q].y - yi
        s2 = (dx * dx) + (dy * dy)
        if (s2 > S2) | (s2 > bd2[0]) | (c[q].team == ti):
            continue
        d = sqrt(s2)
        if d <= S:
            j = <int>c[q].idx
            if bs[0] < 0 or d < bd[0] or (d == bd[0] and j < bs[0]):
                bs[0] = j
                bd[0] = d
                bd2[0] = sq_limit(d)


def combat_tick(int64_t[::1] id_, int64_t[::1] team, double[::1] x, double[::1] y,
                double[::1] vx, double[::1] vy, double[::1] heading, int64_t[::1] max_hp,
                int64_t[::1] hp, double[::1] attack, double[::1] defense, double[::1] speed,
                double[::1] rng, int64_t[::1] fire_rate, int64_t[::1] last_fired,
                int64_t[::1] target_id, int64_t tick, uint64_t seed):
    """See ``starhold.kernels.combat.combat_tick`` (which validates dtypes, shapes, lengths,
    tick and seed, then calls this with the 16 arrays in ``STATE_FIELDS`` order)."""
    cdef Py_ssize_t n = id_.shape[0]
    if (team.shape[0] != n or x.shape[0] != n or y.shape[0] != n or vx.shape[0] != n
            or vy.shape[0] != n or heading.shape[0] != n or max_hp.shape[0] != n
            or hp.shape[0] != n or attack.shape[0] != n or defense.shape[0] != n
            or speed.shape[0] != n or rng.shape[0] != n or fire_rate.shape[0] != n
            or last_fired.shape[0] != n or target_id.shape[0] != n):
        raise ValueError("all state arrays must have the same length")
    if n >= (1 << 29):
        raise ValueError("at most 2**29 - 1 ships")
    if tick < 0:
        raise ValueError("tick must be >= 0")
    if n == 0:
        return np.zeros((0, 5), dtype=np.int64)

    cdef int ni = <int>n
    cdef int i, j, p, q, T, nl = 0, err = 0, na = 0, nd = 0
    cdef double xmin = 0.0, ymin = 0.0, xmax = 0.0, ymax = 0.0, Rmax = 0.0, W, H, G
    cdef double ncxd, ncyd, capd, r, r2, S, S2, xi, yi, dx, dy, s2, d, thr, bthr, bd, bd2
    cdef double ax, ay, w, kd, shrink, desx, desy, ux, uy, s, nvx, nvy, m, kk, m2, v, raw
    cdef int64_t ti, dmg, hpv, cool
    cdef int ncx = 1, ncy = 1, ncells, cx, cy, xa, xb, ya, yb, yy, rowbase, bi, bs, ring, kring
    cdef uint64_t base = c_splitmix64(c_splitmix64(seed) ^ <uint64_t>tick)

    cdef int64_t* ids = &id_[0]
    cdef int64_t* teams = &team[0]
    cdef double* px = &x[0]
    cdef double* py = &y[0]
    cdef double* pvx = &vx[0]
    cdef double* pvy = &vy[0]
    cdef double* phead = &heading[0]
    cdef int64_t* php = &hp[0]
    cdef double* patk = &attack[0]
    cdef double* pdef = &defense[0]
    cdef double* pspd = &speed[0]
    cdef double* prng = &rng[0]
    cdef int64_t* pfr = &fire_rate[0]
    cdef int64_t* plf = &last_fired[0]
    cdef int64_t* ptgt = &target_id[0]

    # scratch: one block, n * 148 + cells bytes; cached between calls (a caller that finds the
    # cache busy -- another thread inside the kernel -- allocates its own block)
    cdef size_t ncap = <size_t>(2 * n + 64)  # >= the cell count (<= 2 * nl + 64)
    cdef size_t need = <size_t>n * (16 * sizeof(double) + 5 * sizeof(int)) + (2 * ncap + 1) * sizeof(int)
    cdef bint cached = _cache_lock.acquire(False)
    cdef char* block = NULL
    global _cache, _cache_size
    if cached:
        if _cache_size < need:
            free(_cache)
            _cache = <char*>malloc(need)
            _cache_size = need if _cache != NULL else 0
        block = _cache
    else:
        block = <char*>malloc(need)
    if block == NULL:
        if cached:
            _cache_lock.release()
        raise MemoryError()
    # 8-byte aligned arrays first, then the int arrays
    cdef Cand* cand = <Cand*>block
    cdef double* X0 = <double*>(cand + n)
    cdef double* Y0 = X0 + n
    cdef double* cellx = Y0 + n
    cdef double* celly = cellx + n
    cdef double* sax = celly + n
    cdef double* say = sax + n
    cdef double* sA = say + n
    cdef double* sB = sA + n
    cdef int64_t* dsum = <int64_t*>(sB + n)
    cdef int64_t* att = dsum + n  # 3n: (attacker, target, dmg)
    cdef int* live = <int*>(att + 3 * n)
    cdef int* tgt = live + n
    cdef int* cellof = tgt + n
    cdef int* scx = cellof + n
    cdef int* scy = scx + n
    cdef int* cellstart = scy + n  # ncap + 1
    cdef int* cursor = cellstart + ncap + 1  # ncap
    cdef int64_t[:, ::1] ev
    try:
        with nogil:
            # ids >= 0 and strictly increasing; live set; bounding box; Rmax
            if ids[0] < 0:
                err = 1
            for i in range(1, ni):
                if ids[i] <= ids[i - 1]:
                    err = 1
            memcpy(X0, px, n * sizeof(double))
            memcpy(Y0, py, n * sizeof(double))
            for i in range(ni):
                if php[i] > 0:
                    if nl == 0:
                        xmin = px[i]
                        xmax = px[i]
                        ymin = py[i]
                        ymax = py[i]
                    else:
                        if px[i] < xmin:
                            xmin = px[i]
                        if px[i] > xmax:
                            xmax = px[i]
                        if py[i] < ymin:
                            ymin = py[i]
                        if py[i] > ymax:
                            ymax = py[i]
                    if prng[i] > Rmax:
                        Rmax = prng[i]
                    if not ((px[i] - px[i]) == 0.0 and (py[i] - py[i]) == 0.0
                            and (prng[i] - prng[i]) == 0.0):
                        err = 2
                    live[nl] = i
                    nl += 1
        if err == 1:
            raise ValueError("state['id'] must be >= 0 and strictly increasing")
        if err == 2:
            raise ValueError("x, y and range of live ships must be finite")
        if nl == 0:
            return np.zeros((0, 5), dtype=np.int64)

        # grid geometry (spec §5): G >= Rmax * (1 + 2**-20), enlarged to keep the cell count
        # <= 2 * nl + 64 (and every (x - xmin) / G <= 2**28, far below the spec's 2**30)
        W = xmax - xmin
        H = ymax - ymin
        G = Rmax * SH_G_MARGIN
        d = W if W > H else H
        if G < d * SH_TWO_M28:
            G = d * SH_TWO_M28
        if G < SH_TWO_M900:
            G = SH_TWO_M900
        capd = 2.0 * nl + 64.0  # < 2**31 since n < 2**29
        while True:
            ncxd = floor(W / G) + 1.0
            ncyd = floor(H / G) + 1.0
            if ncxd * ncyd <= capd:
                break
            G = G * 2.0
        ncx = <int>ncxd
        ncy = <int>ncyd
        ncells = ncx * ncy
        memset(cellstart, 0, (ncells + 1) * sizeof(int))
        memset(dsum, 0, n * sizeof(int64_t))

        with nogil:
            # counting sort of the live ships into cells (CSR cell lists)
            for p in range(nl):
                i = live[p]
                ax = (px[i] - xmin) / G
                ay = (py[i] - ymin) / G
                cellx[p] = ax
                celly[p] = ay
                cx = <int>floor(ax)
                cy = <int>floor(ay)
                if cx < 0:
                    cx = 0
                elif cx >= ncx:
                    cx = ncx - 1
                if cy < 0:
                    cy = 0
                elif cy >= ncy:
                    cy = ncy - 1
                cellof[p] = (cy * ncx) + cx
                cellstart[cellof[p] + 1] += 1
            for q in range(ncells):
                cellstart[q + 1] += cellstart[q]
            # place (stable: live order = index order within a cell)
            memcpy(cursor, cellstart, ncells * sizeof(int))
            for p in range(nl):
                i = live[p]
                q = cellof[p]
                j = cursor[q]
                cursor[q] = j + 1
                cand[j].x = px[i]
                cand[j].y = py[i]
                cand[j].team = teams[i]
                cand[j].idx = i
                scx[j] = q % ncx
                scy[j] = q / ncx
                sax[j] = cellx[p]
                say[j] = celly[p]
                sA[j] = SH_C03 * (SH_C1000 - <double>php[i])
                sB[j] = SH_C02 * patk[i]

            for i in range(ni):
                tgt[i] = -1

            # Phase 1 - targeting, in cell order (reads X0, Y0, HP0)
            for p in range(nl):
                i = <int>cand[p].idx
                xi = cand[p].x
                yi = cand[p].y
                ti = cand[p].team
                r = prng[i]
                r2 = sq_limit(r)
                cx = scx[p]
                cy = scy[p]
                xa = cx - 1 if cx > 0 else 0
                xb = cx + 1 if cx + 1 < ncx else ncx - 1
                ya = cy - 1 if cy > 0 else 0
                yb = cy + 1 if cy + 1 < ncy else ncy - 1
                # 1. in-range candidates: the 3x3 cells (spec §5), narrowed to the cells that
                # can hold a ship at computed d <= r: a computed d <= r means a true
                # |x_j - x_i| <= r * (1 + 2**-52), and the computed cell coordinates are within
                # 2**-22 of exact, so floor(a_j) lies in [floor(a_i - w - 2**-20),
                # floor(a_i + w + 2**-20)] with w >= r / G (the 2**-20 also covers the
                # rounding of these bounds, a_i <= 2**28). Highest thr, ties by lowest id.
                # (casts truncate toward 0: equal to floor for the non-negative upper bounds,
                # and for a negative lower bound both results are <= 0 <= xa: no effect)
                w = (r * SH_SQ_MARGIN) / G
                j = <int>((sax[p] - w) - SH_TWO_M20)
                if j > xa:
                    xa = j
                j = <int>((sax[p] + w) + SH_TWO_M20)
                if j < xb:
                    xb = j
                j = <int>((say[p] - w) - SH_TWO_M20)
                if j > ya:
                    ya = j
                j = <int>((say[p] + w) + SH_TWO_M20)
                if j < yb:
                    yb = j
                bi = -1
                bthr = 0.0
                for yy in range(ya, yb + 1):
                    rowbase = yy * ncx
                    for q in range(cellstart[rowbase + xa], cellstart[rowbase + xb + 1]):
                        dx = cand[q].x - xi
                        dy = cand[q].y - yi
                        s2 = (dx * dx) + (dy * dy)
                        # one well-predicted branch instead of two random ones
                        if (s2 > r2) | (cand[q].team == ti):
                            continue
                        d = sqrt(s2)
                        if d <= r:
                            thr = (sA[q] + (SH_C05 * (SH_C1000 - d))) + sB[q]
                            j = <int>cand[q].idx
                            if bi < 0 or thr > bthr or (thr == bthr and j < bi):
                                bi = j
                                bthr = thr
                if bi >= 0:
                    tgt[i] = bi
                    continue
                # 2. sensor fallback: nearest enemy with d <= S, ties by lowest id; the 3x3
                # cells, then rings 2..k of cells (k from spec §5), stopping once every ship of
                # ring >= m is provably farther than the best found
                S = SH_C4 * r
                S2 = sq_limit(S)
                xa = cx - 1 if cx > 0 else 0
                xb = cx + 1 if cx + 1 < ncx else ncx - 1
                ya = cy - 1 if cy > 0 else 0
                yb = cy + 1 if cy + 1 < ncy else ncy - 1
                bs = -1
                bd = 0.0
                bd2 = SH_INF
                for yy in range(ya, yb + 1):
                    rowbase = yy * ncx
                    scan_sensor(cellstart[rowbase + xa], cellstart[rowbase + xb + 1], cand,
                                xi, yi, ti, S, S2, &bs, &bd, &bd2)
                kd = floor((S * SH_K_MARGIN) / G) + 1.0
                kring = ncx if ncx > ncy else ncy
                if kd < <double>kring:
                    kring = <int>kd
                ring = 2
                while ring <= kring:
                    if bs >= 0:
                        shrink = (<double>(ring - 1) * G) * SH_RING_SHRINK
                        if bd <= shrink:
                            break
                    if cx - ring < 0 and cy - ring < 0 and cx + ring >= ncx and cy + ring >= ncy:
                        break
                    xa = cx - ring if cx - ring > 0 else 0
                    xb = cx + ring if cx + ring < ncx else ncx - 1
                    if cy - ring >= 0:
                        rowbase = (cy - ring) * ncx
                        scan_sensor(cellstart[rowbase + xa], cellstart[rowbase + xb + 1], cand,
                                    xi, yi, ti, S, S2, &bs, &bd, &bd2)
                    if cy + ring < ncy:
                        rowbase = (cy + ring) * ncx
                        scan_sensor(cellstart[rowbase + xa], cellstart[rowbase + xb + 1], cand,
                                    xi, yi, ti, S, S2, &bs, &bd, &bd2)
                    ya = cy - ring + 1 if cy - ring + 1 > 0 else 0
                    yb = cy + ring - 1 if cy + ring - 1 < ncy else ncy - 1
                    for yy in range(ya, yb + 1):
                        rowbase = yy * ncx
                        if cx - ring >= 0:
                            q = rowbase + cx - ring
                            scan_sensor(cellstart[q], cellstart[q + 1], cand,
                                        xi, yi, ti, S, S2, &bs, &bd, &bd2)
                        if cx + ring < ncx:
                            q = rowbase + cx + ring
                            scan_sensor(cellstart[q], cellstart[q + 1], cand,
                                        xi, yi, ti, S, S2, &bs, &bd, &bd2)
                    ring += 1
                tgt[i] = bs

            # Phase 2 - movement (reads X0, Y0; writes x, y, vx, vy, heading of live ships)
            for p in range(nl):
                i = live[p]
                T = tgt[i]
                ptgt[i] = ids[T] if T >= 0 else -1
                desx = 0.0
                desy = 0.0
                if T >= 0:
                    dx = X0[T] - X0[i]
                    dy = Y0[T] - Y0[i]
                    d = sqrt((dx * dx) + (dy * dy))
                    if d != 0.0:
                        ux = dx / d
                        uy = dy / d
                        if d > (SH_C07 * prng[i]):
                            s = pspd[i]
                            desx = ux * s
                            desy = uy * s
                        elif d < (SH_C04 * prng[i]):
                            s = SH_C05 * pspd[i]
                            desx = -(ux * s)
                            desy = -(uy * s)
                        else:
                            s = SH_C07 * pspd[i]
                            desx = -(uy * s)
                            desy = ux * s
                nvx = pvx[i] + ((desx - pvx[i]) * SH_DT)
                nvy = pvy[i] + ((desy - pvy[i]) * SH_DT)
                m = sqrt((nvx * nvx) + (nvy * nvy))
                if m > pspd[i]:
                    kk = pspd[i] / m
                    nvx = nvx * kk
                    nvy = nvy * kk
                pvx[i] = nvx
                pvy[i] = nvy
                px[i] = X0[i] + (nvx * SH_DT)
                py[i] = Y0[i] + (nvy * SH_DT)
                m2 = sqrt((nvx * nvx) + (nvy * nvy))
                if m2 > SH_DT:
                    phead[i] = c_det_atan2(nvy, nvx)

            # Phase 3 - attacks (reads the new x, y; hp is still HP0 until all are evaluated)
            for p in range(nl):
                i = live[p]
                T = tgt[i]
                if T < 0:
                    continue
                dx = px[T] - px[i]
                dy = py[T] - py[i]
                d = sqrt((dx * dx) + (dy * dy))
                # t - last_fired >= fire_rate, exactly: the int64 difference can only
                # overflow (wrap negative) when last_fired < 0, and then it is >= 2**63
                cool = <int64_t>(<uint64_t>tick - <uint64_t>plf[i])
                if d <= prng[i] and (cool >= pfr[i] or (plf[i] < 0 and cool < 0)):
                    v = c_variance_from_base(base, <uint64_t>ids[i])
                    raw = (patk[i] - (pdef[T] * SH_C05)) * v
                    if not (raw >= 1.0):
                        dmg = 1
                    elif raw >= 4.0e18:  # outside the preconditions; avoid UB
                        dmg = <int64_t>4000000000000000000
                    else:
                        dmg = <int64_t>floor(raw)
                    att[3 * na] = i
                    att[3 * na + 1] = T
                    att[3 * na + 2] = dmg
                    na += 1
                    dsum[T] += dmg
            for q in range(na):
                plf[att[3 * q]] = tick  # only the ships that fired
            # simultaneous damage, then Phase 4 - deaths
            for p in range(nl):
                i = live[p]
                if dsum[i] != 0:
                    hpv = php[i] - dsum[i]
                    php[i] = hpv if hpv > 0 else 0
                    if php[i] == 0:
                        nd += 1

        out = np.empty((na + nd, 5), dtype=np.int64)
        if na + nd == 0:
            return out
        ev = out
        with nogil:
            for q in range(na):
                ev[q, 0] = 0
                ev[q, 1] = tick
                ev[q, 2] = ids[att[3 * q]]
                ev[q, 3] = ids[att[3 * q + 1]]
                ev[q, 4] = att[3 * q + 2]
            q = na
            for p in range(nl):
                i = live[p]
                if php[i] == 0:
                    ev[q, 0] = 1
                    ev[q, 1] = tick
                    ev[q, 2] = ids[i]
                    ev[q, 3] = -1
                    ev[q, 4] = 0
                    q += 1
        return out
    finally:
        if cached:
            _cache_lock.release()
        else:
            free(block)

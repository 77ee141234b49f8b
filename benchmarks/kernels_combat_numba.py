"""A numba peer of the combat tick (specs/combat.md), for benchmarks/kernels_combat.py only.

A faithful ``@njit`` port of the same rules: targeting by threat with the sensor fallback and
the exact tie rules (§3 phase 1), steering (phase 2), attacks with the §6 variance, simultaneous
damage and deaths (phases 3-4), events by ascending attacker id then ascending dead id. Phase 1
uses the uniform grid recipe of spec §5 as written there: live ships counting-sorted into cells
of size G = Rmax * (1 + 2**-20) (doubled while the cell count exceeds 2 * live + 64), copied in
cell order (struct of arrays) for locality; in-range candidates from the 3x3 cells, the sensor
fallback from the (2k+1)x(2k+1) cells with k = floor(4 * range * (1 + 2**-20) / G) + 1; every
candidate goes through the exact predicate (d as in spec §2) and the exact tie rules.

numba compiles with ``fastmath=False`` (its default: no reassociation, no FMA contraction), so
the results are bit-identical to the compiled kernel; the benchmark checks every tick.
``error_model="numpy"`` drops numba's zero-division checks (no division here can be by zero).

Requires numba (a benchmark-only dependency: ``pip install numba``); importing this module
raises ImportError without it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from starhold.kernels.combat import STATE_FIELDS

_JIT = dict(cache=False, nogil=True, error_model="numpy")

_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_U11 = np.uint64(11)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_I64_MAX = np.int64(9223372036854775807)


@njit(**_JIT)
def _splitmix64(z):
    z = z + _GOLDEN
    z = (z ^ (z >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(**_JIT)
def _xatan(t):
    z = t * t
    p = ((((((((-0.8750608600031904 * z) + -16.157537187333652) * z) + -75.00855792314705) * z)
           + -122.88666844901361) * z) + -64.85021904942025)
    q = (((((((((z + 24.858464901423062) * z) + 165.02700983169885) * z) + 432.88106049129027) * z)
           + 485.3903996359137) * z) + 194.5506571482614)
    return (t * ((z * p) / q)) + t


@njit(**_JIT)
def _det_atan2(y, x):
    ax = abs(x)
    ay = abs(y)
    swap = ay > ax
    if swap:
        a = ax / ay
    else:
        a = ay / ax
    if a <= 0.66:
        r = _xatan(a)
    else:
        r = (0.7853981633974483 + _xatan((a - 1.0) / (a + 1.0))) + 3.061616997868383e-17
    if swap:
        r = (1.5707963267948966 - r) + 6.123233995736766e-17
    if x < 0.0:
        r = (3.141592653589793 - r) + 1.2246467991473532e-16
    if y < 0.0:
        r = -r
    return r


@njit(**_JIT)
def _grid(px, py, rng, live, nl):
    """Cell size, grid shape and the live ships sorted by cell: (G, xmin, ymin, ncx, ncy,
    cell of each sorted ship as (cx, cy), CSR cell starts, sorted ship indices)."""
    xmin = xmax = px[live[0]]
    ymin = ymax = py[live[0]]
    rmax = 0.0
    for p in range(nl):
        i = live[p]
        xmin = min(xmin, px[i])
        xmax = max(xmax, px[i])
        ymin = min(ymin, py[i])
        ymax = max(ymax, py[i])
        rmax = max(rmax, rng[i])
    w = xmax - xmin
    h = ymax - ymin
    g = max(rmax * (1.0 + 2.0 ** -20), max(w, h) * 2.0 ** -28, 2.0 ** -900)
    while (math.floor(w / g) + 1.0) * (math.floor(h / g) + 1.0) > 2.0 * nl + 64.0:
        g = g * 2.0
    ncx = int(math.floor(w / g)) + 1
    ncy = int(math.floor(h / g)) + 1
    cell = np.empty(nl, np.int64)
    start = np.zeros(ncx * ncy + 1, np.int64)
    for p in range(nl):
        i = live[p]
        cx = min(max(int(math.floor((px[i] - xmin) / g)), 0), ncx - 1)
        cy = min(max(int(math.floor((py[i] - ymin) / g)), 0), ncy - 1)
        cell[p] = cy * ncx + cx
        start[cell[p] + 1] += 1
    for c in range(ncx * ncy):
        start[c + 1] += start[c]
    cursor = start[:-1].copy()
    order = np.empty(nl, np.int64)
    for p in range(nl):
        order[cursor[cell[p]]] = live[p]
        cursor[cell[p]] += 1
    return g, ncx, ncy, start, order, cell


@njit(**_JIT)
def _target(xi, yi, ti, r, cx, cy, ncx, ncy, g, start, sx, sy, steam, sidx, hp0, attack):
    """Phase 1 for ship i (sorted position p): the index of its target, or -1."""
    best = -1
    bthr = 0.0
    for yy in range(max(cy - 1, 0), min(cy + 1, ncy - 1) + 1):
        row = yy * ncx
        for q in range(start[row + max(cx - 1, 0)], start[row + min(cx + 1, ncx - 1) + 1]):
            if steam[q] == ti:
                continue
            dx = sx[q] - xi
            dy = sy[q] - yi
            d = math.sqrt((dx * dx) + (dy * dy))
            if d <= r:
                j = sidx[q]
                thr = ((0.3 * (1000.0 - float(hp0[j]))) + (0.5 * (1000.0 - d))) + (0.2 * attack[j])
                if best < 0 or thr > bthr or (thr == bthr and j < best):
                    best = j
                    bthr = thr
    if best >= 0:
        return best
    s = 4.0 * r
    k = int(math.floor((s * (1.0 + 2.0 ** -20)) / g)) + 1
    bd = 0.0
    for yy in range(max(cy - k, 0), min(cy + k, ncy - 1) + 1):
        row = yy * ncx
        for q in range(start[row + max(cx - k, 0)], start[row + min(cx + k, ncx - 1) + 1]):
            if steam[q] == ti:
                continue
            dx = sx[q] - xi
            dy = sy[q] - yi
            d = math.sqrt((dx * dx) + (dy * dy))
            if d <= s:
                j = sidx[q]
                if best < 0 or d < bd or (d == bd and j < best):
                    best = j
                    bd = d
    return best


@njit(**_JIT)
def _tick(ids, team, x, y, vx, vy, heading, hp, attack, defense, speed, rng, fire_rate,
          last_fired, target_id, t, seed):
    n = ids.shape[0]
    live = np.empty(n, np.int64)
    nl = 0
    for i in range(n):
        if hp[i] > 0:
            live[nl] = i
            nl += 1
    if nl == 0:
        return np.zeros((0, 5), np.int64)
    X0 = x.copy()
    Y0 = y.copy()
    g, ncx, ncy, start, order, cell = _grid(X0, Y0, rng, live, nl)
    sx = np.empty(nl)
    sy = np.empty(nl)
    steam = np.empty(nl, np.int64)
    for q in range(nl):
        sx[q] = X0[order[q]]
        sy[q] = Y0[order[q]]
        steam[q] = team[order[q]]
    tgt = np.full(n, -1, np.int64)
    # Phase 1 - targeting (reads X0, Y0, HP0)
    for p in range(nl):
        i = live[p]
        cy, cx = divmod(cell[p], ncx)
        tgt[i] = _target(X0[i], Y0[i], team[i], rng[i], cx, cy, ncx, ncy, g, start,
                         sx, sy, steam, order, hp, attack)
    # Phase 2 - movement (reads X0, Y0)
    for p in range(nl):
        i = live[p]
        T = tgt[i]
        target_id[i] = ids[T] if T >= 0 else -1
        desx = 0.0
        desy = 0.0
        if T >= 0:
            dx = X0[T] - X0[i]
            dy = Y0[T] - Y0[i]
            d = math.sqrt((dx * dx) + (dy * dy))
            if d != 0.0:
                ux = dx / d
                uy = dy / d
                if d > (0.7 * rng[i]):
                    s = speed[i]
                    desx = ux * s
                    desy = uy * s
                elif d < (0.4 * rng[i]):
                    s = 0.5 * speed[i]
                    desx = -(ux * s)
                    desy = -(uy * s)
                else:
                    s = 0.7 * speed[i]
                    desx = -(uy * s)
                    desy = ux * s
        nvx = vx[i] + ((desx - vx[i]) * 0.1)
        nvy = vy[i] + ((desy - vy[i]) * 0.1)
        m = math.sqrt((nvx * nvx) + (nvy * nvy))
        if m > speed[i]:
            k = speed[i] / m
            nvx = nvx * k
            nvy = nvy * k
        vx[i] = nvx
        vy[i] = nvy
        x[i] = X0[i] + (nvx * 0.1)
        y[i] = Y0[i] + (nvy * 0.1)
        m2 = math.sqrt((nvx * nvx) + (nvy * nvy))
        if m2 > 0.1:
            heading[i] = _det_atan2(nvy, nvx)
    # Phase 3 - attacks (reads the new x, y); damage applied after all are evaluated
    base = _splitmix64(_splitmix64(seed) ^ np.uint64(t))
    att = np.empty((nl, 3), np.int64)
    na = 0
    dsum = np.zeros(n, np.int64)
    for p in range(nl):
        i = live[p]
        T = tgt[i]
        if T < 0:
            continue
        dx = x[T] - x[i]
        dy = y[T] - y[i]
        d = math.sqrt((dx * dx) + (dy * dy))
        lf = last_fired[i]
        # t - last_fired >= fire_rate with the exact difference (when it exceeds int64 it is
        # >= 2**63 > fire_rate)
        cooled = True if (lf < 0 and t > _I64_MAX + lf) else ((t - lf) >= fire_rate[i])
        if d <= rng[i] and cooled:
            h = _splitmix64(base ^ np.uint64(ids[i]))
            v = 0.8 + (0.4 * (float(h >> _U11) * 1.1102230246251565e-16))
            raw = (attack[i] - (defense[T] * 0.5)) * v
            if not raw >= 1.0:
                dmg = 1
            elif raw >= 4.0e18:  # beyond the preconditions; as the compiled kernel
                dmg = 4000000000000000000
            else:
                dmg = int(math.floor(raw))
            att[na, 0] = i
            att[na, 1] = T
            att[na, 2] = dmg
            na += 1
            dsum[T] += dmg
    for q in range(na):
        last_fired[att[q, 0]] = t
    # simultaneous damage, then Phase 4 - deaths
    nd = 0
    for p in range(nl):
        i = live[p]
        if dsum[i] != 0:
            hp[i] = max(0, hp[i] - dsum[i])
            if hp[i] == 0:
                nd += 1
    out = np.empty((na + nd, 5), np.int64)
    for q in range(na):
        out[q, 0] = 0
        out[q, 1] = t
        out[q, 2] = ids[att[q, 0]]
        out[q, 3] = ids[att[q, 1]]
        out[q, 4] = att[q, 2]
    q = na
    for p in range(nl):
        i = live[p]
        if dsum[i] != 0 and hp[i] == 0:
            out[q, 0] = 1
            out[q, 1] = t
            out[q, 2] = ids[i]
            out[q, 3] = -1
            out[q, 4] = 0
            q += 1
    return out


def combat_tick_numba(state, tick, seed):
    """Advance ``state`` one tick in place and return the events; the arguments and the result
    are those of ``starhold.kernels.combat.combat_tick`` (specs/combat.md §4). The state is
    assumed valid (no checks: a benchmark peer). The first call compiles (seconds)."""
    a = [state[k] for k in STATE_FIELDS]
    return _tick(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[8], a[9], a[10], a[11], a[12],
                 a[13], a[14], a[15], np.int64(tick), np.uint64(seed))

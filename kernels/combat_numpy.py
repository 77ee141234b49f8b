"""Vectorised NumPy/SciPy combat tick: the peer of the compiled kernel in benchmarks/kernels.py.

Not used by the server. It implements the rules of specs/combat.md with whole-array NumPy
operations and a ``scipy.spatial.cKDTree`` neighbour search (spec §5's KD-tree recipe: query
with an inflated radius to get a superset of the candidates, then apply the exact distance
formula and the exact tie rules), and is bit-exact with ``combat.combat_tick_py`` and the
compiled kernel: every float operation is a NumPy float64 elementwise ufunc (one IEEE
rounding each) applied in the spec's order; ``np.arctan2`` / ``np.hypot`` are not used
(``det_atan2`` is evaluated with ``np.where`` over the spec's formula); uint64 arrays wrap.
"""

from __future__ import annotations

import itertools

import numpy as np

from .combat import (
    C02,
    C03,
    C04,
    C05,
    C066,
    C07,
    C08,
    C4,
    C1000,
    DT,
    HALF_MB,
    MB,
    MB2,
    P0,
    P1,
    P2,
    P3,
    P4,
    PI,
    PIO2,
    PIO4,
    Q0,
    Q1,
    Q2,
    Q3,
    Q4,
    TWO_M53,
    CombatInputError,
    _check_ids,
    _validate,
    _variance_base,
)

__all__ = ["combat_tick_numpy", "det_atan2_numpy", "splitmix64_numpy", "variance_numpy"]

_INFLATE = 1.0 + 1e-9  # spec §5: relative 1e-9 (plus 1e-9 absolute) inflation of KD radii
_DMG_CAP = 4.0e18      # outside the preconditions: keeps int64(floor(raw)) defined, as in C


def splitmix64_numpy(z: np.ndarray) -> np.ndarray:
    """splitmix64 (spec §6) of a uint64 array (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def variance_numpy(seed: int, t: int, ids: np.ndarray) -> np.ndarray:
    """variance(seed, t, id) (spec §6) for an int64 array of ids; float64 array in [0.8, 1.2]."""
    base = np.uint64(_variance_base(seed, t))
    h = splitmix64_numpy(ids.astype(np.uint64) ^ base)
    u = (h >> np.uint64(11)).astype(np.float64) * TWO_M53
    return C08 + (C04 * u)


def _xatan(t):
    z = t * t
    p = ((((((((P0 * z) + P1) * z) + P2) * z) + P3) * z) + P4)
    q = (((((((((z + Q0) * z) + Q1) * z) + Q2) * z) + Q3) * z) + Q4)
    return (t * ((z * p) / q)) + t


def det_atan2_numpy(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """det_atan2 (spec §7) of float64 arrays, elementwise; no element may have (x, y) == (0, 0)."""
    ax = np.abs(x)
    ay = np.abs(y)
    swap = ay > ax
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(swap, ax / ay, ay / ax)
    r = np.where(a <= C066, _xatan(a), (PIO4 + _xatan((a - 1.0) / (a + 1.0))) + HALF_MB)
    r = np.where(swap, (PIO2 - r) + MB, r)
    r = np.where(x < 0.0, (PI - r) + MB2, r)
    return np.where(y < 0.0, -r, r)


def _choose(n, owner, key, other, maximise):
    """Per owner, the row with the best ``key`` (max or min), ties by lowest ``other`` index.

    Returns an int64 array of length n: the chosen ``other`` per owner or -1."""
    best = np.full(n, -np.inf if maximise else np.inf)
    (np.maximum if maximise else np.minimum).at(best, owner, key)
    keep = key == best[owner]  # IEEE equality: exact ties
    out = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, owner[keep], other[keep])
    out[out == np.iinfo(np.int64).max] = -1
    return out


def _flatten(lists) -> tuple[np.ndarray, np.ndarray]:
    """(owner row, item) arrays from an object array of lists (cKDTree.query_ball_point)."""
    lens = np.fromiter(map(len, lists), dtype=np.intp, count=len(lists))
    items = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.intp, count=int(lens.sum()))
    return np.repeat(np.arange(len(lists)), lens), items


def _targets(n, L, team, X0, Y0, HP0, attack, rng):
    """Phase 1: target index (global, -1 = none) of every ship (spec §3), via cKDTree."""
    from scipy.spatial import cKDTree

    tgt = np.full(n, -1, dtype=np.int64)
    nl = L.shape[0]
    if nl < 2:
        return tgt
    xl, yl = X0[L], Y0[L]
    # unbalanced, non-compact: the faster build for the (roughly uniform) battle fields
    tree = cKDTree(np.column_stack((xl, yl)), balanced_tree=False, compact_nodes=False)
    rl = rng[L]
    rmax = float(rl.max())

    # 1. in-range candidates: all pairs within the inflated Rmax (a superset), both directions
    pairs = tree.query_pairs(max(rmax, 0.0) * _INFLATE + 1e-9, output_type="ndarray")
    a = np.concatenate((pairs[:, 0], pairs[:, 1])).astype(np.int64)
    b = np.concatenate((pairs[:, 1], pairs[:, 0])).astype(np.int64)
    ga, gb = L[a], L[b]
    enemy = team[ga] != team[gb]
    ga, gb = ga[enemy], gb[enemy]
    dx = X0[gb] - X0[ga]
    dy = Y0[gb] - Y0[ga]
    d = np.sqrt((dx * dx) + (dy * dy))
    inr = d <= rng[ga]
    ga, gb, d = ga[inr], gb[inr], d[inr]
    thr = ((C03 * (C1000 - HP0[gb].astype(np.float64))) + (C05 * (C1000 - d))) + (C02 * attack[gb])
    tgt[:] = _choose(n, ga, thr, gb, True)

    # 2. sensor fallback for live ships without an in-range enemy: nearest enemy within S
    fl = np.flatnonzero(tgt[L] < 0)  # local indices
    if fl.size == 0:
        return tgt
    S = C4 * rl[fl]
    smax = float(S.max())
    pts = np.column_stack((xl[fl], yl[fl]))
    teaml = team[L]
    dn = np.full(fl.size, np.inf)  # approximate nearest-enemy distance
    todo = np.arange(fl.size)
    k = min(8, nl)
    while todo.size:
        dist, idx = tree.query(pts[todo], k=k, distance_upper_bound=smax * _INFLATE + 1e-9)
        dist = dist.reshape(todo.size, k)
        idx = idx.reshape(todo.size, k)
        found = idx < nl
        safe = np.where(found, idx, 0)
        is_enemy = found & (teaml[safe] != teaml[fl[todo]][:, None])
        dn[todo] = np.where(is_enemy, dist, np.inf).min(axis=1)
        # undecided: k neighbours all found, none of them an enemy, and more ships exist
        undecided = found.all(axis=1) & ~is_enemy.any(axis=1)
        if k >= nl or not undecided.any():
            break
        todo = todo[undecided]
        k = min(2 * k, nl)
    ok = dn <= (S * _INFLATE) + 1e-9
    fl, dn, S = fl[ok], dn[ok], S[ok]
    if fl.size == 0:
        return tgt
    rows, items = _flatten(tree.query_ball_point(np.column_stack((xl[fl], yl[fl])),
                                                 dn * _INFLATE + 1e-9, return_sorted=False))
    ga = L[fl[rows]]
    gb = L[items.astype(np.int64)]
    enemy = team[ga] != team[gb]
    ga, gb, Sr = ga[enemy], gb[enemy], S[rows][enemy]
    dx = X0[gb] - X0[ga]
    dy = Y0[gb] - Y0[ga]
    d = np.sqrt((dx * dx) + (dy * dy))
    ins = d <= Sr
    ga, gb, d = ga[ins], gb[ins], d[ins]
    chosen = _choose(n, ga, d, gb, False)
    has = chosen >= 0
    tgt[has] = chosen[has]
    return tgt


def combat_tick_numpy(state, tick, seed) -> np.ndarray:
    """Vectorised NumPy/SciPy implementation of ``combat.combat_tick`` (same arguments, same
    in-place updates, same events, bit for bit). The peer for benchmarks/kernels.py; the
    server uses ``combat.combat_tick``. Requires scipy (``scipy.spatial.cKDTree``).

    Raises the same errors as :func:`starhold.kernels.combat.combat_tick`.
    """
    arrays, n, t, seed = _validate(state, tick, seed)
    (id_a, team, x, y, vx, vy, heading, _max_hp, hp, attack, defense, speed, rng, fire_rate,
     last_fired, target_id) = arrays
    _check_ids(id_a)
    L = np.flatnonzero(hp > 0)
    if L.size == 0:
        return np.zeros((0, 5), dtype=np.int64)
    if not (np.isfinite(x[L]).all() and np.isfinite(y[L]).all() and np.isfinite(rng[L]).all()):
        raise CombatInputError("x, y and range of live ships must be finite")
    X0 = x.copy()
    Y0 = y.copy()
    HP0 = hp.copy()

    # Phase 1 - targeting
    tgt = _targets(n, L, team, X0, Y0, HP0, attack, rng)
    TL = tgt[L]
    has = TL >= 0
    target_id[L] = np.where(has, id_a[np.where(has, TL, 0)], -1)

    # Phase 2 - movement
    T = np.where(has, TL, L)
    dx = X0[T] - X0[L]
    dy = Y0[T] - Y0[L]
    d = np.sqrt((dx * dx) + (dy * dy))
    rl = rng[L]
    sp = speed[L]
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = dx / d
        uy = dy / d
        appr = d > (C07 * rl)
        kite = d < (C04 * rl)
        s_k = C05 * sp
        s_s = C07 * sp
        desx = np.where(appr, ux * sp, np.where(kite, -(ux * s_k), -(uy * s_s)))
        desy = np.where(appr, uy * sp, np.where(kite, -(uy * s_k), ux * s_s))
        moving = has & (d != 0.0)
        desx = np.where(moving, desx, 0.0)
        desy = np.where(moving, desy, 0.0)
        vxl = vx[L]
        vyl = vy[L]
        nvx = vxl + ((desx - vxl) * DT)
        nvy = vyl + ((desy - vyl) * DT)
        m = np.sqrt((nvx * nvx) + (nvy * nvy))
        cap = m > sp
        k = sp / m
        nvx = np.where(cap, nvx * k, nvx)
        nvy = np.where(cap, nvy * k, nvy)
    vx[L] = nvx
    vy[L] = nvy
    x[L] = X0[L] + (nvx * DT)
    y[L] = Y0[L] + (nvy * DT)
    m2 = np.sqrt((nvx * nvx) + (nvy * nvy))
    turn = m2 > DT
    if turn.any():
        heading[L[turn]] = det_atan2_numpy(nvy[turn], nvx[turn])

    # Phase 3 - attacks (post-movement positions; the cooldown test is exact, no wrap-around)
    att = L[has]
    T = TL[has]
    dx = x[T] - x[att]
    dy = y[T] - y[att]
    d = np.sqrt((dx * dx) + (dy * dy))
    lf = last_fired[att]
    cool = np.int64(t) - lf  # wraps negative only when lf < 0 and the exact value is >= 2**63
    fires = (d <= rng[att]) & ((cool >= fire_rate[att]) | ((lf < 0) & (cool < 0)))
    fa = att[fires]
    fT = T[fires]
    v = variance_numpy(seed, t, id_a[fa])
    raw = (attack[fa] - (defense[fT] * C05)) * v
    dmg = np.where(raw >= 1.0, np.minimum(np.floor(raw), _DMG_CAP), 1.0).astype(np.int64)
    dsum = np.zeros(n, dtype=np.int64)
    np.add.at(dsum, fT, dmg)
    hit = np.flatnonzero(dsum)
    hp[hit] = np.maximum(0, hp[hit] - dsum[hit])
    last_fired[fa] = t

    # Phase 4 - deaths; events
    dead = L[hp[L] == 0]
    ev = np.empty((fa.size + dead.size, 5), dtype=np.int64)
    ev[:fa.size, 0] = 0
    ev[:fa.size, 1] = t
    ev[:fa.size, 2] = id_a[fa]
    ev[:fa.size, 3] = id_a[fT]
    ev[:fa.size, 4] = dmg
    ev[fa.size:, 0] = 1
    ev[fa.size:, 1] = t
    ev[fa.size:, 2] = id_a[dead]
    ev[fa.size:, 3] = -1
    ev[fa.size:, 4] = 0
    return ev

"""Deterministic combat tick over N ships held as a struct of arrays (specs/combat.md).

One call advances a battle by one tick: targeting by threat score (phase 1), pursue / kite /
strafe steering (phase 2), cooldown-gated attacks with +-20 % variance and simultaneous damage
(phase 3), deaths (phase 4). The result is defined bit for bit by ``specs/combat.md``: two
conforming implementations produce identical state arrays (raw 64-bit patterns) and events.

Three implementations conform and are checked against each other by ``tests/test_combat.py``:

* ``_combat.pyx`` (compiled, O(N) per tick with a uniform grid, spec §5), used by
  :func:`combat_tick` unless it is missing or ``STARHOLD_NO_EXTENSIONS=1``;
* :func:`combat_tick_py` below, the readable twin, which mirrors the spec line by line
  (brute force O(N^2) targeting, as phase 1 is *defined*);
* ``combat_numpy.combat_tick_numpy``, a vectorised NumPy/SciPy peer for the benchmarks.

Sources: the rule set is specs/combat.md; ``det_atan2`` is the Cephes ``atan`` rational
approximation (S. L. Moshier, Cephes Math Library) with the spec's fixed evaluation order;
``splitmix64`` is the generator of G. L. Steele, D. Lea and C. H. Flood, "Fast splittable
pseudorandom number generators" (OOPSLA 2014).

Every real operation here is an IEEE-754 binary64 operation with one rounding (Python floats
are binary64; ``math.sqrt`` is correctly rounded, ``math.floor`` exact); Python ints are
unbounded, so the 64-bit integer arithmetic is masked explicitly.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ._extensions import load

__all__ = [
    "COMPILED",
    "FLOAT_FIELDS",
    "INT_FIELDS",
    "STATE_FIELDS",
    "CombatDtypeError",
    "CombatInputError",
    "combat_tick",
    "combat_tick_py",
    "det_atan2",
    "splitmix64",
    "variance",
]

# --- §1 data model --------------------------------------------------------------------------

INT_FIELDS = ("id", "team", "max_hp", "hp", "fire_rate", "last_fired", "target_id")
FLOAT_FIELDS = ("x", "y", "vx", "vy", "heading", "attack", "defense", "speed", "range")
#: The 16 arrays of a battle, in the order the compiled kernel takes them.
STATE_FIELDS = ("id", "team", "x", "y", "vx", "vy", "heading", "max_hp", "hp", "attack",
                "defense", "speed", "range", "fire_rate", "last_fired", "target_id")
_DTYPES = {name: np.dtype(np.int64) for name in INT_FIELDS}
_DTYPES.update({name: np.dtype(np.float64) for name in FLOAT_FIELDS})

# --- §8 constants (decimal literal = nearest binary64; the hex forms are checked by the tests)

DT = 0.1  # dt, steer gain, heading threshold: 0x1.999999999999ap-4
C02 = 0.2
C03 = 0.3
C04 = 0.4
C05 = 0.5
C066 = 0.66
C07 = 0.7
C08 = 0.8
C1000 = 1000.0
C4 = 4.0
PI = 3.141592653589793
PIO2 = 1.5707963267948966
PIO4 = 0.7853981633974483
MB = 6.123233995736766e-17
HALF_MB = 3.061616997868383e-17
MB2 = 1.2246467991473532e-16
P0 = -0.8750608600031904
P1 = -16.157537187333652
P2 = -75.00855792314705
P3 = -122.88666844901361
P4 = -64.85021904942025
Q0 = 24.858464901423062
Q1 = 165.02700983169885
Q2 = 432.88106049129027
Q3 = 485.3903996359137
Q4 = 194.5506571482614
TWO_M53 = 1.1102230246251565e-16  # 2**-53

_M64 = 0xFFFFFFFFFFFFFFFF
_DMG_CAP = 4 * 10**18  # int64(floor(raw)) is undefined beyond 2**63; unreachable under §1
_I64_MAX = (1 << 63) - 1


class CombatInputError(ValueError, KeyError):
    """Invalid ``state`` / ``tick`` / ``seed`` (a ``ValueError``; also a ``KeyError`` so that a
    missing array can be caught either way)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CombatDtypeError(TypeError, ValueError):
    """An array of ``state`` is not a NumPy array of the required dtype (a ``TypeError``, also a
    ``ValueError`` like NumPy's and Cython's buffer dtype mismatch errors)."""


# --- §6 variance hash -----------------------------------------------------------------------


def splitmix64(z: int) -> int:
    """SplitMix64 finaliser (Steele, Lea, Flood 2014) on an unsigned 64-bit int (spec §6).

    ``z`` is taken modulo 2**64; returns an int in [0, 2**64)."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _variance_base(seed: int, t: int) -> int:
    """``splitmix64(splitmix64(seed) ^ t)``: the ship-independent part, once per tick."""
    return splitmix64(splitmix64(seed & _M64) ^ (t & _M64))


def _variance_from_base(base: int, ship_id: int) -> float:
    h = splitmix64(base ^ (ship_id & _M64))
    u = float(h >> 11) * TWO_M53  # exact: a 53-bit integer times a power of two
    return C08 + (C04 * u)


def variance(seed: int, t: int, id: int) -> float:
    """Damage multiplier in [0.8, 1.2] for ship ``id`` firing at tick ``t`` (spec §6).

    ``seed``, ``t``, ``id`` are non-negative ints, used as unsigned 64-bit integers."""
    return _variance_from_base(_variance_base(seed, t), id)


# --- §7 deterministic arctangent ---------------------------------------------------------------


def _xatan(t: float) -> float:
    z = t * t
    p = ((((((((P0 * z) + P1) * z) + P2) * z) + P3) * z) + P4)
    q = (((((((((z + Q0) * z) + Q1) * z) + Q2) * z) + Q3) * z) + Q4)
    return (t * ((z * p) / q)) + t


def det_atan2(y: float, x: float) -> float:
    """Arctangent of ``y / x`` in [-pi, pi] (radians), fully specified (spec §7, Cephes atan).

    Defined for ``(x, y) != (0, 0)``; raises ``ZeroDivisionError`` for (0, 0)."""
    y = float(y)
    x = float(x)
    ax = abs(x)
    ay = abs(y)
    if ay > ax:
        a = ax / ay
        swap = True
    else:
        a = ay / ax
        swap = False
    if a <= C066:
        r = _xatan(a)
    else:
        r = (PIO4 + _xatan((a - 1.0) / (a + 1.0))) + HALF_MB
    if swap:
        r = (PIO2 - r) + MB
    if x < 0.0:
        r = (PI - r) + MB2
    if y < 0.0:
        r = -r
    return r


# --- input validation (shared by the three implementations) ----------------------------------


def _validate(state, tick, seed) -> tuple[list[np.ndarray], int, int, int]:
    """Check ``state``, ``tick`` and ``seed`` cheaply (no copies, no O(N) work).

    Returns ``(arrays in STATE_FIELDS order, n, tick, seed)``. Raises ``CombatInputError``
    (ValueError) for a missing key, wrong shape, non-contiguous or read-only array, length
    mismatch or out-of-range tick/seed; ``CombatDtypeError`` (TypeError) for a non-array or a
    wrong dtype; ``TypeError`` for a non-mapping state or non-integer tick/seed."""
    if not hasattr(state, "__getitem__") or not hasattr(state, "keys"):
        raise TypeError(f"state must be a dict of NumPy arrays, got {type(state).__name__}")
    arrays = []
    n = -1
    for name in STATE_FIELDS:
        try:
            a = state[name]
        except KeyError:
            raise CombatInputError(f"state is missing the array {name!r}") from None
        if not isinstance(a, np.ndarray):
            raise CombatDtypeError(f"state[{name!r}] must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != _DTYPES[name]:
            raise CombatDtypeError(f"state[{name!r}] must have dtype {_DTYPES[name]}, got {a.dtype}")
        if a.ndim != 1:
            raise CombatInputError(f"state[{name!r}] must be 1-D, got shape {a.shape}")
        if not a.flags.c_contiguous:
            raise CombatInputError(f"state[{name!r}] must be C-contiguous (it is updated in place)")
        if not a.flags.writeable:
            raise CombatInputError(f"state[{name!r}] must be writeable (it is updated in place)")
        if n < 0:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise CombatInputError(f"state[{name!r}] has length {a.shape[0]}, state['id'] has {n}")
        arrays.append(a)
    try:
        tick = operator.index(tick)
        seed = operator.index(seed)
    except TypeError:
        raise TypeError("tick and seed must be integers") from None
    if not 0 <= tick <= _I64_MAX:
        raise CombatInputError(f"tick must be in [0, 2**63), got {tick}")
    if not 0 <= seed <= _M64:
        raise CombatInputError(f"seed must be in [0, 2**64), got {seed}")
    return arrays, n, tick, seed


def _check_ids(ids) -> None:
    """``id`` must be >= 0 and strictly increasing (O(N); the compiled kernel checks in C)."""
    if len(ids) and (ids[0] < 0 or not bool(np.all(ids[1:] > ids[:-1]))):
        raise CombatInputError("state['id'] must be >= 0 and strictly increasing")


def _events_array(rows) -> np.ndarray:
    if not rows:
        return np.zeros((0, 5), dtype=np.int64)
    return np.array(rows, dtype=np.int64).reshape(len(rows), 5)


# --- the twin ---------------------------------------------------------------------------------


def combat_tick_py(state, tick, seed) -> np.ndarray:
    """Pure-Python twin of the compiled kernel: same arguments, same results bit for bit.

    Written to mirror specs/combat.md §3 line by line; phase 1 is the brute-force O(N^2)
    definition. See :func:`combat_tick` for arguments, result and errors.
    """
    arrays, n, t, seed = _validate(state, tick, seed)
    (id_a, team_a, x_a, y_a, vx_a, vy_a, heading_a, _max_hp_a, hp_a, attack_a, defense_a,
     speed_a, range_a, fire_rate_a, last_fired_a, target_a) = arrays
    _check_ids(id_a)
    ids = id_a.tolist()
    team = team_a.tolist()
    HP0 = hp_a.tolist()
    X0 = x_a.tolist()
    Y0 = y_a.tolist()
    vx = vx_a.tolist()
    vy = vy_a.tolist()
    attack = attack_a.tolist()
    defense = defense_a.tolist()
    speed = speed_a.tolist()
    rng = range_a.tolist()
    fire_rate = fire_rate_a.tolist()
    last_fired = last_fired_a.tolist()

    L = [i for i in range(n) if HP0[i] > 0]
    if not all(math.isfinite(X0[i]) and math.isfinite(Y0[i]) and math.isfinite(rng[i]) for i in L):
        raise CombatInputError("x, y and range of live ships must be finite")

    # Phase 1 - targeting (reads X0, Y0, HP0). target[i] is an index or -1.
    target = {}
    for i in L:
        best_thr = None
        best_in = -1
        best_d = None
        best_s = -1
        S = C4 * rng[i]
        for j in L:
            if team[j] == team[i]:
                continue
            dx = X0[j] - X0[i]
            dy = Y0[j] - Y0[i]
            d = math.sqrt((dx * dx) + (dy * dy))
            if d <= rng[i]:
                thr = ((C03 * (C1000 - float(HP0[j]))) + (C05 * (C1000 - d))) + (C02 * attack[j])
                if best_in < 0 or thr > best_thr or (thr == best_thr and ids[j] < ids[best_in]):
                    best_thr, best_in = thr, j
            if d <= S and (best_s < 0 or d < best_d or (d == best_d and ids[j] < ids[best_s])):
                best_d, best_s = d, j
        target[i] = best_in if best_in >= 0 else best_s  # -1 when neither exists
        target_a[i] = ids[target[i]] if target[i] >= 0 else -1

    # Phase 2 - movement (reads X0, Y0; writes x, y, vx, vy, heading of ships in L).
    x = list(X0)
    y = list(Y0)
    for i in L:
        T = target[i]
        if T == -1:
            desx = 0.0
            desy = 0.0
        else:
            dx = X0[T] - X0[i]
            dy = Y0[T] - Y0[i]
            d = math.sqrt((dx * dx) + (dy * dy))
            if d == 0.0:
                desx = 0.0
                desy = 0.0
            else:
                ux = dx / d
                uy = dy / d
                if d > (C07 * rng[i]):  # approach at full speed
                    s = speed[i]
                    desx = ux * s
                    desy = uy * s
                elif d < (C04 * rng[i]):  # kite away at half speed
                    s = C05 * speed[i]
                    desx = -(ux * s)
                    desy = -(uy * s)
                else:  # circle-strafe, counter-clockwise
                    s = C07 * speed[i]
                    desx = -(uy * s)
                    desy = ux * s
        nvx = vx[i] + ((desx - vx[i]) * DT)
        nvy = vy[i] + ((desy - vy[i]) * DT)
        m = math.sqrt((nvx * nvx) + (nvy * nvy))
        if m > speed[i]:
            k = speed[i] / m
            nvx = nvx * k
            nvy = nvy * k
        vx_a[i] = nvx
        vy_a[i] = nvy
        x[i] = X0[i] + (nvx * DT)
        y[i] = Y0[i] + (nvy * DT)
        x_a[i] = x[i]
        y_a[i] = y[i]
        m2 = math.sqrt((nvx * nvx) + (nvy * nvy))
        if m2 > DT:
            heading_a[i] = det_atan2(nvy, nvx)

    # Phase 3 - attacks (reads the new x, y; writes hp, last_fired).
    base = _variance_base(seed, t)
    attacks = []
    fired = []
    received = {}
    for i in L:  # L is ascending, ids are increasing: rows come out by ascending attacker id
        T = target[i]
        if T == -1:
            continue
        dx = x[T] - x[i]
        dy = y[T] - y[i]
        d = math.sqrt((dx * dx) + (dy * dy))
        fires = (d <= rng[i]) and ((t - last_fired[i]) >= fire_rate[i])  # exact (Python ints)
        if fires:
            v = _variance_from_base(base, ids[i])
            raw = (attack[i] - (defense[T] * C05)) * v
            dmg = max(1, math.floor(raw))  # floor then clamp: >= 1 always
            dmg = min(dmg, _DMG_CAP)  # only beyond the preconditions (raw <= 1.2e6); as in C
            attacks.append((0, t, ids[i], ids[T], dmg))
            fired.append(i)
            received[T] = received.get(T, 0) + dmg
    for j, total in received.items():
        hp_a[j] = max(0, HP0[j] - total)
    for i in fired:
        last_fired_a[i] = t  # only the ships that fired (not the ships that were hit)

    # Phase 4 - deaths.
    deaths = [(1, t, ids[j], -1, 0) for j in L if int(hp_a[j]) == 0]
    return _events_array(attacks + deaths)


# --- selection of the implementation ---------------------------------------------------------

_ext = load("_combat")
COMPILED = _ext is not None
_compiled_tick = _ext.combat_tick if COMPILED else None


def combat_tick(state, tick, seed) -> np.ndarray:
    """Advance ``state`` by one combat tick IN PLACE and return the events (specs/combat.md §4).

    ``state``: dict with the 16 arrays of spec §1, all C-contiguous, writeable, length N:
    int64 ``id`` (>= 0, strictly increasing), ``team``, ``max_hp``, ``hp`` (0 = dead),
    ``fire_rate`` (ticks), ``last_fired`` (tick), ``target_id`` (-1 = none); float64 ``x``, ``y``
    (world units), ``vx``, ``vy`` (world units / s), ``heading`` (radians), ``attack``,
    ``defense``, ``speed`` (world units / s), ``range`` (world units). The arrays are mutated in
    place (same objects, dtypes and shapes afterwards). ``tick``: int in [0, 2**63);
    ``seed``: int in [0, 2**64).

    Returns an int64 array of shape (E, 5), rows ``(kind, tick, a, b, value)``: kind 0 = attack
    ``(0, tick, attacker id, target id, damage)`` by ascending attacker id, then kind 1 =
    destroyed ``(1, tick, ship id, -1, 0)`` by ascending id; shape (0, 5) when there are none.

    Raises ``CombatInputError`` (a ValueError) for a missing array, wrong shape, non-contiguous
    or read-only array, length mismatch, ids not strictly increasing, tick/seed out of range,
    a non-finite x, y or range of a live ship (the state is then left unchanged);
    ``CombatDtypeError`` (a TypeError) for a non-array or wrong dtype.

    Uses the compiled kernel (``_combat.pyx``, O(N) per tick) when :data:`COMPILED`, else the
    twin :func:`combat_tick_py`; both are bit-identical.
    """
    if _compiled_tick is None:
        return combat_tick_py(state, tick, seed)
    arrays, _n, tick, seed = _validate(state, tick, seed)
    return _compiled_tick(*arrays, tick, seed)

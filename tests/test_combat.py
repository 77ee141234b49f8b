"""Combat kernel (specs/combat.md): the §9 vectors, then the compiled kernel, the pure-Python
twin and the NumPy/SciPy peer compared bit for bit (floats as raw 64-bit patterns) on
hypothesis-generated battles."""

import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starhold.kernels import combat, combat_numpy

if combat.COMPILED:
    from starhold.kernels import _combat

# --- implementations under test ---------------------------------------------------------------

TICKS = {"twin": combat.combat_tick_py, "numpy": combat_numpy.combat_tick_numpy}
if combat.COMPILED:
    TICKS["compiled"] = _combat_tick = combat.combat_tick
IMPL_NAMES = sorted(TICKS)

# helper functions of spec §6/§7 per implementation: (splitmix64, variance, det_atan2)
HELPERS = {
    "twin": (combat.splitmix64, combat.variance, combat.det_atan2),
    "numpy": (
        lambda z: int(combat_numpy.splitmix64_numpy(np.array([z], dtype=np.uint64))[0]),
        lambda s, t, i: float(combat_numpy.variance_numpy(s, t, np.array([i], dtype=np.int64))[0]),
        lambda y, x: float(combat_numpy.det_atan2_numpy(np.array([y]), np.array([x]))[0]),
    ),
}
if combat.COMPILED:
    HELPERS["compiled"] = (_combat.splitmix64, _combat.variance, _combat.det_atan2)

# --- spec §9 vectors --------------------------------------------------------------------------

SPLITMIX = [(0x0, 0xE220A8397B1DCDAF), (0x1, 0x910A2DEC89025CC1),
            (0xFFFFFFFFFFFFFFFF, 0xE4D971771B652C20), (0x75BCD15, 0x223C74D93DEB7679)]
VARIANCE = [((0, 0, 0), "0x1.b601f7c9c730ap-1"),
            ((123456789, 42, 7), "0x1.ef603c898fca2p-1"),
            ((18446744073709551615, 1000, 150007), "0x1.f65a4ac0a06a7p-1"),
            ((20250611, 3, 10), "0x1.04d57b0ddb1a4p+0")]
ATAN2 = [((1.0, 1.0), "0x1.921fb54442d18p-1"), ((0.0, -3.0), "0x1.921fb54442d18p+1"),
         ((-0.0, -3.0), "0x1.921fb54442d18p+1"), ((2.5, 0.0), "0x1.921fb54442d18p+0"),
         ((-1.0, 2.0), "-0x1.dac670561bb4fp-2"), ((0.7, -0.3), "0x1.f9c6b238c6435p+0"),
         ((-12.25, -12.5), "-0x1.2ee2c27b8589fp+1"), ((0.001, 5.0), "0x1.a36e2e53f1004p-13")]
CONSTANTS = {  # spec §8
    "0.1": "0x1.999999999999ap-4", "0.2": "0x1.999999999999ap-3", "0.3": "0x1.3333333333333p-2",
    "0.4": "0x1.999999999999ap-2", "0.5": "0x1.0000000000000p-1", "0.66": "0x1.51eb851eb851fp-1",
    "0.7": "0x1.6666666666666p-1", "0.8": "0x1.999999999999ap-1", "1000.0": "0x1.f400000000000p+9",
    "4.0": "0x1.0000000000000p+2", "PI": "0x1.921fb54442d18p+1", "PIO2": "0x1.921fb54442d18p+0",
    "PIO4": "0x1.921fb54442d18p-1", "MB": "0x1.1a62633145c07p-54", "HALF_MB": "0x1.1a62633145c07p-55",
    "MB2": "0x1.1a62633145c07p-53", "P0": "-0x1.c007fa1f72594p-1", "P1": "-0x1.028545b6b807ap+4",
    "P2": "-0x1.2c08c36880273p+6", "P3": "-0x1.eb8bf2d05ba25p+6", "P4": "-0x1.03669fd28ec8ep+6",
    "Q0": "0x1.8dbc45b14603cp+4", "Q1": "0x1.4a0dd43b8fa25p+7", "Q2": "0x1.b0e18d2e2be3bp+8",
    "Q3": "0x1.e563f13b049eap+8", "Q4": "0x1.8519efbbd62ecp+7", "2**-53": "0x1.0000000000000p-53",
}
TWIN_CONSTANTS = {
    "0.1": combat.DT, "0.2": combat.C02, "0.3": combat.C03, "0.4": combat.C04, "0.5": combat.C05,
    "0.66": combat.C066, "0.7": combat.C07, "0.8": combat.C08, "1000.0": combat.C1000,
    "4.0": combat.C4, "PI": combat.PI, "PIO2": combat.PIO2, "PIO4": combat.PIO4, "MB": combat.MB,
    "HALF_MB": combat.HALF_MB, "MB2": combat.MB2, "P0": combat.P0, "P1": combat.P1,
    "P2": combat.P2, "P3": combat.P3, "P4": combat.P4, "Q0": combat.Q0, "Q1": combat.Q1,
    "Q2": combat.Q2, "Q3": combat.Q3, "Q4": combat.Q4, "2**-53": combat.TWO_M53,
}

# the six-ship scenario of §9 (seed 99, ticks 0..2), as printed by the spec (repr round-trips)
SIX_INITIAL = {'id': [7, 10, 13, 16, 19, 22], 'team': [1, 1, 0, 0, 1, 1], 'x': [0.0, 0.0, 20.0, 20.0, 30.0, 0.0], 'y': [0.0, 0.0, 0.0, 0.0, 20.0, 30.0], 'vx': [0.0, 0.0, -1.0, 3.0, 2.0, 0.0], 'vy': [0.0, 2.0, 3.0, 1.0, 0.0, -3.0], 'heading': [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 'max_hp': [200, 200, 200, 200, 200, 200], 'hp': [100, 200, 100, 200, 100, 30], 'attack': [30.0, 20.0, 30.0, 20.0, 20.0, 30.0], 'defense': [20.0, 20.0, 20.0, 20.0, 70.0, 10.0], 'speed': [0.0, 6.0, 2.0, 6.0, 0.0, 2.0], 'range': [30.0, 40.0, 50.0, 30.0, 30.0, 50.0], 'fire_rate': [5, 0, 2, 0, 0, 5], 'last_fired': [-1, -1, -1000000000, -1000000000, -1, -1000000000], 'target_id': [-1, -1, -1, -1, -1, -1]}
SIX_EXPECTED = [  # (events, state) after ticks 0, 1, 2
    ([[0, 0, 10, 13, 8], [0, 0, 13, 22, 29], [0, 0, 16, 7, 10], [0, 0, 19, 13, 9], [0, 0, 22, 13, 21]],
     {'id': [7, 10, 13, 16, 19, 22], 'team': [1, 1, 0, 0, 1, 1], 'x': [0.0, 0.0, 19.933478932122217, 20.27, 30.0, 0.00773490452346309], 'y': [0.0, 0.22199999999999998, 0.1886132220402359, 0.048000000000000015, 20.0, 29.800149627841193], 'vx': [0.0, 0.0, -0.6652106787778339, 2.7, 0.0, 0.07734904523463089], 'vy': [0.0, 2.2199999999999998, 1.886132220402359, 0.4800000000000001, 0.0, -1.9985037215880515], 'heading': [0.0, 1.5707963267948966, 1.9098611873596028, 0.17593962545252786, 0.0, -1.5321121566482272], 'max_hp': [200, 200, 200, 200, 200, 200], 'hp': [90, 200, 62, 200, 100, 1], 'attack': [30.0, 20.0, 30.0, 20.0, 20.0, 30.0], 'defense': [20.0, 20.0, 20.0, 20.0, 70.0, 10.0], 'speed': [0.0, 6.0, 2.0, 6.0, 0.0, 2.0], 'range': [30.0, 40.0, 50.0, 30.0, 30.0, 50.0], 'fire_rate': [5, 0, 2, 0, 0, 5], 'last_fired': [-1, 0, 0, 0, 0, 0], 'target_id': [13, 13, 22, 7, 13, 13]}),
    ([[0, 1, 10, 13, 11], [0, 1, 16, 7, 9], [0, 1, 19, 13, 9]],
     {'id': [7, 10, 13, 16, 19, 22], 'team': [1, 1, 0, 0, 1, 1], 'x': [0.0, 7.034611029087347e-05, 19.862444409687154, 20.51309945704724, 30.0, 0.025861879939637355], 'y': [0.0, 0.4637999410883487, 0.3749581999468292, 0.04920011775854899, 20.0, 29.603691214827887], 'vx': [0.0, 0.0007034611029087347, -0.7103452243506254, 2.4309945704724174, 0.0, 0.18126975416174265], 'vy': [0.0, 2.4179994108834872, 1.8634497790659328, 0.012001177585489742, 0.0, -1.964584130133056], 'heading': [0.0, 1.5705053998906566, 1.9349906449931087, 0.004936695555671613, 0.0, -1.4787880751099398], 'max_hp': [200, 200, 200, 200, 200, 200], 'hp': [81, 200, 42, 200, 100, 1], 'attack': [30.0, 20.0, 30.0, 20.0, 20.0, 30.0], 'defense': [20.0, 20.0, 20.0, 20.0, 70.0, 10.0], 'speed': [0.0, 6.0, 2.0, 6.0, 0.0, 2.0], 'range': [30.0, 40.0, 50.0, 30.0, 30.0, 50.0], 'fire_rate': [5, 0, 2, 0, 0, 5], 'last_fired': [-1, 1, 0, 1, 1, 0], 'target_id': [13, 13, 22, 7, 13, 13]}),
    ([[0, 2, 10, 13, 11], [0, 2, 13, 22, 24], [0, 2, 16, 7, 8], [0, 2, 19, 13, 8], [1, 2, 22, -1, 0]],
     {'id': [7, 10, 13, 16, 19, 22], 'team': [1, 1, 0, 0, 1, 1], 'x': [0.0, 0.00032151610979250255, 19.787282225893886, 20.73198970397126, 30.0, 0.053407271415906024], 'y': [0.0, 0.7234194679369981, 0.5592174590891882, 0.008280344546861808, 20.0, 29.410329864089487], 'vx': [0.0, 0.0025116999950162903, -0.7516218379326811, 2.188902469240193, 0.0, 0.27545391476268666], 'vy': [0.0, 2.596195268486493, 1.8425925914235894, -0.40919773211687177, 0.0, -1.9336135073840004], 'heading': [0.0, 1.5698288729050134, 1.9581076194601834, -0.18480881415224495, 0.0, -1.429292886177524], 'max_hp': [200, 200, 200, 200, 200, 200], 'hp': [73, 200, 23, 200, 100, 0], 'attack': [30.0, 20.0, 30.0, 20.0, 20.0, 30.0], 'defense': [20.0, 20.0, 20.0, 20.0, 70.0, 10.0], 'speed': [0.0, 6.0, 2.0, 6.0, 0.0, 2.0], 'range': [30.0, 40.0, 50.0, 30.0, 30.0, 50.0], 'fire_rate': [5, 0, 2, 0, 0, 5], 'last_fired': [-1, 2, 2, 2, 2, 0], 'target_id': [13, 13, 22, 7, 13, 13]}),
]

FLOATS = set(combat.FLOAT_FIELDS)


def as_state(d):
    return {k: np.array(v, dtype=np.float64 if k in FLOATS else np.int64) for k, v in d.items()}


def copy_state(s):
    return {k: v.copy() for k, v in s.items()}


def bits(a):
    """Raw 64-bit patterns (so -0.0 != +0.0 and NaN payloads count)."""
    return np.ascontiguousarray(a).view(np.int64)


def assert_same_state(a, b, where=""):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, (where, k)
        assert np.array_equal(bits(a[k]), bits(b[k])), (where, k, a[k], b[k])


def fhex(v):
    return float(v).hex()


# --- §9 vectors: splitmix64, variance, det_atan2, constants ---------------------------------------


@pytest.mark.parametrize("impl", sorted(HELPERS))
def test_splitmix64_vectors(impl):
    splitmix64 = HELPERS[impl][0]
    for z, out in SPLITMIX:
        assert splitmix64(z) == out, (impl, hex(z))


@pytest.mark.parametrize("impl", sorted(HELPERS))
def test_variance_vectors(impl):
    variance = HELPERS[impl][1]
    for args, out in VARIANCE:
        v = variance(*args)
        assert fhex(v) == out, (impl, args, fhex(v))
        assert struct.pack("<d", v) == struct.pack("<d", float.fromhex(out))


@pytest.mark.parametrize("impl", sorted(HELPERS))
def test_det_atan2_vectors(impl):
    det_atan2 = HELPERS[impl][2]
    for (y, x), out in ATAN2:
        r = det_atan2(y, x)
        assert fhex(r) == out, (impl, y, x, fhex(r))
        assert struct.pack("<d", r) == struct.pack("<d", float.fromhex(out))


def test_constants_are_the_spec_binary64_values():
    for name, hexval in CONSTANTS.items():
        assert fhex(TWIN_CONSTANTS[name]) == fhex(float.fromhex(hexval)), name
    if combat.COMPILED:
        compiled = _combat._constants()
        assert set(compiled) == set(CONSTANTS)
        for name, hexval in CONSTANTS.items():
            assert fhex(compiled[name]) == fhex(float.fromhex(hexval)), name


def test_helpers_agree_on_random_inputs():
    rng = np.random.default_rng(11)
    k = 3000
    y = rng.standard_normal(k) * 10.0 ** rng.integers(-8, 9, k)
    x = rng.standard_normal(k) * 10.0 ** rng.integers(-8, 9, k)
    y[:50], x[:50] = 0.0, rng.standard_normal(50)          # on the x axis
    y[50:100], x[50:100] = rng.standard_normal(50), 0.0    # on the y axis
    y[100:150], x[100:150] = -0.0, -rng.random(50) - 0.1   # -0.0 on the negative x axis
    x[150:200] = y[150:200] * rng.choice([1.0, -1.0], 50)  # |x| == |y| (the swap boundary)
    y[200:260] = x[200:260] * rng.uniform(0.65, 0.67, 60)  # around the a <= 0.66 branch
    twin = np.array([combat.det_atan2(a, b) for a, b in zip(y.tolist(), x.tolist())])
    vec = combat_numpy.det_atan2_numpy(y, x)
    assert np.array_equal(bits(twin), bits(vec))
    if combat.COMPILED:
        comp = np.array([_combat.det_atan2(a, b) for a, b in zip(y.tolist(), x.tolist())])
        assert np.array_equal(bits(twin), bits(comp))
    # the approximation itself is within a few ulp of the true angle (except that the spec
    # maps y = -0.0, x < 0 to +pi where arctan2 gives -pi)
    ref = np.arctan2(y, x)
    ok = np.abs(twin - ref) <= 4 * np.spacing(np.abs(ref))
    assert ok[:100].all() and ok[150:].all()
    assert (twin[100:150] == np.pi).all() and (ref[100:150] == -np.pi).all()
    # variance: all implementations, random seeds / ticks / ids
    seeds = [int(s) for s in rng.integers(0, 2**63, 200)] + [0, 2**64 - 1]
    for s in seeds:
        t = int(rng.integers(0, 2**40))
        ids = rng.integers(0, 2**62, 5)
        vec = combat_numpy.variance_numpy(s, t, ids)
        for i, v in zip(ids.tolist(), vec.tolist()):
            assert fhex(combat.variance(s, t, i)) == fhex(v)
            if combat.COMPILED:
                assert fhex(_combat.variance(s, t, i)) == fhex(v)
            assert 0.8 <= v <= 1.2


# --- §9 six-ship scenario -------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_six_ship_scenario(impl):
    tick = TICKS[impl]
    state = as_state(SIX_INITIAL)
    for t, (events, expected) in enumerate(SIX_EXPECTED):
        ev = np.asarray(tick(state, t, 99))
        assert ev.dtype == np.int64 and ev.shape == (len(events), 5)
        assert ev.tolist() == events, (impl, t)
        assert_same_state(state, as_state(expected), f"{impl} tick {t}")


# --- hand-made rules (semantics that the three could only share by misreading the spec) ----------


def battle(rows, **defaults):
    """A state from per-ship dicts (missing fields from ``defaults`` or neutral values)."""
    base = dict(team=0, x=0.0, y=0.0, vx=0.0, vy=0.0, heading=0.0, max_hp=100, hp=100,
                attack=10.0, defense=0.0, speed=0.0, range=30.0, fire_rate=0,
                last_fired=-1_000_000_000, target_id=-1)
    base.update(defaults)
    cols = {k: [] for k in combat.STATE_FIELDS}
    for i, row in enumerate(rows):
        full = {**base, "id": i, **row}
        for k in combat.STATE_FIELDS:
            cols[k].append(full[k])
    return as_state(cols)


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_simultaneous_kill_and_last_fired_only_for_shooters(impl):
    tick = TICKS[impl]
    s = battle([dict(team=0, x=0.0, hp=1), dict(team=1, x=10.0, hp=1),
                dict(team=1, x=-5.0, hp=50, fire_rate=10, last_fired=5)])
    ev = np.asarray(tick(s, 7, 1))
    # ships 0 and 1 shoot each other and both die; ship 2 is on cooldown (7 - 5 < 10)
    assert ev[:, 0].tolist() == [0, 0, 1, 1]
    assert ev[:2, 2:4].tolist() == [[0, 2], [1, 0]] or ev[:2, 2:4].tolist() == [[0, 1], [1, 0]]
    assert ev[2:, 2].tolist() == [0, 1] and ev[2:, 3].tolist() == [-1, -1]
    assert s["hp"][:2].tolist() == [0, 0]
    assert s["last_fired"].tolist() == [7, 7, 5]  # the hit ship 2 keeps its own last_fired
    # dead ships are skipped entirely from now on
    before = copy_state(s)
    ev = np.asarray(tick(s, 8, 1))
    assert ev.shape == (0, 5) or ev[:, 2].tolist() == [2] * len(ev)
    for k in s:
        assert np.array_equal(bits(s[k][:2]), bits(before[k][:2])), k


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_threat_prefers_a_weak_far_enemy_and_sensor_ties_go_to_lowest_id(impl):
    tick = TICKS[impl]
    s = battle([dict(team=0, range=25.0, fire_rate=100), dict(team=1, x=10.0, hp=1000, range=1.0),
                dict(team=1, x=20.0, hp=10, range=1.0)])
    tick(s, 0, 3)
    assert s["target_id"][0] == 2  # thr 0.3*990 + 0.5*980 beats 0.3*0 + 0.5*990
    # nothing in range: nearest within 4 * range, equal distances -> lowest id
    s = battle([dict(id=5, team=0, range=10.0), dict(id=8, team=1, x=30.0, range=0.0),
                dict(id=9, team=2, x=-30.0, range=0.0), dict(id=12, team=1, y=30.0, range=0.0)])
    ev = np.asarray(tick(s, 0, 3))
    assert s["target_id"].tolist() == [8, -1, -1, -1]  # range 0: sensor radius 0 too
    assert ev.shape == (0, 5)
    # out of sensor range: no target, and the ship just coasts toward zero velocity
    s = battle([dict(team=0, range=5.0, vx=1.0, speed=2.0), dict(team=1, x=21.0, range=0.0)])
    tick(s, 0, 3)
    assert s["target_id"].tolist() == [-1, -1]
    assert s["vx"][0] == 1.0 + ((0.0 - 1.0) * 0.1)


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_colocated_enemies_with_zero_range_fight(impl):
    tick = TICKS[impl]
    s = battle([dict(team=0, range=0.0, speed=3.0, attack=0.0, defense=50.0),
                dict(team=1, range=0.0, speed=3.0, hp=0), dict(team=2, range=0.0, speed=0.0)])
    ev = np.asarray(tick(s, 0, 0))
    assert s["target_id"].tolist() == [2, -1, 0]
    assert ev[:, :4].tolist() == [[0, 0, 0, 2], [0, 0, 2, 0]]
    assert ev[0, 4] == 1  # damage clamps to >= 1 even for negative raw damage
    assert s["hp"].tolist()[1] == 0 and s["vx"][0] == 0.0  # d == 0: no steering


# --- hypothesis: compiled vs twin vs numpy, bit for bit -------------------------------------------

INT64_MIN = -(2**63)


def make_battle(rs, n, *, teams, layout, scale, offset, ranges, equal_stats, dead, dup, id_base,
                team_base, first_tick):
    """A battle of n ships from a numpy Generator and the knobs hypothesis chose."""
    if layout == "lattice":
        step = rs.choice([1.0, 10.0, 0.25])
        k = max(1, int(scale / step) if scale else 1)
        k = min(k, 6)
        x = rs.integers(-k, k + 1, n) * step
        y = rs.integers(-k, k + 1, n) * step
    elif layout == "uniform":
        x = rs.uniform(-scale, scale, n)
        y = rs.uniform(-scale, scale, n)
    elif layout == "clustered":
        c = rs.uniform(-scale, scale, (3, 2))
        pick = rs.integers(0, 3, n)
        x = c[pick, 0] + rs.uniform(-1.0, 1.0, n)
        y = c[pick, 1] + rs.uniform(-1.0, 1.0, n)
    elif layout == "line":
        x = np.arange(n) * rs.choice([1.0, 7.5, 30.0]) - scale
        y = np.zeros(n)
    else:  # "spread": over the whole allowed square, ranges small: the grid's large-G path
        x = rs.uniform(-1e9, 1e9, n)
        y = rs.uniform(-1e9, 1e9, n)
        offset = 0.0
    if n and dup:
        same = rs.random(n) < dup
        src = rs.integers(0, n, n)
        x = np.where(same, x[src], x)
        y = np.where(same, y[src], y)
    x = np.clip(x + offset, -1e9, 1e9)
    y = np.clip(y + offset, -1e9, 1e9)
    if ranges == "zero":
        rng_ = np.zeros(n)
    elif ranges == "tiny":
        rng_ = rs.choice([0.0, 0.5, 1.0, 2.5], n)
    elif ranges == "realistic":
        rng_ = rs.uniform(20.0, 60.0, n)
        rng_ = np.where(rs.random(n) < 0.5, np.round(rng_), rng_)
    elif ranges == "equal":
        rng_ = np.full(n, rs.choice([10.0, 30.0]))
    elif ranges == "mixed":
        rng_ = rs.choice([0.0, 1.0, 20.0, 60.0, 300.0, 2000.0], n)
    else:  # "huge"
        rng_ = rs.choice([1e5, 1e6], n)
    if equal_stats:
        hp = np.full(n, 100)
        attack = np.full(n, 30.0)
        defense = np.full(n, 10.0)
    else:
        hp = rs.choice([1, 5, 30, 200, 1000], n)
        attack = rs.choice([0.0, 10.0, 30.0, 500.0, 1e6], n)
        defense = rs.choice([0.0, 20.0, 100.0, 1e6], n)
    hp = np.where(rs.random(n) < dead, 0, hp)
    return {
        "id": (id_base + np.cumsum(rs.integers(1, 5, n))).astype(np.int64),
        "team": (team_base + rs.integers(0, teams, n)).astype(np.int64),
        "x": x.astype(np.float64),
        "y": y.astype(np.float64),
        "vx": rs.choice([0.0, -0.0, 1.5, -3.0, 10.0], n),
        "vy": rs.choice([0.0, 2.0, -4.0, 0.05], n),
        "heading": rs.choice([0.0, 1.0, -3.0], n),
        "max_hp": np.full(n, 1000, dtype=np.int64),
        "hp": hp.astype(np.int64),
        "attack": attack.astype(np.float64),
        "defense": defense.astype(np.float64),
        "speed": rs.choice([0.0, 2.0, 6.0, 8.0], n),
        "range": rng_.astype(np.float64),
        "fire_rate": rs.choice([0, 1, 2, 5], n).astype(np.int64),
        "last_fired": rs.choice([-1_000_000_000, -1, 0, first_tick, first_tick + 2, INT64_MIN],
                                n).astype(np.int64),
        "target_id": rs.choice([-1, 0, 3], n).astype(np.int64),
    }


@st.composite
def battles(draw):
    n = draw(st.integers(0, 60))
    knobs = dict(
        teams=draw(st.integers(1, 6)),
        layout=draw(st.sampled_from(["lattice", "uniform", "clustered", "line", "spread"])),
        scale=draw(st.sampled_from([0.0, 3.0, 40.0, 300.0, 5000.0])),
        offset=draw(st.sampled_from([0.0, 999_000_000.0, -999_000_000.0, 12345.678])),
        ranges=draw(st.sampled_from(["zero", "tiny", "realistic", "equal", "mixed", "huge"])),
        equal_stats=draw(st.booleans()),
        dead=draw(st.sampled_from([0.0, 0.2, 0.6])),
        dup=draw(st.sampled_from([0.0, 0.2, 0.5])),
        id_base=draw(st.sampled_from([0, 1000, 2**40])),
        team_base=draw(st.sampled_from([0, -3, 2**50])),
        first_tick=draw(st.sampled_from([0, 7, 2**40])),
    )
    rs = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    seed = draw(st.sampled_from([0, 99, 2**64 - 1])) if draw(st.booleans()) else draw(
        st.integers(0, 2**64 - 1))
    return make_battle(rs, n, **knobs), seed, knobs["first_tick"]


def run_all(state, first_tick, seed, ticks):
    """Run every implementation on its own copy; compare events and full state each tick."""
    states = {name: copy_state(state) for name in IMPL_NAMES}
    for t in range(first_tick, first_tick + ticks):
        ref = np.asarray(TICKS["twin"](states["twin"], t, seed))
        assert ref.dtype == np.int64 and ref.ndim == 2 and ref.shape[1] == 5
        for name in IMPL_NAMES:
            if name == "twin":
                continue
            ev = np.asarray(TICKS[name](states[name], t, seed))
            assert ev.dtype == np.int64 and ev.shape == ref.shape, (name, t)
            assert np.array_equal(ev, ref), (name, t, ev.tolist(), ref.tolist())
            assert_same_state(states[name], states["twin"], f"{name} tick {t}")
    return states["twin"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(battles())
def test_implementations_agree_bit_for_bit(case):
    state, seed, first_tick = case
    run_all(state, first_tick, seed, ticks=4)


def sensor_battle(n, seed):
    """Sparse battle: most ships have no enemy in range but one within 4 * range, so the sensor
    fallback searches rings of grid cells (the extent is ~12 cells of Rmax across)."""
    rs = np.random.default_rng(seed)
    side = 12 * 60.0
    rng_ = rs.choice([5.0, 40.0, 50.0, 60.0], n)
    rng_[0] = 60.0
    return make_battle(rs, n, teams=3, layout="uniform", scale=side / 2, offset=0.0,
                       ranges="zero", equal_stats=False, dead=0.1, dup=0.0, id_base=0,
                       team_base=0, first_tick=0) | {"range": rng_}


def test_sensor_fallback_over_rings_of_cells():
    state = sensor_battle(80, 2)
    X0, Y0, T0 = state["x"].copy(), state["y"].copy(), state["team"]
    final = run_all(state, 0, 12345, ticks=2)
    # the scenario does exercise the fallback: some targets are beyond weapon range
    tgt = np.searchsorted(state["id"], final["target_id"])
    has = (final["target_id"] >= 0) & (state["hp"] > 0)  # dead ships keep their old target_id
    d = np.hypot(X0[tgt[has]] - X0[has], Y0[tgt[has]] - Y0[has])
    # nearest enemies beyond G = Rmax (ring 2 scanned) and beyond 2 G (ring 3 scanned)
    assert (d > state["range"][has]).sum() > 20 and (d > 60.0).sum() > 5 and (d > 120.0).any()
    assert (T0[tgt[has]] != T0[has]).all()


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_sensor_ties_across_far_rings_go_to_lowest_id(impl):
    """Enemies at exactly the same distance 200 (about 3.3 cells of G = Rmax away, in different
    rings and directions): the lowest id wins; one slightly nearer wins over all of them."""
    rs = np.random.default_rng(4)
    allies = [dict(team=0, x=float(rs.uniform(-300, 300)), y=float(rs.uniform(-300, 300)), range=1.0)
              for _ in range(120)]
    me = dict(team=0, range=60.0)
    far = [dict(team=1, x=200.0, range=0.0), dict(team=2, y=-200.0, range=0.0),
           dict(team=1, x=-120.0, y=160.0, range=0.0), dict(team=3, x=-200.0, range=0.0)]
    for order in ([0, 1, 2, 3], [2, 3, 1, 0]):
        ships = [me] + [far[k] for k in order] + allies
        s = battle(ships)
        run_all(s, 0, 1, ticks=1)
        TICKS[impl](s, 0, 1)
        assert s["target_id"][0] == 1
    ships = [me] + far + [dict(team=1, x=199.99, y=1.0, range=0.0)] + allies
    s = battle(ships)
    run_all(s, 0, 1, ticks=1)
    TICKS[impl](s, 0, 1)
    assert s["target_id"][0] == 5


def large_battle(n, seed):
    rs = np.random.default_rng(seed)
    side = (n * 900.0) ** 0.5
    return {
        "id": np.arange(n, dtype=np.int64) * 2 + 1,
        "team": rs.integers(0, 4, n).astype(np.int64),
        "x": rs.uniform(0.0, side, n),
        "y": rs.uniform(0.0, side, n),
        "vx": rs.uniform(-2.0, 2.0, n),
        "vy": rs.uniform(-2.0, 2.0, n),
        "heading": np.zeros(n),
        "max_hp": np.full(n, 200, dtype=np.int64),
        "hp": rs.integers(0, 201, n).astype(np.int64),
        "attack": rs.uniform(10.0, 40.0, n),
        "defense": rs.uniform(5.0, 30.0, n),
        "speed": rs.uniform(2.0, 8.0, n),
        "range": rs.uniform(20.0, 60.0, n),
        "fire_rate": rs.integers(0, 6, n).astype(np.int64),
        "last_fired": np.full(n, -1_000_000_000, dtype=np.int64),
        "target_id": np.full(n, -1, dtype=np.int64),
    }


def test_large_battle_compiled_vs_numpy():
    state = large_battle(2000, 2024)
    a, b = copy_state(state), copy_state(state)
    fast = TICKS.get("compiled", TICKS["twin"])
    events = 0
    for t in range(5):
        ea = np.asarray(fast(a, t, 77))
        eb = np.asarray(TICKS["numpy"](b, t, 77))
        assert np.array_equal(ea, eb), t
        assert_same_state(a, b, f"tick {t}")
        events += len(ea)
    assert events > 1000 and (a["hp"] == 0).sum() > (state["hp"] == 0).sum()


def dense_battle(n, seed, area_per_ship=195.0):
    """About 20 enemies within weapon range of each ship (the dense battle of issue 17)."""
    state = large_battle(n, seed)
    side = (n * area_per_ship) ** 0.5
    rs = np.random.default_rng(seed + 1)
    state["x"] = rs.uniform(0.0, side, n)
    state["y"] = rs.uniform(0.0, side, n)
    state["hp"] = rs.integers(1, 201, n).astype(np.int64)
    return state


def test_dense_battle_compiled_vs_numpy():
    """Many in-range enemies per ship: the compiled kernel's pruned threat search (and its
    target hints from the previous tick) give the same events and states as the NumPy peer."""
    state = dense_battle(1500, 7)
    a, b = copy_state(state), copy_state(state)
    fast = TICKS.get("compiled", TICKS["twin"])
    for t in range(4):
        ea = np.asarray(fast(a, t, 2**64 - 5))
        eb = np.asarray(TICKS["numpy"](b, t, 2**64 - 5))
        assert np.array_equal(ea, eb), t
        assert_same_state(a, b, f"tick {t}")
    assert (a["target_id"] >= 0).sum() > 1400


def test_interleaved_battles_agree_with_the_twin():
    """Two battles ticked alternately (the compiled kernel's cached block, and the target hints
    it holds, then belong to the other battle): every tick still equals the twin's."""
    battles = [dense_battle(60, 1, 150.0), dense_battle(45, 2, 300.0)]
    battles[1]["id"] = battles[1]["id"] * 3  # other ids (still increasing)
    ref = [copy_state(s) for s in battles]
    for t in range(4):
        for s, r in zip(battles, ref):
            ev = np.asarray(TICKS.get("compiled", TICKS["twin"])(s, t, 11))
            assert np.array_equal(ev, np.asarray(combat.combat_tick_py(r, t, 11))), t
            assert_same_state(s, r, f"tick {t}")


def test_battle_crossing_the_density_rule_agrees_with_the_twin():
    """The compiled kernel picks its grid (and whether last tick's targets seed the search) from
    the density of each tick: a battle gathered and spread out again between ticks (~38 and
    ~1.2 ships per Rmax**2 of its box, the rule's threshold being 8: dense, sparse, dense...;
    hints written by a sparse tick are read by a dense one) equals the twin."""
    state = dense_battle(80, 3, 150.0)
    state["x"] *= 4.0
    state["y"] *= 4.0
    ref = copy_state(state)
    for t in range(6):
        scale = 16.0 if t % 2 else 0.0625
        for s in (state, ref):
            s["x"] *= scale
            s["y"] *= scale
        ev = np.asarray(TICKS.get("compiled", TICKS["twin"])(state, t, 5))
        assert np.array_equal(ev, np.asarray(combat.combat_tick_py(ref, t, 5))), t
        assert_same_state(state, ref, f"tick {t}")
    assert (state["target_id"] >= 0).sum() > 0


# --- in place, dtypes, invalid input -----------------------------------------------------------


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_arrays_are_updated_in_place(impl):
    state = large_battle(300, 3)
    objects = {k: v for k, v in state.items()}
    before = copy_state(state)
    ev = np.asarray(TICKS[impl](state, 0, 5))
    assert set(state) == set(objects)
    for k, v in state.items():
        assert v is objects[k], k
        assert v.dtype == before[k].dtype and v.shape == before[k].shape and v.flags.c_contiguous
    assert not np.array_equal(state["x"], before["x"]) and len(ev) > 0
    assert np.array_equal(state["id"], before["id"]) and np.array_equal(state["max_hp"], before["max_hp"])


def _bad_cases():
    def drop(s):
        del s["range"]

    def f32(s):
        s["x"] = s["x"].astype(np.float32)

    def i32(s):
        s["hp"] = s["hp"].astype(np.int32)

    def floaty_int(s):
        s["team"] = s["team"].astype(np.float64)

    def as_list(s):
        s["y"] = s["y"].tolist()

    def strided(s):
        s["vx"] = np.zeros(2 * len(s["vx"]))[::2]

    def short(s):
        s["speed"] = s["speed"][:-1].copy()

    def two_d(s):
        s["attack"] = s["attack"].reshape(-1, 1)

    def readonly(s):
        s["vy"].flags.writeable = False

    def ids_not_increasing(s):
        s["id"][3] = s["id"][2]

    def negative_id(s):
        s["id"][0] = -1

    def nan_x(s):
        s["hp"][4] = 10
        s["x"][4] = np.nan

    def inf_range(s):
        s["hp"][7] = 10
        s["range"][7] = np.inf

    return [(drop, ValueError), (drop, KeyError), (f32, TypeError), (i32, TypeError),
            (floaty_int, TypeError), (as_list, TypeError), (strided, ValueError),
            (short, ValueError), (two_d, ValueError), (readonly, ValueError),
            (ids_not_increasing, ValueError), (negative_id, ValueError), (nan_x, ValueError),
            (inf_range, ValueError)]


@pytest.mark.parametrize("impl", IMPL_NAMES)
@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_invalid_state_raises_and_changes_nothing(impl, case):
    mutate, error = _bad_cases()[case]
    state = large_battle(20, 9)
    mutate(state)
    before = {k: np.array(v, copy=True) for k, v in state.items()}
    with pytest.raises(error):
        TICKS[impl](state, 0, 1)
    for k, v in state.items():
        assert np.asarray(v).tobytes() == before[k].tobytes(), k  # bytes: NaN == NaN here


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_invalid_tick_or_seed_raises(impl):
    tick = TICKS[impl]
    state = large_battle(10, 1)
    for t, s, error in [(-1, 0, ValueError), (2**63, 0, ValueError), (0, -1, ValueError),
                        (0, 2**64, ValueError), (1.5, 0, TypeError), (0, "7", TypeError)]:
        with pytest.raises(error):
            tick(state, t, s)
    with pytest.raises(TypeError):
        tick([1, 2, 3], 0, 0)
    # numpy integers are fine, and an empty battle gives a (0, 5) result
    assert np.asarray(tick(state, np.int64(3), np.uint64(2**64 - 1))).shape[1] == 5
    empty = {k: v[:0].copy() for k, v in state.items()}
    ev = np.asarray(tick(empty, 0, 0))
    assert ev.shape == (0, 5) and ev.dtype == np.int64


def test_compiled_combat_kernel_is_imported_in_ci():
    if os.environ.get("STARHOLD_NO_EXTENSIONS") == "1":
        pytest.skip("twin forced by STARHOLD_NO_EXTENSIONS=1")
    assert combat.COMPILED
    assert combat.combat_tick is not combat.combat_tick_py

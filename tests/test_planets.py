"""Procedural planets: determinism, layout limits, Sol's real planets, the orbit formula."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import msgpack
import pytest

from starhold.rooms.galaxy.catalogue import load_galaxy
from starhold.rooms.galaxy.planets import (
    ORBIT_MAX,
    ORBIT_MIN,
    PLANET_RADIUS_MAX,
    PLANET_RADIUS_MIN,
    Planet,
    generate_planets,
    star_radius,
    system_info,
)

HEX = re.compile(r"^#[0-9a-f]{6}$")
SAMPLE_IDS = ["sol", "hip-71683", "hip-70890", "gj-406", "hip-32349", "hip-8102", "hip-69673"]


@pytest.fixture(scope="module")
def galaxy():
    return load_galaxy()


def test_deterministic_in_process(galaxy):
    for sid in SAMPLE_IDS:
        system = galaxy.get(sid)
        generate_planets.cache_clear()
        first = generate_planets(system)
        generate_planets.cache_clear()
        assert generate_planets(system) == first
        assert system_info(system) == system_info(system)


def test_deterministic_across_processes(galaxy):
    # A fresh interpreter has a different str hash salt; the planets must not change.
    code = (
        "import json\n"
        "from starhold.rooms.galaxy.catalogue import load_galaxy\n"
        "from starhold.rooms.galaxy.planets import system_info\n"
        "g = load_galaxy()\n"
        f"print(json.dumps([system_info(g.get(i)) for i in {SAMPLE_IDS!r}]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=60,
    ).stdout
    assert json.loads(out) == [system_info(galaxy.get(i)) for i in SAMPLE_IDS]


def test_systems_differ(galaxy):
    layouts = {tuple(p.orbit for p in generate_planets(s)) for s in list(galaxy)[:50]}
    assert len(layouts) == 50


def test_counts(galaxy):
    counts = [len(generate_planets(s)) for s in galaxy]
    assert all(3 <= c <= 10 for c in counts)
    assert set(counts) == set(range(3, 11))  # every size occurs among ~950 systems


def test_layout_limits(galaxy):
    for s in galaxy:
        planets = generate_planets(s)
        assert [p.id for p in planets] == list(range(1, len(planets) + 1))
        for p in planets:
            assert ORBIT_MIN <= p.orbit <= ORBIT_MAX
            assert PLANET_RADIUS_MIN <= p.radius <= PLANET_RADIUS_MAX
            assert 0.0 <= p.phase < 2 * math.pi
            assert p.period > 0
            assert HEX.match(p.color)
            assert p.orbit + p.radius <= 1000.0  # inside the world
        assert star_radius(s) + PLANET_RADIUS_MAX < planets[0].orbit  # clear of the star
        for inner, outer in zip(planets, planets[1:]):
            assert outer.orbit - inner.orbit > inner.radius + outer.radius, (s.id, inner, outer)
            assert outer.period > inner.period


def test_kepler_periods(galaxy):
    for p in generate_planets(galaxy.get("hip-32349")) + generate_planets(galaxy.get("sol")):
        assert math.isclose(p.period, 1200.0 * (p.orbit / 950.0) ** 1.5, abs_tol=0.01)
    innermost = [generate_planets(s)[0].period for s in galaxy]
    assert 30 <= min(innermost) and max(innermost) <= 90
    assert max(generate_planets(s)[-1].period for s in galaxy) <= 1200.0


def test_names(galaxy):
    sirius = generate_planets(galaxy.get("hip-32349"))
    assert [p.name for p in sirius] == [f"Sirius {c}" for c in "bcdefghijk"[: len(sirius)]]
    assert generate_planets(galaxy.get("hip-1475"))[0].name == "Groombridge 34 b"
    unnamed = next(s for s in galaxy if s.name.startswith("HIP "))
    assert generate_planets(unnamed)[1].name == f"HIP {unnamed.hip} c"


def test_sol_planets(galaxy):
    planets = generate_planets(galaxy.get("sol"))
    names = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
    assert [p.name for p in planets] == names
    assert planets[0].orbit == ORBIT_MIN and planets[-1].orbit == ORBIT_MAX
    by_name = {p.name: p for p in planets}
    assert by_name["Jupiter"].radius > by_name["Earth"].radius > by_name["Mercury"].radius
    assert math.isclose(by_name["Earth"].phase, math.radians(100.4646), abs_tol=1e-4)
    assert star_radius(galaxy.get("sol")) == 40.0


def test_position_formula():
    p = Planet(1, "Test b", orbit=200.0, period=100.0, phase=0.5, radius=5.0, color="#123456")
    assert p.position(0.0) == pytest.approx((200 * math.cos(0.5), 200 * math.sin(0.5)))
    assert p.position(25.0) == pytest.approx((200 * math.cos(0.5 + math.pi / 2), 200 * math.sin(0.5 + math.pi / 2)))
    assert p.position(100.0) == pytest.approx(p.position(0.0))
    for t in (0.0, 13.7, 1234.5):
        assert math.hypot(*p.position(t)) == pytest.approx(200.0)


def test_star_radius(galaxy):
    radii = {s.id: star_radius(s) for s in galaxy}
    assert all(20.0 <= r <= 60.0 for r in radii.values())
    assert radii["hip-70890"] < radii["sol"] < radii["hip-32349"] < radii["hip-69673"]  # Proxima < Sun < Sirius < Arcturus
    assert radii["gj-406"] < radii["sol"]


def test_system_info_shape(galaxy):
    info = system_info(galaxy.get("hip-71683"))
    assert set(info) == {"id", "name", "color", "star_radius", "planets"}
    assert info["id"] == "hip-71683" and info["name"] == "Alpha Centauri A"
    assert info["color"] == galaxy.get("hip-71683").color
    for entry in info["planets"]:
        assert set(entry) == {"id", "name", "orbit", "period", "phase", "radius", "color"}
    # Plain data: survives JSON and msgpack round trips unchanged.
    assert json.loads(json.dumps(info)) == info
    assert msgpack.unpackb(msgpack.packb(info), raw=False) == info
    assert type(info["planets"]) is list and type(info["planets"][0]) is dict

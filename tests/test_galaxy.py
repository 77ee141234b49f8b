"""The galaxy built from Hipparcos-2: systems, names, positions, colours and jump lanes."""

from __future__ import annotations

import json
import math
import re
from collections import deque

import pytest

from starhold.rooms.galaxy import catalogue as galaxy_module
from starhold.rooms.galaxy.catalogue import (
    LANE_DISTANCE_PC,
    Galaxy,
    StarSystem,
    bv_to_color,
    bv_to_temperature,
    load_galaxy,
)
from starhold.rooms.galaxy.star_names import NAMED_NEIGHBOURS, SUPPLEMENTARY_STARS

HEX = re.compile(r"^#[0-9a-f]{6}$")

# id, name, expected distance (pc) from published parallaxes, tolerance.
NEIGHBOURS = [
    ("hip-71683", "Alpha Centauri A", 1.33, 0.03),
    ("hip-71681", "Alpha Centauri B", 1.25, 0.03),  # Hipparcos-2's known 797 mas parallax
    ("hip-70890", "Proxima Centauri", 1.30, 0.02),
    ("hip-87937", "Barnard's Star", 1.83, 0.02),
    ("gj-406", "Wolf 359", 2.41, 0.02),
    ("hip-54035", "Lalande 21185", 2.55, 0.02),
    ("hip-32349", "Sirius", 2.64, 0.02),
    ("gj-65", "Luyten 726-8", 2.68, 0.02),
    ("gj-905", "Ross 248", 3.16, 0.02),
    ("hip-16537", "Epsilon Eridani", 3.22, 0.02),
    ("hip-114046", "Lacaille 9352", 3.28, 0.03),
    ("hip-57548", "Ross 128", 3.36, 0.03),
    ("hip-104214", "61 Cygni A", 3.49, 0.03),
    ("hip-104217", "61 Cygni B", 3.50, 0.03),
    ("hip-37279", "Procyon", 3.51, 0.03),
    ("hip-1475", "Groombridge 34", 3.59, 0.03),
    ("hip-108870", "Epsilon Indi", 3.62, 0.03),
    ("hip-8102", "Tau Ceti", 3.65, 0.03),
    ("gj-1061", "Gliese 1061", 3.67, 0.03),
    ("hip-36208", "Luyten's Star", 3.80, 0.05),
    ("hip-24186", "Kapteyn's Star", 3.91, 0.05),
    ("hip-97649", "Altair", 5.13, 0.05),
    ("hip-91262", "Vega", 7.68, 0.1),
    ("hip-113368", "Fomalhaut", 7.70, 0.1),
]


@pytest.fixture(scope="module")
def galaxy() -> Galaxy:
    return load_galaxy()


def components(galaxy: Galaxy, max_lane: float = math.inf) -> int:
    """Number of connected components using only lanes at most ``max_lane`` pc long."""
    seen: set[str] = set()
    count = 0
    for start in galaxy:
        if start.id in seen:
            continue
        count += 1
        seen.add(start.id)
        queue = deque([start.id])
        while queue:
            here = galaxy.get(queue.popleft())
            for there in galaxy.lanes(here.id):
                if there not in seen and math.dist(here.position, galaxy.get(there).position) <= max_lane:
                    seen.add(there)
                    queue.append(there)
    return count


def test_size_and_order(galaxy):
    assert 900 <= len(galaxy) <= 1000
    systems = list(galaxy)
    assert systems[0].id == "sol" and systems[0].position == (0.0, 0.0, 0.0)
    assert systems[0].distance == 0.0 and systems[0].hip is None and systems[0].bv == 0.65
    distances = [s.distance for s in systems]
    assert distances == sorted(distances)
    assert max(distances) <= 20.0
    assert galaxy.systems == tuple(systems)


def test_every_catalogue_star_within_20pc_is_present(galaxy):
    hips = {s.hip for s in galaxy if s.hip is not None}
    rows = galaxy_module._read_hipparcos(50.0)
    assert {r[0] for r in rows} == hips
    assert len(hips) + 1 + len(SUPPLEMENTARY_STARS) == len(galaxy)


def test_ids_and_names_unique(galaxy):
    ids = [s.id for s in galaxy]
    assert len(set(ids)) == len(ids)
    names = [s.name.casefold() for s in galaxy]
    assert len(set(names)) == len(names)
    for s in galaxy:
        if s.hip is not None:
            assert s.id == f"hip-{s.hip}"
        else:
            assert s.id == "sol" or re.fullmatch(r"gj-\d+", s.id)


def test_positions_match_distances(galaxy):
    for s in galaxy:
        assert math.isclose(math.hypot(*s.position), s.distance, rel_tol=1e-9, abs_tol=1e-12)


def test_equatorial_axes(galaxy):
    # Sirius lies south (dec -16.7 deg) at RA 6.75 h (y > 0, x < 0).
    x, y, z = galaxy.resolve("Sirius").position
    assert z < 0 and y > 0 and x < 0
    assert math.isclose(math.degrees(math.asin(z / math.hypot(x, y, z))), -16.713, abs_tol=0.01)
    # Wolf 359 from its sexagesimal coordinates: RA 10h56m28.9s, Dec +07d00m53s.
    x, y, z = galaxy.get("gj-406").position
    ra = math.degrees(math.atan2(y, x)) % 360.0
    assert math.isclose(ra, (10 + 56 / 60 + 28.9 / 3600) * 15, abs_tol=1e-6)
    dec = math.degrees(math.asin(z / galaxy.get("gj-406").distance))
    assert math.isclose(dec, 7 + 53 / 3600, abs_tol=1e-6)


@pytest.mark.parametrize("system_id,name,distance,tol", NEIGHBOURS)
def test_named_neighbours(galaxy, system_id, name, distance, tol):
    s = galaxy.get(system_id)
    assert s.name == name
    assert abs(s.distance - distance) < tol
    assert galaxy.resolve(name) is s


def test_named_table_entries_exist(galaxy):
    for hip, name in NAMED_NEIGHBOURS.items():
        assert galaxy.get(f"hip-{hip}").name == name


def test_skyfield_names_used(galaxy):
    assert galaxy.resolve("Arcturus").hip == 69673
    assert galaxy.resolve("Pollux").hip == 37826
    assert galaxy.resolve("Menkent").hip == 68933  # only skyfield knows this one


def test_unnamed_stars_use_hip_number(galaxy):
    unnamed = [s for s in galaxy if s.name.startswith("HIP ")]
    assert len(unnamed) > 800
    assert all(s.name == f"HIP {s.hip}" for s in unnamed)


def test_resolve(galaxy):
    assert galaxy.resolve("sol") is galaxy.get("sol")
    assert galaxy.resolve("  SOL ") is galaxy.get("sol")
    assert galaxy.resolve("alpha centauri a") is galaxy.get("hip-71683")
    assert galaxy.resolve("BARNARD'S STAR") is galaxy.get("hip-87937")
    assert galaxy.resolve("HIP-71683") is galaxy.get("hip-71683")
    assert galaxy.resolve("wolf 359") is galaxy.get("gj-406")
    assert galaxy.resolve("gj-406") is galaxy.get("gj-406")
    assert galaxy.resolve("no such star") is None
    assert galaxy.resolve("") is None


def test_resolve_ignores_surrounding_whitespace_only(galaxy):
    """docs/protocol.md §1: ``/api/systems/%20sol`` is Sol (surrounding whitespace is ignored,
    as for ``/api/route``'s ``from``/``to``); whitespace inside a name must match."""
    assert galaxy.resolve(" sol") is galaxy.resolve("\tSol\n") is galaxy.get("sol")
    assert galaxy.resolve(" Alpha Centauri A ") is galaxy.get("hip-71683")
    assert galaxy.resolve("alpha  centauri a") is None
    assert galaxy.resolve("so l") is None
    assert galaxy.resolve("   ") is None


def test_get_and_contains(galaxy):
    assert "sol" in galaxy and "hip-32349" in galaxy
    assert "Sirius" not in galaxy  # ids only
    with pytest.raises(KeyError):
        galaxy.get("hip-0")
    with pytest.raises(KeyError):
        galaxy.get("Sirius")
    with pytest.raises(KeyError):
        galaxy.lanes("nowhere")


def test_lanes_symmetric_sorted_and_valid(galaxy):
    for s in galaxy:
        lanes = galaxy.lanes(s.id)
        assert len(lanes) >= 1
        assert s.id not in lanes
        assert len(set(lanes)) == len(lanes)
        dists = [math.dist(s.position, galaxy.get(n).position) for n in lanes]
        assert dists == sorted(dists)
        for n in lanes:
            assert s.id in galaxy.lanes(n)


def test_short_pairs_are_all_lanes(galaxy):
    systems = list(galaxy)
    for i, a in enumerate(systems):
        lanes = set(galaxy.lanes(a.id))
        for b in systems[i + 1 :]:
            if math.dist(a.position, b.position) <= LANE_DISTANCE_PC:
                assert b.id in lanes


def test_sol_lanes(galaxy):
    lanes = galaxy.lanes("sol")
    for sid in ("hip-71683", "hip-71681", "hip-70890", "hip-87937", "gj-406", "hip-32349"):
        assert sid in lanes
    assert lanes[0] == "hip-71681"  # nearest first
    assert "hip-37279" not in lanes  # Procyon, 3.51 pc


def test_connected(galaxy):
    assert components(galaxy) == 1


def test_every_extra_lane_is_needed(galaxy):
    extra = galaxy.extra_lanes
    assert extra, "the outer shell needs connecting lanes"
    for a, b in extra:
        assert math.dist(galaxy.get(a).position, galaxy.get(b).position) > LANE_DISTANCE_PC
    long_lanes = {
        tuple(sorted((s.id, n)))
        for s in galaxy
        for n in galaxy.lanes(s.id)
        if math.dist(s.position, galaxy.get(n).position) > LANE_DISTANCE_PC
    }
    assert long_lanes == set(extra)
    assert components(galaxy, LANE_DISTANCE_PC) == len(extra) + 1


def test_extra_lanes_are_shortest():
    # Three clusters on a line: the connecting lanes are the two shortest bridges.
    import numpy as np

    pts = np.array([[0, 0, 0], [1, 0, 0], [5, 0, 0], [6, 0, 0], [20, 0, 0], [9, 0, 0]], dtype=float)
    near, extra = galaxy_module.build_lanes(pts, 1.5)
    assert sorted(near) == [(0, 1), (2, 3)]
    assert sorted(extra) == [(1, 2), (3, 5), (4, 5)]


def test_to_json_shape(galaxy):
    data = galaxy.to_json({"sol": 2, "hip-32349": 1, "unknown": 7})
    assert set(data) == {"lane_distance_pc", "systems"}
    assert data["lane_distance_pc"] == LANE_DISTANCE_PC
    assert len(data["systems"]) == len(galaxy)
    keys = {"id", "name", "hip", "position", "distance", "color", "bv", "magnitude", "aliases", "lanes", "players"}
    for entry in data["systems"]:
        assert set(entry) == keys
        assert len(entry["position"]) == 3
    sol = data["systems"][0]
    assert sol["id"] == "sol" and sol["name"] == "Sol" and sol["hip"] is None and sol["magnitude"] is None
    assert sol["players"] == 2 and sol["lanes"] == list(galaxy.lanes("sol"))
    by_id = {e["id"]: e for e in data["systems"]}
    assert by_id["hip-32349"]["players"] == 1 and by_id["hip-71683"]["players"] == 0
    assert by_id["hip-71683"]["hip"] == 71683 and isinstance(by_id["hip-71683"]["magnitude"], float)
    assert galaxy.to_json()["systems"][0]["players"] == 0
    json.loads(json.dumps(data))  # plain JSON


def test_star_to_json_has_no_lanes(galaxy):
    assert set(galaxy.get("sol").to_json()) == {"id", "name", "hip", "position", "distance", "color", "bv", "magnitude", "aliases"}


def test_colours(galaxy):
    for s in galaxy:
        assert HEX.match(s.color), s
    assert bv_to_color(None) == galaxy_module.UNKNOWN_COLOR

    def blueness(color: str) -> float:
        r, b = int(color[1:3], 16), int(color[5:7], 16)
        return b / max(r, 1)

    values = [blueness(bv_to_color(bv)) for bv in (-0.3, 0.0, 0.3, 0.65, 1.0, 1.5, 2.0)]
    assert values == sorted(values, reverse=True)
    assert values[0] > 1.0 > values[-1]
    assert blueness(galaxy.resolve("Sirius").color) > blueness(galaxy.resolve("Proxima Centauri").color)


def test_temperature():
    assert abs(bv_to_temperature(0.65) - 5778) < 30  # the Sun
    assert bv_to_temperature(0.0) > 9000 > bv_to_temperature(0.65) > bv_to_temperature(1.8) > 2500


def test_loaded_once_per_process():
    """The catalogue is parsed once and cached (its load time is a benchmark's business, not a
    test's: a loaded CI machine took 2.3 s where an idle one takes under 1)."""
    load_galaxy.cache_clear()
    first = load_galaxy()
    assert load_galaxy() is first
    assert load_galaxy.cache_info().hits == 1


def test_smaller_galaxy():
    small = load_galaxy(5.0, 2.0)
    assert 40 <= len(small) <= 80
    assert all(s.distance <= 5.0 for s in small)
    assert small.lane_distance == 2.0
    assert components(small) == 1
    with pytest.raises(ValueError):
        load_galaxy(0.0)


def test_star_system_is_frozen(galaxy):
    with pytest.raises(Exception):
        galaxy.get("sol").name = "Terra"  # type: ignore[misc]
    assert isinstance(galaxy.get("sol"), StarSystem)


def test_aliases_resolve_common_names_to_primaries():
    from starhold.rooms.galaxy.catalogue import load_galaxy

    galaxy = load_galaxy()
    assert galaxy.resolve("Alpha Centauri").name == "Alpha Centauri A"
    assert galaxy.resolve("hip 71683").id == "hip-71683"
    assert galaxy.resolve("GJ 406").name == "Wolf 359"
    assert galaxy.resolve("61 cygni").name == "61 Cygni A"
    # a display name wins over another star's alias
    assert galaxy.resolve("Proxima Centauri").id == "hip-70890"
    assert "Alpha Centauri" in galaxy.to_json()["systems"][galaxy.systems.index(galaxy.get("hip-71683"))]["aliases"]

"""Scans and Knowledge Graph fragments (``starhold.rooms.economy.scan``): deterministic from
the galaxy's data, typed facts linking stars, planets and resources."""

from __future__ import annotations

from starhold.rooms.economy.resources import RESOURCES
from starhold.rooms.economy.scan import Fragment, fragments, planet_kind, scan_planet, spectral_class
from starhold.rooms.galaxy.catalogue import load_galaxy
from starhold.rooms.galaxy.planets import generate_planets


def test_spectral_classes_follow_b_minus_v():
    assert [spectral_class(bv) for bv in (-0.4, -0.1, 0.1, 0.45, 0.65, 1.0, 1.8, None)] == \
        ["O", "B", "A", "F", "G", "K", "M", None]


def test_sol_is_a_g_star_with_its_known_planets():
    galaxy = load_galaxy()
    sol = galaxy.systems[0]
    planets = {p.name: p for p in generate_planets(sol)}
    assert planet_kind(planets["Earth"]) == "temperate" and planet_kind(planets["Jupiter"]) == "gas giant"
    facts = fragments(sol, planets["Earth"])
    assert Fragment("planet:sol/3", "orbits", "star:sol") in facts
    assert Fragment("planet:sol/3", "is", "kind:temperate") in facts


def test_every_pilot_finds_the_same_world():
    galaxy = load_galaxy()
    system = galaxy.systems[40]
    planet = generate_planets(system)[0]
    first, again = scan_planet(system, planet), scan_planet(system, planet)
    assert first == again and first["lore"] and set(first["resources"]) <= set(RESOURCES)
    ids = [f.id for f in fragments(system, planet)]
    assert ids == [f.id for f in fragments(system, planet)] and len(set(ids)) == len(ids)
    assert all(f"resource:{name}" in " ".join(ids) for name in first["resources"])


def test_worlds_differ_across_the_galaxy():
    galaxy = load_galaxy()
    scans = [scan_planet(s, p) for s in galaxy.systems[1:60] for p in generate_planets(s)[:2]]
    assert len({s["lore"] for s in scans}) > 4
    assert len({tuple(sorted(s["resources"])) for s in scans}) > 5
    assert {s["kind"] for s in scans} >= {"hot rocky", "temperate"}

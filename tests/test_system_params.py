"""A system room gets its star from its params (``rooms.system.params``), so that its actor
never parses the star catalogue (~1.7 s and ~30 MB per process: ``benchmarks/density.py``);
params without a ``star`` entry (stored by an older version) still work, from the catalogue."""

from __future__ import annotations

import pytest

from starhold.harness import RoomHarness
from starhold.rooms.galaxy.catalogue import load_galaxy
from starhold.rooms.system import room as system_room
from starhold.rooms.system.params import star_from_params, star_of, system_params
from starhold.rooms.system.room import SolarSystemRoom


def test_every_star_survives_the_trip_through_params():
    galaxy = load_galaxy()
    for star in galaxy:
        assert star_from_params({"star": star.to_json()}) == star
    assert star_from_params({"system": {}}) is None


@pytest.mark.parametrize("with_star", [True, False])
async def test_the_room_takes_its_star_from_params_and_the_catalogue_only_without_one(monkeypatch, with_star):
    params = system_params("hip-71683")  # Alpha Centauri A: mid region, 1.3 pc
    expected = star_of("hip-71683")
    if not with_star:
        del params["star"]
    calls = []

    def counting_star_of(system_id, galaxy=None):
        calls.append(system_id)
        return star_of(system_id, galaxy)

    monkeypatch.setattr(system_room, "star_of", counting_star_of)
    async with RoomHarness(SolarSystemRoom, name="hip-71683", params={**params, "pirates": False}) as h:
        await h.wake()
        star, parsecs = await h.run_in_room(lambda room: (room.economy.targets.star, room.economy.targets.parsecs))
    assert star == expected and parsecs == pytest.approx(expected.distance)
    assert calls == ([] if with_star else ["hip-71683"])

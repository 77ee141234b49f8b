"""Resources and regional scarcity (``starhold.rooms.economy.resources``): regions by distance
from Sol, deterministic field deposits scarcer where they should be, and fields that deplete
and regrow in closed form exactly as stepping them would."""

from __future__ import annotations

import pytest

from starhold.rooms.economy.resources import (
    BASE_CAPACITY, CORE, MID, OUTER, REGROWTH_PER_HOUR, RESOURCES, Deposit, field_deposits, region_of)


def test_regions_by_distance_from_sol():
    assert [region_of(d) for d in (0.0, 4.99, 5.0, 11.9, 12.0, 20.0)] == [CORE, CORE, MID, MID, OUTER, OUTER]
    with pytest.raises(ValueError):
        region_of(-1.0)


def test_deposits_are_deterministic_and_known_resources():
    a = field_deposits("hip-71683", 2, 1.3)
    assert a == field_deposits("hip-71683", 2, 1.3)
    assert len({tuple(sorted(field_deposits(f"s{i}", 0, 8.0).items())) for i in range(20)}) > 15  # fields differ
    assert set(a) <= set(RESOURCES) and all(0 < v < 2 * BASE_CAPACITY for v in a.values())


def test_scarcity_is_regional():
    def total(resource, parsecs):
        return sum(field_deposits(f"s{i}", f, parsecs).get(resource, 0) for i in range(200) for f in range(3))

    assert total("helium3", 15.0) > 5 * total("helium3", 2.0)
    assert total("platinum", 15.0) > 3 * total("platinum", 2.0)
    assert total("exotics", 2.0) == 0 and total("exotics", 15.0) > 0
    assert total("ferrite", 2.0) > total("ferrite", 15.0)


def test_a_field_regrows_in_closed_form_as_stepping_would():
    deposit = Deposit(1000, 1000.0, 0.0)
    taken, deposit = deposit.mine(900, 10.0)
    assert taken == 900 and deposit.amount == 100.0
    stepped = deposit
    for minute in range(1, 601):  # ten hours, a minute at a time
        stepped = Deposit(stepped.capacity, stepped.amount_at(10.0 + minute * 60), 10.0 + minute * 60)
    assert stepped.amount == pytest.approx(deposit.amount_at(10.0 + 36000))
    assert deposit.amount_at(10.0 + 3600) == pytest.approx(100 + 1000 * REGROWTH_PER_HOUR)
    assert deposit.amount_at(10.0 + 10 ** 7) == 1000.0  # capped


def test_mining_never_takes_more_than_is_there():
    deposit = Deposit(50, 3.7, 0.0)
    taken, after = deposit.mine(10, 0.0)
    assert taken == 3 and after.amount == pytest.approx(0.7)
    assert after.mine(0, 0.0)[0] == 0
    with pytest.raises(ValueError):
        deposit.mine(-1, 0.0)

"""``rooms.ships.sync.FrameSync`` deltas over ``rooms.ships.fleet.Fleet``: the names a delta
carries when ships come, go or are renamed, and the fleet's name map handed over unchanged."""

import msgpack

from rooms import protocol as P
from rooms.ships.fleet import Fleet
from starhold.kernels import motion
from test_kernels import _Conn
from rooms.ships.sync import FrameSync


def _decode(sync: FrameSync, tail: bytes) -> dict:
    return P.decode_server(P.frame_prefix(sync.tick, sync.keys) + msgpack.packb(0) + tail)[2]


def _fleet() -> Fleet:
    fleet = Fleet({}, 1)
    fleet.new("ann", "Ann", 0.0, 0.0, 0.0)
    fleet.new("bob", "Bob", 5.0, 5.0, 0.0)
    return fleet


def test_fleet_names_is_one_dict_until_a_ship_comes_goes_or_is_renamed():
    fleet = _fleet()
    names = fleet.names()
    assert names == {1: "Ann", 2: "Bob"}
    fleet.touch({**fleet.ships[1], "x0": 3.0})  # a new leg, same name
    assert fleet.names() is names
    fleet.touch({**fleet.ships[1], "name": "Anna"})
    renamed = fleet.names()
    assert renamed is not names and renamed == {1: "Anna", 2: "Bob"} and names == {1: "Ann", 2: "Bob"}
    fleet.new("cat", "Cat", 0.0, 0.0, 0.0)
    assert fleet.names() == {1: "Anna", 2: "Bob", 3: "Cat"}
    grown = fleet.names()
    fleet.remove(2)
    assert fleet.names() == {1: "Anna", 3: "Cat"} and grown == {1: "Anna", 2: "Bob", 3: "Cat"}
    fleet.ships[3]["name"] = "Kit"  # changed in place, then marked
    fleet.mark(3)
    assert fleet.names() == {1: "Anna", 3: "Kit"}


def test_deltas_carry_only_new_and_renamed_ships_names():
    fleet, sync = _fleet(), FrameSync()
    rows = {1: (0.0, 0.0, 0), 2: (5.0, 5.0, 0)}
    first = _decode(sync, sync.step(1, 0.1, rows, fleet.names()))
    assert first["base"] is None and sorted(first["names"]) == [[1, "Ann"], [2, "Bob"]]
    assert _decode(sync, sync.step(2, 0.2, dict(rows), fleet.names()))["names"] == []
    fleet.touch({**fleet.ships[2], "name": "Robert"})
    delta = _decode(sync, sync.step(3, 0.3, dict(rows), fleet.names()))
    assert delta["base"] == 2 and delta["names"] == [[2, "Robert"]] and delta["ships"] == []
    fleet.new("cat", "Cat", 1.0, 1.0, 0.0)
    rows = {**rows, 3: (1.0, 1.0, 0)}
    delta = _decode(sync, sync.step(4, 0.4, rows, fleet.names()))
    assert delta["names"] == [[3, "Cat"]] and delta["ships"] == [[3, 1.0, 1.0, 0]]
    fleet.remove(1)
    delta = _decode(sync, sync.step(5, 0.5, {i: r for i, r in rows.items() if i != 1}, fleet.names()))
    assert delta["removed"] == [1] and delta["names"] == []
    keyframe = _decode(sync, sync.keyframe())
    assert keyframe["base"] is None and sorted(keyframe["names"]) == [[2, "Robert"], [3, "Cat"]]


def test_fleet_touch_many_leaves_the_fleet_as_touching_each_in_order():
    def moves(fleet):
        one, two = fleet.ships[1], fleet.ships[2]
        return [{**one, "x0": 3.0}, {**two, "name": "Bobby", "tx": 9.0}, {**one, "x0": 4.0, "ty": 2.0}]

    for with_arrays in (True, False):
        single, many = _fleet(), _fleet()
        if with_arrays:  # rows updated in place next arrays()
            single.arrays(), many.arrays()
            single.names(), many.names()
        for ship in moves(single):
            single.touch(ship)
        many.touch_many(moves(many))
        assert many.ships == single.ships and many.names() == single.names() == {1: "Ann", 2: "Bobby"}
        ids, cols, _ = many.arrays()
        assert ids == single.arrays()[0] and (cols == single.arrays()[1]).all()
        assert cols[0].tolist() == [4.0, 0.0, 0.0, 2.0, 0.0]
        assert many.take_writes() == single.take_writes()
    fleet = _fleet()
    fleet.arrays()
    fleet.touch_many([{"id": 7, "player": "cat", "name": "Cat", "x0": 1.0, "y0": 1.0, "tx": 1.0, "ty": 1.0, "t0": 0.0}])
    assert fleet.arrays()[0] == [1, 2, 7]  # a new ship: the arrays are rebuilt


class _Move:
    def __init__(self, seq, x, y):
        self.seq = seq
        self.payload = P.MoveTo(x=x, y=y)


def _steer(fleet, seats, *moves, t=1.0):
    """``fleet.steer_moves`` of ``(player, seq, x, y)`` moves, each player's socket ``c-<player>``."""
    by_conn = {f"c-{p}": p for p in seats}
    acked = set()
    applied = fleet.steer_moves([(_Conn(f"c-{p}"), _Move(seq, x, y)) for p, seq, x, y in moves], by_conn, seats,
                                acked, 1000.0, t, P.SHIP_SPEED)
    return applied, acked


def test_fleet_steer_moves_moves_the_rows_and_the_ships_follow_when_read():
    fleet = _fleet()
    fleet.take_writes()
    ann, bob = dict(fleet.ships[1]), dict(fleet.ships[2])
    seats = {"ann": {"ship": 1, "ack": 3}, "bob": {"ship": 2, "ack": 0}, "eve": {"ship": 9, "ack": 0}}  # eve: no ship
    applied, acked = _steer(fleet, seats, ("ann", 2, 10.0, 0.0), ("bob", 1, 5.0, 2000.0), ("eve", 4, 1.0, 1.0),
                            ("ann", 5, 20.0, 0.0))
    first = motion.steer(ann, 10.0, 0.0, 1.0, P.SHIP_SPEED)
    want = {1: motion.steer(first, 20.0, 0.0, 1.0, P.SHIP_SPEED), 2: motion.steer(bob, 5.0, 1000.0, 1.0, P.SHIP_SPEED)}
    assert applied == 3 and acked == {"ann", "bob"}
    assert seats["ann"]["ack"] == 5 and seats["bob"]["ack"] == 1 and seats["eve"]["ack"] == 0
    ids, cols, _ = fleet.arrays()
    assert cols.tolist() == [[s[k] for k in ("x0", "y0", "tx", "ty", "t0")] for s in (want[1], want[2])]
    assert fleet.ships == want  # read: the dicts follow, bit for bit
    assert ann == {**fleet.ships[1], **{k: ann[k] for k in ("x0", "y0", "tx", "ty", "t0")}}  # the rest unchanged
    assert fleet.names() == {1: "Ann", 2: "Bob"}
    _, acked = _steer(fleet, seats, ("ann", 4, 0.0, 0.0))  # an older seq moves, but does not lower the ack
    assert seats["ann"]["ack"] == 5 and acked == set()


def test_fleet_take_changes_gives_ships_whose_leg_alone_changed_apart():
    fleet = _fleet()
    fleet.new("cat", "Cat", 1.0, 1.0, 0.0)
    fleet.take_writes()
    seats = {p: {"ship": i, "ack": 0} for i, p in ((1, "ann"), (2, "bob"), (3, "cat"))}
    _steer(fleet, seats, ("ann", 1, 9.0, 0.0), ("bob", 1, 9.0, 0.0), ("cat", 1, 9.0, 0.0))
    fleet.touch({**fleet.ships[2], "name": "Bobby"})  # bob: more than its leg since
    assert fleet.pending()
    puts, deletes, (packed, moved) = fleet.take_changes()
    assert (list(puts), deletes, moved) == (["ship:2"], [], [1, 3])
    assert puts["ship:2"]["tx"] == 9.0  # written whole, with its leg
    assert packed == motion.pack_legs([fleet.ships[1], fleet.ships[3]])
    assert not fleet.pending() and fleet.take_changes() == ({}, [], (b"", []))
    _steer(fleet, seats, ("ann", 2, 1.0, 1.0), t=2.0)
    fleet.remove(3)  # the arrays are rebuilt: ann's move is then written whole
    assert fleet.take_changes() == ({"ship:1": fleet.ships[1]}, ["ship:3"], (b"", []))
    assert fleet.ships[1]["tx"] == 1.0
    _steer(fleet, seats, ("ann", 3, 2.0, 2.0), t=3.0)
    assert fleet.take_writes() == ({"ship:1": fleet.ships[1]}, [])  # as a whole ship without a journal
    assert fleet.ships[1]["tx"] == 2.0 and fleet.take_changes() == ({}, [], (b"", []))

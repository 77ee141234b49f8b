"""One pilot, one ship across the galaxy: the pilot room is the ship's owner of record, systems
hold it while its player is there, and a jump hands it over through the pilot room with an
atomic two-phase commit (the system's transactional outbox + the pilot's idempotent
``depart``). Rooms in process, on a manual clock; see tests/galaxy_driver.py."""

from __future__ import annotations

import math

import pytest

from starhold.rooms import protocol
from starhold.rooms.system.travel import JUMP_RADIUS, transit_seconds

from galaxy_driver import LINE, Galaxy, Player, invariant


@pytest.fixture
async def galaxy(tmp_path):
    g = await Galaxy.start(tmp_path / "data")
    yield g
    await g.close()


async def fly_until(galaxy: Galaxy, player: Player, predicate, seconds: float = 60.0, step: float = 0.5) -> None:
    """Advance the manual clock in steps until ``predicate()`` (collecting output as we go)."""
    t = 0.0
    while not predicate():
        assert t < seconds, f"not reached in {seconds} s of game time: {player.received[-3:]}"
        await galaxy.clock.advance(step)
        await player.pump()
        t += step


async def test_a_new_pilot_starts_at_the_station_and_docks_where_it_left(galaxy):
    p = Player(galaxy, "g-0000000000000001", "Ada")
    await p.join("A")
    system = p.welcome["system"]
    assert {lane["id"] for lane in system["lanes"]} == {"B"}
    station = system["station"]
    profile = await galaxy.profile(p.player)
    assert profile["system"] == "A" and profile["online"] and profile["hull"] == "corvette"
    await p.send(protocol.MOVE_TO, {"x": 100.0, "y": 100.0})
    await galaxy.clock.advance(10)
    await p.leave()
    await galaxy.settle()
    assert (await galaxy.ships_in("A")) == {}  # docked: out of the system's state
    profile = await galaxy.profile(p.player)
    assert profile["system"] == "A" and not profile["online"]
    await p.join("A")
    rows = [m for m in p.of_type(protocol.FRAME)][-1]["ships"]
    me = [r for r in rows if r[0] == p.welcome["ship"]][0]
    assert math.hypot(me[1] - 100.0, me[2] - 100.0) < 1e-3, (me, station)
    presence = p.of_type(protocol.PRESENCE)[-1]
    assert [x["player"] for x in presence["pilots"]] == [p.player]


async def test_a_jump_moves_the_ship_and_the_socket_follows(galaxy):
    p = Player(galaxy, "g-0000000000000002", "Bo")
    await p.join("A")
    await p.send(protocol.JUMP, {"to": "B"})
    await fly_until(galaxy, p, lambda: p.closed is not None)
    assert p.closed[0] == protocol.CLOSE_JUMPED
    jump = p.of_type(protocol.JUMP)[-1]
    assert jump["from"] == "A" and jump["to"] == "B" and jump["wait"] == transit_seconds(1.5)
    await galaxy.settle()
    profile = await galaxy.profile(p.player)
    assert profile["system"] is None and profile["transit"]["to"] == "B"
    assert await invariant(galaxy, [p.player]) == {p.player: "transit"}
    # Too early: the target refuses and says where the ship is.
    await p.join("B")
    assert p.closed[0] == protocol.CLOSE_ELSEWHERE
    assert p.of_type(protocol.ELSEWHERE)[-1]["transit"]["to"] == "B"
    await galaxy.clock.advance(jump["wait"])
    await p.join("B")
    assert p.welcome is not None, p.received
    rows = p.of_type(protocol.FRAME)[-1]["ships"]
    me = [r for r in rows if r[0] == p.welcome["ship"]][0]
    assert math.hypot(me[1] + JUMP_RADIUS, me[2]) < 1e-3  # at B's jump point toward A (west)
    assert await invariant(galaxy, [p.player]) == {p.player: "B"}
    # The old system refuses the pilot now.
    q = Player(galaxy, p.player)
    await q.join("A")
    assert q.closed[0] == protocol.CLOSE_ELSEWHERE and q.of_type(protocol.ELSEWHERE)[-1]["system"] == "B"


async def test_jump_errors(galaxy):
    p = Player(galaxy, "g-0000000000000003")
    await p.join("B")
    await p.send(protocol.JUMP, {"to": "D"})
    errors = p.of_type(protocol.ERROR)
    assert errors[-1]["code"] == protocol.ERR_NO_LANE


async def test_autopilot_flies_a_route_of_several_jumps(galaxy, monkeypatch):
    from starhold.rooms.system import orders

    monkeypatch.setattr(orders, "plan_route", lambda a, b: (list(LINE[LINE.index(a):LINE.index(b) + 1]), 4.5))
    p = Player(galaxy, "g-0000000000000004")
    await p.join("A")
    await p.send(protocol.ROUTE, {"to": "D"})
    assert p.of_type(protocol.ROUTE)[-1]["systems"] == ["A", "B", "C", "D"]
    for system in ("B", "C", "D"):
        await fly_until(galaxy, p, lambda: p.closed is not None)
        assert p.closed[0] == protocol.CLOSE_JUMPED, p.received[-3:]
        jump = p.of_type(protocol.JUMP)[-1]
        assert jump["to"] == system
        await galaxy.settle()
        await galaxy.clock.advance(jump["wait"])
        await p.join(system)
        assert p.welcome is not None
    assert (await galaxy.profile(p.player))["system"] == "D"
    assert await invariant(galaxy, [p.player]) == {p.player: "D"}


async def test_chat_presence_and_direct_messages(galaxy):
    a, b = Player(galaxy, "g-00000000000000a1", "Ann"), Player(galaxy, "g-00000000000000b2", "Ben")
    await a.join("A")
    await b.join("A")
    await a.send(protocol.SAY, {"text": "  hello <b>all</b>\x07 "})
    await b.pump()
    line = b.of_type(protocol.CHAT)[-1]
    assert line["text"] == "hello <b>all</b>" and line["channel"] == "system" and line["name"] == "Ann"
    await a.send(protocol.SAY, {"text": "x" * 281})
    assert a.of_type(protocol.ERROR)[-1]["code"] == protocol.ERR_OUT_OF_RANGE
    for _ in range(5):
        await a.send(protocol.SAY, {"text": "spam"})
    assert a.of_type(protocol.ERROR)[-1]["code"] == protocol.ERR_RATE_LIMITED
    # Direct message to an online pilot, and to an offline one (kept until they join).
    await galaxy.clock.advance(20)
    await a.send(protocol.TELL, {"to": b.player, "text": "psst"})
    await galaxy.settle()
    await b.pump()
    dm = b.of_type(protocol.CHAT)[-1]
    assert dm["channel"] == "dm" and dm["text"] == "psst" and dm["from"] == a.player
    assert a.of_type(protocol.CHAT)[-1]["text"] == "psst"  # the echo
    await b.leave()
    await galaxy.settle()
    await a.send(protocol.TELL, {"to": b.player, "text": "later"})
    await a.send(protocol.TELL, {"to": "g-ffffffffffffffff", "text": "anyone?"})
    assert a.of_type(protocol.ERROR)[-1]["code"] == protocol.ERR_UNKNOWN_PLAYER
    await b.join("A")
    assert [m["text"] for m in b.of_type(protocol.CHAT) if m["channel"] == "dm"] == ["later"]
    presence = b.of_type(protocol.PRESENCE)[-1]
    assert {(x["player"], x["status"]) for x in presence["pilots"]} == {(a.player, "online"), (b.player, "online")}


async def test_hit_points_regenerate_out_of_combat_and_the_station_repairs(galaxy):
    from starhold.rooms.system.travel import REGEN_DELAY, REGEN_RATE

    p = Player(galaxy, "g-0000000000000005")
    await p.join("A")
    await p.send(protocol.MOVE_TO, {"x": 500.0, "y": 500.0})  # away from the station
    await galaxy.clock.advance(20)
    room = galaxy.directory.runtime("system", "A").room
    ship_id = p.welcome["ship"]
    room.fleet.arrays()
    i = room.sim.battle.index[ship_id]
    room.sim.battle.state["hp"][i] = 50  # as if it had been hit
    room.ships[ship_id]["hp"] = 50
    room.repairs.combat_at[ship_id] = galaxy.clock.now()  # ...just now
    await p.send(protocol.MOVE_TO, {"x": 500.0, "y": 500.0})  # the loop runs again (a fight would have kept it)
    await galaxy.clock.advance(REGEN_DELAY - 1)
    await p.pump()
    assert p.of_type(protocol.FRAME)[-1].get("hp") is not None
    assert int(room.sim.battle.state["hp"][i]) == 50  # not yet: out of combat for less than the delay
    await galaxy.clock.advance(6)
    regained = int(room.sim.battle.state["hp"][i]) - 50
    assert 0 < regained <= 6 * REGEN_RATE + 1
    station = p.welcome["system"]["station"]
    await p.send(protocol.MOVE_TO, {"x": station["x"], "y": station["y"]})
    await galaxy.clock.advance(30)
    await p.pump()
    hp, max_hp = room.sim.battle.hp_table()[ship_id]
    assert hp == max_hp
    await p.leave()
    await galaxy.settle()
    assert (await galaxy.profile(p.player))["hp"] == max_hp  # the pilot record keeps it


async def test_a_jump_survives_the_snapshot_store_going_down(tmp_path):
    """The snapshot store (S3 in production) goes down during a transit and the target system
    and the pilot room are killed: nothing can start (an activation first claims its lease in
    the store), so the arrival join fails and the client retries; when the store is back the
    ship arrives, once, where its pilot room says."""
    from starhold.storage.snapshots import LocalDirSnapshotStore

    class Store(LocalDirSnapshotStore):
        down = False

        async def claim(self, *args, **kwargs):
            if self.down:
                raise OSError("snapshot store unreachable")
            return await super().claim(*args, **kwargs)

        async def renew(self, *args, **kwargs):
            if self.down:
                raise OSError("snapshot store unreachable")
            return await super().renew(*args, **kwargs)

    store = Store(tmp_path / "store")
    galaxy = await Galaxy.start(tmp_path / "data", snapshots=store)
    try:
        p = Player(galaxy, "g-0000000000000006")
        await p.join("A")
        await p.send(protocol.JUMP, {"to": "B"})
        await fly_until(galaxy, p, lambda: p.closed is not None)
        await galaxy.settle()  # the departure reached the pilot room: the ship is in transit
        store.down = True
        for kind, room_id in (("system", "B"), ("pilot", p.player)):
            await galaxy.directory.runtime(kind, room_id).crash()
        await galaxy.clock.advance(p.of_type(protocol.JUMP)[-1]["wait"])
        with pytest.raises(Exception):  # B cannot start: the join fails, as it would for a client
            await p.join("B")
        store.down = False
        await p.join("B")
        assert p.welcome is not None, p.received
        assert await invariant(galaxy, [p.player]) == {p.player: "B"}
    finally:
        await galaxy.close()


async def test_a_committed_departure_completes_even_if_its_system_dies_before_telling_the_pilot(galaxy):
    """The system left dies after its departure commit and before its outbox reached the pilot
    room: the pilot room still says the ship is there. A join there wakes the system, which
    refuses it (the ship is in transit: its ``departing`` record) instead of handing the ship
    out again, and delivers the departure: the jump completes, it is not undone."""
    p = Player(galaxy, "g-0000000000000007")
    await p.join("A")
    await p.send(protocol.JUMP, {"to": "B"})
    a = galaxy.directory.runtime("system", "A")
    held = []
    a._enqueue_post = lambda seq, item: held.append((seq, item))  # A's outbox is never delivered
    for _ in range(60):
        await galaxy.clock.advance(1.0)
        if held:  # the departure committed; its post is not delivered
            break
    assert held and held[0][1]["path"] == "depart"
    await a.crash()
    assert (await galaxy.profile(p.player))["system"] == "A"  # the pilot room has not heard
    await p.join("A")  # wakes A: it refuses the join and delivers the departure
    assert p.closed[0] == protocol.CLOSE_ELSEWHERE and p.of_type(protocol.ELSEWHERE)[-1]["transit"]["to"] == "B"
    await galaxy.settle()
    profile = await galaxy.profile(p.player)
    assert profile["transit"]["to"] == "B" and profile["jumps"] == 1
    await galaxy.clock.advance(profile["transit"]["wait"] + 0.1)
    await galaxy.settle()
    await p.join("B")
    assert p.welcome is not None
    assert await invariant(galaxy, [p.player]) == {p.player: "B"}
    await p.join("A")  # and A, told by the pilot room, now sends the pilot on to B
    assert p.of_type(protocol.ELSEWHERE)[-1]["system"] == "B"

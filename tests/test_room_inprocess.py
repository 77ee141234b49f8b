"""The solar system room on the in-process host with a manual clock (no Ray, no sleeping):
join, move, tick, hibernate, wake with state intact."""

import math

import pytest

from starhold.ticking import tick_offset

from starhold.rooms import protocol as P
from starhold._runtime.events import Check, Connect, Message
from starhold._runtime.handle import RoomGone
from starhold._runtime.paths import room_db_path
from starhold.rooms.system.room import GAME_EPOCH
from starhold.storage.base import StorageError

SYSTEM = {"id": "sol", "name": "Sol", "color": "#fff2e7", "star_radius": 40.0, "planets": []}
PARAMS = {"system": SYSTEM, "pirates": False, "pilots": False}  # seats, frames and hibernation: one room, players only
GW = "gw-test"


async def open_room(directory):
    return await directory.get("system", "sol", PARAMS)


async def drain(handle, gateway=GW):
    """Decoded outbound items for ``gateway``: list of (conn_ids, (type, seq, payload)) or
    ("close", conn_id, code, reason); frames (spliced) become one item per connection."""
    out = []
    for item in await handle.pull(gateway, 0):
        if item[0] == "send":
            out.append((item[1], P.decode_server(item[2])))
        elif item[0] == "splice":
            out.extend(((conn_id,), P.decode_server(head + item[1])) for conn_id, head in item[2])
        elif item[0] != "stats":
            out.append(item)
    return out


def of_type(items, type_, conn_id=None):
    return [m for ids, m in (i for i in items if i[0] != "close" and i[0] != "hibernate")
            if m[0] == type_ and (conn_id is None or conn_id in ids)]


def apply_frame(state, payload):
    """docs/protocol.md §4: a keyframe replaces, a delta applies on top of tick ``base``."""
    if payload["base"] is None:
        state["ships"], state["names"] = {}, {}
    elif payload["base"] != state.get("tick"):
        return False
    for row in payload["ships"]:
        state["ships"][row[0]] = row[1:]
    for ship_id in payload["removed"]:
        del state["ships"][ship_id]
    state["names"].update(dict(payload["names"]))
    state["tick"], state["ack"] = payload["tick"], payload["ack"]
    return True


class View:
    """What one client knows: its welcome and the ships after applying its frames."""

    def __init__(self, welcome):
        self.welcome = welcome
        self.state = {}

    def apply(self, frames):
        for _, _, payload in frames:
            assert apply_frame(self.state, payload), "a delta that does not follow the last frame"
        return self

    @property
    def ships(self):
        return {i: [*row, self.state["names"][i]] for i, row in self.state["ships"].items()}


async def join(handle, conn_id, seq=1, player=None, **payload):
    await handle.connect(GW, conn_id, payload, seq, identity={"player": player or f"p-{conn_id}", "name": "",
                                                              "kind": "guest"})
    items = await drain(handle)
    welcome = of_type(items, P.WELCOME, conn_id)
    assert len(welcome) == 1
    frames = of_type(items, P.FRAME, conn_id)
    assert frames and frames[0][2]["base"] is None  # a keyframe follows the welcome
    return View(welcome[0][2]).apply(frames)


async def test_join_gets_welcome_keyframe_then_deltas_ten_a_second(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1", seq=3, name="Ada")
    welcome = view.welcome
    assert welcome["system"].items() >= SYSTEM.items() and welcome["tick_rate"] == 10 and welcome["ack"] == 3
    assert welcome["player"] == "p-c1" and len(welcome["seat"]) >= 24 and welcome["resumed"] is False
    assert view.ships == {welcome["ship"]: [view.ships[welcome["ship"]][0], view.ships[welcome["ship"]][1],
                                             P.SHIP_ONLINE, "Ada"]}
    await manual_clock.advance(1.0)
    frames = of_type(await drain(room), P.FRAME, "c1")
    assert len(frames) == 10
    ticks = [f[2]["tick"] for f in frames]
    assert ticks == list(range(ticks[0], ticks[0] + 10))
    assert all(f[2]["ack"] == 3 and f[2]["base"] == f[2]["tick"] - 1 for f in frames)
    assert frames[-1][2]["time"] == pytest.approx(ticks[-1] / 10)
    # nothing moves: the deltas carry no rows at all
    assert all(f[2]["ships"] == [] and f[2]["names"] == [] for f in frames[1:])
    view.apply(frames)


async def test_move_to_is_acked_and_ship_flies_at_ship_speed_then_stops(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1")
    ship_id = view.welcome["ship"]
    start = view.ships[ship_id]
    # straight out from the star (the star itself is an obstacle: tests/test_navigation.py)
    goal = (2.0 * start[0], 2.0 * start[1])
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": goal[0], "y": goal[1]}))])
    await manual_clock.advance(1.0)
    frames = of_type(await drain(room), P.FRAME)
    assert frames[0][2]["ack"] == 2
    row = view.apply(frames).ships[ship_id]
    flown = math.hypot(row[0] - start[0], row[1] - start[1])
    # the last frame shows the ship at its tick's time: within one tick of 1 s of flight
    assert flown == pytest.approx(P.SHIP_SPEED * 0.95, abs=P.SHIP_SPEED * 0.1)
    assert row[2] & P.SHIP_MOVING
    await manual_clock.advance(math.hypot(start[0], start[1]) / P.SHIP_SPEED)
    row = view.apply(of_type(await drain(room), P.FRAME)).ships[ship_id]
    assert (row[0], row[1]) == (P.quantize(goal[0]), P.quantize(goal[1])) and not row[2] & P.SHIP_MOVING


async def test_two_players_see_each_other_move_through_deltas(room_directory, manual_clock):
    room = await open_room(room_directory)
    a = await join(room, "a", name="A")
    b = await join(room, "b", name="B")
    items = await drain(room)
    a.apply(of_type(items, P.FRAME, "a"))
    await manual_clock.advance(0.1)
    b.apply(of_type(await drain(room), P.FRAME, "b"))
    assert set(b.ships) == {a.welcome["ship"], b.welcome["ship"]}
    await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, 2, {"x": 500.0, "y": 500.0}))])
    await manual_clock.advance(0.5)
    frames_b = of_type(await drain(room), P.FRAME, "b")
    # only the moving ship is in the deltas
    assert all([r[0] for r in f[2]["ships"]] in ([a.welcome["ship"]], []) for f in frames_b)
    before = b.ships[a.welcome["ship"]]
    after = b.apply(frames_b).ships[a.welcome["ship"]]
    assert before[:2] != after[:2] and after[2] == P.SHIP_ONLINE | P.SHIP_MOVING


async def test_several_moves_in_one_batch_the_latest_wins_and_is_acked(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1")
    runtime = room_directory.runtime("system", "sol")
    handled = runtime.events_handled
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, s, {"x": 300.0 + s, "y": 0.0}))
                               for s in range(2, 12)])
    assert runtime.events_handled - handled == 1  # coalesced: one hook call for ten inputs
    await manual_clock.advance(0.1)
    frame = of_type(await drain(room), P.FRAME, "c1")[-1][2]
    assert frame["ack"] == 11
    ship = runtime.room.ships[view.welcome["ship"]]
    assert ship["dest"] == [311.0, 0.0]  # planned around the star: the last waypoint


async def test_resync_sends_a_keyframe(room_directory, manual_clock):
    room = await open_room(room_directory)
    await join(room, "c1")
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.RESYNC, 2, {}))])
    await manual_clock.advance(0.1)
    frames = of_type(await drain(room), P.FRAME, "c1")
    assert frames[-1][2]["base"] is None and frames[-1][2]["ack"] == 2
    assert [r[0] for r in frames[-1][2]["ships"]] and frames[-1][2]["names"]


async def test_empty_room_hibernates_after_idle_timeout_and_wakes_with_ships_intact(room_directory, manual_clock, tmp_path):
    room = await open_room(room_directory)
    view = await join(room, "c1", name="Parker")
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 400.0, "y": -300.0}))])
    await manual_clock.advance(0.3)
    await room.close(GW, "c1")  # a normal close: the player left, the ship stays parked
    assert await room_directory.is_active("system", "sol")
    await manual_clock.advance(9.9)
    assert await room_directory.is_active("system", "sol")  # idle timeout not reached
    await manual_clock.advance(0.2)
    assert not await room_directory.is_active("system", "sol")
    await room.pull(GW, 0)  # what the room sent before it went to sleep
    with pytest.raises(RoomGone):
        await room.pull(GW, 0)
    data = tmp_path / "data"
    assert room_db_path(data, "system", "sol").exists()
    assert (data / "snapshots" / "system" / "sol" / "manifest.json").exists()

    await manual_clock.advance(3600)  # an hour asleep: the ship finished its trip meanwhile
    room = await open_room(room_directory)
    again = await join(room, "c2", player="p-c1")
    assert again.welcome["ship"] == view.welcome["ship"]
    assert again.ships[view.welcome["ship"]] == [400.0, -300.0, P.SHIP_ONLINE, "Parker"]
    assert room.runtime.epoch == 2


async def test_wake_restores_from_snapshot_when_local_file_is_lost(room_directory, manual_clock, tmp_path):
    room = await open_room(room_directory)
    view = await join(room, "c1")
    await room.close(GW, "c1")
    await manual_clock.advance(11)
    assert not await room_directory.is_active("system", "sol")
    db = room_db_path(tmp_path / "data", "system", "sol")
    for path in db.parent.glob("sol.sqlite*"):
        path.unlink()
    room = await open_room(room_directory)
    again = await join(room, "c2", player="p-c1")
    assert again.welcome["ship"] == view.welcome["ship"]


async def test_a_new_player_gets_a_new_ship_and_parked_ships_leave_the_room(room_directory, manual_clock):
    room = await open_room(room_directory)
    first = await join(room, "c1")
    await room.close(GW, "c1")
    second = await join(room, "c2")
    assert second.welcome["ship"] != first.welcome["ship"] and second.welcome["player"] != first.welcome["player"]
    await manual_clock.advance(0.1)  # the keyframe is the last frame; the next delta brings the change
    # parked for its player (rooms/ships/parking.py), out of the frames
    assert first.welcome["ship"] not in second.apply(of_type(await drain(room), P.FRAME, "c2")).ships


async def test_same_player_on_a_second_socket_replaces_the_first(room_directory):
    room = await open_room(room_directory)
    first = await join(room, "c1")
    await room.connect(GW, "c2", {}, 1, identity={"player": "p-c1"})
    items = await drain(room)
    assert ("close", "c1", P.CLOSE_REPLACED, "the same player joined from another socket") in items
    assert of_type(items, P.WELCOME, "c2")[0][2]["ship"] == first.welcome["ship"]


async def test_a_dropped_seat_is_held_and_resumed_with_its_token_and_ack(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1")
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, 7, {"x": 10.0, "y": 0.0}))])
    await room.close(GW, "c1", 1006, "dropped")
    await manual_clock.advance(0.2)
    other = await join(room, "watcher")
    assert other.ships[view.welcome["ship"]][2] & P.SHIP_HELD
    await manual_clock.advance(20)  # within the 30 s hold; the room hibernated meanwhile
    assert not await room_directory.is_active("system", "sol")
    room = await open_room(room_directory)
    again = await join(room, "c2", player="p-c1", resume=view.welcome["seat"])
    assert again.welcome["resumed"] is True and again.welcome["ack"] == 7
    assert again.welcome["seat"] == view.welcome["seat"] and again.welcome["ship"] == view.welcome["ship"]
    # a wrong token gives a fresh seat (same ship: a system keeps a player's ship), ack from the join
    await room.close(GW, "c2", 1006, "dropped")
    fresh = await join(room, "c3", seq=40, player="p-c1", resume="not-the-token")
    assert fresh.welcome["resumed"] is False and fresh.welcome["ack"] == 40
    assert fresh.welcome["seat"] != view.welcome["seat"]


async def test_a_held_seat_expires_after_the_hold_even_while_the_room_sleeps(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1")
    await room.close(GW, "c1", 1006, "dropped")
    await manual_clock.advance(12)  # asleep; the alarm (seat expiry) is with the scheduler
    assert not await room_directory.is_active("system", "sol")
    await manual_clock.advance(20)  # the hold expired: the alarm woke the room to release it
    room = await open_room(room_directory)
    again = await join(room, "c2", player="p-c1", resume=view.welcome["seat"])
    assert again.welcome["resumed"] is False
    assert again.welcome["ship"] == view.welcome["ship"]  # a system keeps the ship itself


async def test_room_error_answers_the_sender_and_the_room_carries_on(room_directory, manual_clock):
    room = await open_room(room_directory)
    await join(room, "a")
    await join(room, "b")
    # a message the game does not expect in on_message: a payload that is already a Struct is
    # not validated again, and a move_to with an attack's payload makes the hook raise
    await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, 2, P.Attack(7)))])
    errors = of_type(await drain(room), P.ERROR, "a")
    assert errors and errors[0][2]["code"] == P.ERR_ROOM_ERROR and errors[0][1] == 2
    # a payload map off the channel is validated by the room too (a gateway with other
    # schemas): the gateway's error, and on_message never sees it
    await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, 3, {"x": 1.0}))])
    errors = of_type(await drain(room), P.ERROR, "a")
    assert [e[1:] for e in errors] == [(3, {"code": P.ERR_INVALID_FIELD, "message": "missing field 'y'"})]
    await room.send_batch(GW, [Message("b", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0}))])
    await manual_clock.advance(0.2)
    frames = of_type(await drain(room), P.FRAME, "b")
    assert frames and frames[-1][2]["ack"] == 2


async def test_failed_commit_drops_held_output_and_resets_the_room(room_directory, monkeypatch):
    room = await open_room(room_directory)
    storage = room.runtime.storage
    real_commit = storage.commit

    async def failing_commit():
        await storage.rollback()
        raise StorageError("disk full")

    monkeypatch.setattr(storage, "commit", failing_commit)
    with pytest.raises(StorageError):
        await room.connect(GW, "c1", {"name": "Lost"}, 1)
    assert of_type(await drain(room), P.WELCOME) == []  # the welcome was held, then dropped
    monkeypatch.setattr(storage, "commit", real_commit)
    view = await join(room, "c2", name="Kept")
    assert [r[3] for r in view.ships.values()] == ["Kept"]  # the lost ship was never committed
    assert room.runtime.stats()["connections"] == 1  # the failed connection is not kept


async def test_game_time_is_clock_time_since_the_game_epoch(room_directory, manual_clock):
    room = await open_room(room_directory)
    welcome = (await join(room, "c1")).welcome
    offset = tick_offset("system/sol", P.TICK_RATE)  # this room's ticks follow tenths of a second by it
    assert 0 <= offset < 0.1
    assert welcome["time"] == pytest.approx(welcome["tick"] / 10 + offset, abs=1e-6)
    assert manual_clock.now() - GAME_EPOCH - 0.1 < welcome["time"] <= manual_clock.now() - GAME_EPOCH


async def test_idle_players_let_the_room_hibernate_and_their_next_input_wakes_it(room_directory, manual_clock):
    room = await open_room(room_directory)
    view = await join(room, "c1", name="Idle")
    await manual_clock.advance(2.5)  # the loop lingers 2 s after the last input, then stops
    frames = of_type(await drain(room), P.FRAME)
    assert 15 <= len(frames) <= 25
    assert await room_directory.is_active("system", "sol")
    await manual_clock.advance(10.1)  # idle timeout with the player still connected
    assert not await room_directory.is_active("system", "sol")
    assert ("hibernate",) in await drain(room)  # the gateway keeps the socket open

    room = await open_room(room_directory)  # what the gateway does on the player's next input
    await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, 9, {"x": 0.0, "y": 0.0}))])
    runtime = room_directory.runtime("system", "sol")
    conn = runtime.room.connections[0]
    assert (conn.id, conn.attachment) == ("c1", {"player": "p-c1"})
    await manual_clock.advance(0.3)
    frames = of_type(await drain(room), P.FRAME, "c1")
    assert frames and frames[-1][2]["ack"] == 9
    assert frames[0][2]["base"] is None  # the new activation starts the socket with a keyframe
    assert view.apply(frames).ships[view.welcome["ship"]][2] == P.SHIP_ONLINE | P.SHIP_MOVING
    assert runtime.epoch == 2


async def test_a_connection_unknown_to_a_new_activation_is_told_to_rejoin(room_directory):
    room = await open_room(room_directory)
    await room.send_batch(GW, [Check("ghost"), Message("ghost2", P.ClientMessage(P.MOVE_TO, 1, {"x": 0.0, "y": 0.0}))])
    items = await drain(room)
    assert ("close", "ghost", P.CLOSE_ROOM_UNAVAILABLE, "unknown connection; rejoin") in items
    assert ("close", "ghost2", P.CLOSE_ROOM_UNAVAILABLE, "unknown connection; rejoin") in items


async def test_epoch_fence_a_duplicate_activation_can_never_commit(tmp_path, manual_clock):
    """Two activations of one room on one database (a zombie and its successor): the newer
    epoch wins, the older one's writes and held messages are dropped and it stops."""
    from starhold._runtime.runtime import RoomRuntime
    from starhold.rooms.system.room import SolarSystemRoom
    from starhold.storage.base import StaleEpochError
    from starhold.storage.snapshots import LocalDirSnapshotStore

    def activation():
        return RoomRuntime(SolarSystemRoom, "sol", PARAMS, db_path=tmp_path / "sol.sqlite",
                           clock=manual_clock, snapshots=LocalDirSnapshotStore(tmp_path / "snaps"))

    zombie, successor = activation(), activation()
    await zombie.start()
    await successor.start()
    assert (zombie.epoch, successor.epoch) == (1, 2)
    with pytest.raises(RoomGone) as info:  # callers resolve the room again: the successor
        await zombie.dispatch(GW, [Connect("z", {"name": "Zombie"}, 1, {"player": "z"})])
    assert isinstance(info.value.__cause__, StaleEpochError)
    assert zombie.state == "fenced"
    with pytest.raises(RoomGone):
        await zombie.pull(GW, 0)  # its welcome was held by the output gate, then dropped
    with pytest.raises(RoomGone):
        await zombie.dispatch(GW, [])
    await successor.dispatch(GW, [Connect("s", {"name": "Heir"}, 1, {"player": "s"})])
    keyframe = (await successor.pull(GW, 0))[1]
    assert P.decode_server(keyframe[2][0][1] + keyframe[1])[2]["names"] == [[1, "Heir"]]  # nothing of the zombie's
    assert await successor.hibernate()


async def test_awake_rooms_are_snapshotted_periodically(manual_clock, tmp_path):
    from starhold._runtime.local_host import InProcessDirectory

    SNAPSHOT_INTERVAL = 30.0
    room_directory = InProcessDirectory(tmp_path / "data", clock=manual_clock, snapshot_interval=SNAPSHOT_INTERVAL)
    room = await open_room(room_directory)
    welcome = (await join(room, "c1")).welcome
    snaps = room_directory.snapshots
    assert (await snaps.latest("system/sol")).version == 0  # claimed by the activation, no snapshot yet
    for i in range(int(SNAPSHOT_INTERVAL / 5) + 1):  # an active player: it never hibernates
        target = {"x": 500.0 * (-1) ** i, "y": 0.0}
        await room.send_batch(GW, [Message("c1", P.ClientMessage(P.MOVE_TO, i + 2, target))])
        await manual_clock.advance(5)
        await drain(room)
    assert await room_directory.is_active("system", "sol")
    manifest = await snaps.latest("system/sol")
    assert manifest is not None and manifest.epoch == 1
    restored = tmp_path / "restored.sqlite"
    await snaps.restore("system/sol", restored)
    from starhold.storage.sqlite_store import SqliteRoomStorage

    copy = await SqliteRoomStorage(restored).open()
    assert (await copy.get(f"ship:{welcome['ship']}"))["player"] == welcome["player"]
    await copy.close()
    await room_directory.close()


async def test_epoch_fence_across_nodes_a_zombie_cannot_publish(tmp_path, manual_clock):
    """The room wakes on node B (no local file: restored from the shared snapshot store) while
    a zombie activation still runs on node A: B claims the manifest's next epoch at once and
    serves once A's lease has run out; A's next lease renewal finds the newer epoch and A
    stops, so nothing A does later can reach the store (tests/test_epoch_lease.py has every
    order)."""
    import asyncio

    from starhold._runtime.lease import LEASE_SECONDS
    from starhold._runtime.runtime import RoomRuntime
    from starhold.rooms.system.room import SolarSystemRoom
    from starhold.storage.base import StaleEpochError
    from starhold.storage.snapshots import CLOCK_SKEW, LocalDirSnapshotStore

    shared = LocalDirSnapshotStore(tmp_path / "bucket")

    def node(name):
        return RoomRuntime(SolarSystemRoom, "sol", PARAMS, db_path=tmp_path / name / "sol.sqlite",
                           clock=manual_clock, snapshots=shared)

    zombie = node("a")
    await zombie.start()
    await zombie.dispatch(GW, [Connect("z1", {"name": "Before"}, 1, {"player": "a"})])
    await zombie.snapshot()  # a periodic snapshot: manifest version 1 at epoch 1
    heir = node("b")
    claimed = asyncio.Event()
    real_claim = shared.claim

    async def claim(*args, **kwargs):  # tells when the heir's claim has landed
        result = await real_claim(*args, **kwargs)
        claimed.set()
        return result

    shared.claim = claim
    starting = asyncio.create_task(heir.start())
    await claimed.wait()
    assert (await shared.latest("system/sol")).epoch == 2
    await zombie.dispatch(GW, [Connect("z2", {"name": "After"}, 1, {"player": "b"})])
    await manual_clock.advance(LEASE_SECONDS + CLOCK_SKEW)  # the zombie's renewal fails; the heir serves
    await starting
    assert heir.epoch == 2 and zombie.state == "fenced"
    with pytest.raises(StaleEpochError):
        await shared.save("system/sol", tmp_path / "a" / "sol.sqlite", 1)
    await heir.hibernate()
    third = node("c")  # the next activation anywhere sees the heir's data, never the zombie's
    await third.start()
    names = [s["name"] for s in third.room.ships.values()]
    assert names == ["Before"]


async def test_moves_of_several_players_in_one_batch_are_each_applied_and_acked(room_directory, manual_clock):
    room = await open_room(room_directory)
    views = {c: await join(room, c) for c in ("m1", "m2", "m3")}
    runtime = room_directory.runtime("system", "sol")
    targets = {"m1": (300.0, 10.0), "m2": (-250.0, 80.0), "m3": (120.0, -400.0)}
    batch = [Message(c, P.ClientMessage(P.MOVE_TO, 5 + i, {"x": x, "y": y})) for i, (c, (x, y)) in enumerate(targets.items())]
    batch.insert(1, Message("ghost", P.ClientMessage(P.MOVE_TO, 9, {"x": 1.0, "y": 1.0})))  # not connected here
    await room.send_batch(GW, batch)
    items = await drain(room)
    assert ("close", "ghost", P.CLOSE_ROOM_UNAVAILABLE, "unknown connection; rejoin") in items
    for c, (x, y) in targets.items():
        assert runtime.room.ships[views[c].welcome["ship"]]["dest"] == [x, y]
    await manual_clock.advance(0.1)
    items = await drain(room)
    assert {c: of_type(items, P.FRAME, c)[-1][2]["ack"] for c in targets} == {"m1": 5, "m2": 6, "m3": 7}

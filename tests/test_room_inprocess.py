"""The solar system room on the in-process host with a manual clock (no Ray, no sleeping):
join, move, tick, hibernate, wake with state intact."""

import math

import pytest

from starhold import protocol as P
from starhold.rooms.handle import RoomGone
from starhold.rooms.registry import room_db_path
from starhold.rooms.solar_system import GAME_EPOCH
from starhold.storage.base import StorageError

SYSTEM = {"id": "sol", "name": "Sol", "color": "#fff2e7", "star_radius": 40.0, "planets": []}
GW = "gw-test"


async def open_room(directory):
    return await directory.get("system", "sol", {"system": SYSTEM})


async def drain(handle, gateway=GW):
    """Decoded outbound items for ``gateway``: list of (conn_ids, (type, seq, payload)) or
    ("close", conn_id, code, reason)."""
    out = []
    for item in await handle.pull(gateway, 0):
        out.append((item[1], P.decode_server(item[2])) if item[0] == "send" else item)
    return out


def of_type(items, type_, conn_id=None):
    return [m for ids, m in (i for i in items if i[0] != "close") if m[0] == type_ and (conn_id is None or conn_id in ids)]


async def join(handle, conn_id, seq=1, **payload):
    await handle.connect(GW, conn_id, payload, seq)
    welcome = of_type(await drain(handle), P.WELCOME, conn_id)
    assert len(welcome) == 1
    return welcome[0][2]


async def test_join_gets_welcome_with_own_ship_and_ten_frames_a_second(room_directory, manual_clock):
    room = await open_room(room_directory)
    welcome = await join(room, "c1", seq=3, name="Ada")
    assert welcome["system"] == SYSTEM and welcome["tick_rate"] == 10
    assert [row[0] for row in welcome["ships"]] == [welcome["ship"]]
    assert welcome["ships"][0][4] == "Ada" and welcome["ships"][0][3] == P.SHIP_ONLINE
    assert len(welcome["player"]) >= 12
    await manual_clock.advance(1.0)
    frames = of_type(await drain(room), P.FRAME, "c1")
    assert len(frames) == 10
    ticks = [f[2]["tick"] for f in frames]
    assert ticks == list(range(ticks[0], ticks[0] + 10))
    assert all(f[2]["ack"] == 3 for f in frames)
    assert frames[-1][2]["time"] == pytest.approx(ticks[-1] / 10)


async def test_move_to_is_acked_and_ship_flies_at_ship_speed_then_stops(room_directory, manual_clock):
    room = await open_room(room_directory)
    welcome = await join(room, "c1")
    ship = welcome["ships"][0]
    await room.send_batch(GW, [("message", "c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 0.0, "y": 0.0}))])
    await manual_clock.advance(1.0)
    frames = of_type(await drain(room), P.FRAME)
    assert frames[0][2]["ack"] == 2
    row = frames[-1][2]["ships"][0]
    start_dist = math.hypot(ship[1], ship[2])
    now_dist = math.hypot(row[1], row[2])
    # the last frame shows the ship at its tick's time: within one tick of 1 s of flight
    assert start_dist - now_dist == pytest.approx(P.SHIP_SPEED * 0.95, abs=P.SHIP_SPEED * 0.1)
    assert row[3] & P.SHIP_MOVING
    await manual_clock.advance(start_dist / P.SHIP_SPEED)
    row = of_type(await drain(room), P.FRAME)[-1][2]["ships"][0]
    assert (row[1], row[2]) == (0.0, 0.0) and not row[3] & P.SHIP_MOVING


async def test_two_players_see_each_other_move(room_directory, manual_clock):
    room = await open_room(room_directory)
    a = await join(room, "a", name="A")
    b = await join(room, "b", name="B")
    assert {r[0] for r in b["ships"]} == {a["ship"], b["ship"]}
    await room.send_batch(GW, [("message", "a", P.ClientMessage(P.MOVE_TO, 2, {"x": 500.0, "y": 500.0}))])
    await manual_clock.advance(0.5)
    frames_b = of_type(await drain(room), P.FRAME, "b")
    seen = [next(r for r in f[2]["ships"] if r[0] == a["ship"]) for f in frames_b]
    assert seen[0][1:3] != seen[-1][1:3] and seen[-1][3] == P.SHIP_ONLINE | P.SHIP_MOVING


async def test_empty_room_hibernates_after_idle_timeout_and_wakes_with_ships_intact(room_directory, manual_clock, tmp_path):
    room = await open_room(room_directory)
    welcome = await join(room, "c1", name="Parker")
    await room.send_batch(GW, [("message", "c1", P.ClientMessage(P.MOVE_TO, 2, {"x": 400.0, "y": -300.0}))])
    await manual_clock.advance(0.3)
    await room.close(GW, "c1")
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
    again = await join(room, "c2", player=welcome["player"])
    assert again["ship"] == welcome["ship"]
    assert [r for r in again["ships"] if r[0] == welcome["ship"]] == [[welcome["ship"], 400.0, -300.0, P.SHIP_ONLINE, "Parker"]]
    assert room.runtime.epoch == 2


async def test_wake_restores_from_snapshot_when_local_file_is_lost(room_directory, manual_clock, tmp_path):
    room = await open_room(room_directory)
    welcome = await join(room, "c1")
    await room.close(GW, "c1")
    await manual_clock.advance(11)
    assert not await room_directory.is_active("system", "sol")
    db = room_db_path(tmp_path / "data", "system", "sol")
    for path in db.parent.glob("sol.sqlite*"):
        path.unlink()
    room = await open_room(room_directory)
    again = await join(room, "c2", player=welcome["player"])
    assert again["ship"] == welcome["ship"]


async def test_a_new_player_gets_a_new_ship_and_parked_ships_stay(room_directory, manual_clock):
    room = await open_room(room_directory)
    first = await join(room, "c1")
    await room.close(GW, "c1")
    second = await join(room, "c2")
    assert second["ship"] != first["ship"] and second["player"] != first["player"]
    parked = next(r for r in second["ships"] if r[0] == first["ship"])
    assert parked[3] == 0  # offline, not moving


async def test_same_player_on_a_second_socket_replaces_the_first(room_directory):
    room = await open_room(room_directory)
    first = await join(room, "c1")
    await room.connect(GW, "c2", {"player": first["player"]}, 1)
    items = await drain(room)
    assert ("close", "c1", P.CLOSE_REPLACED, "the same player joined from another socket") in items
    assert of_type(items, P.WELCOME, "c2")[0][2]["ship"] == first["ship"]


async def test_room_error_answers_the_sender_and_the_room_carries_on(room_directory, manual_clock):
    room = await open_room(room_directory)
    await join(room, "a")
    await join(room, "b")
    # a message the game does not expect in on_message (an unseated connection id is ignored;
    # a payload without coordinates makes the hook raise)
    await room.send_batch(GW, [("message", "a", P.ClientMessage(P.MOVE_TO, 2, {}))])
    errors = of_type(await drain(room), P.ERROR, "a")
    assert errors and errors[0][2]["code"] == P.ERR_ROOM_ERROR and errors[0][1] == 2
    await room.send_batch(GW, [("message", "b", P.ClientMessage(P.MOVE_TO, 2, {"x": 1.0, "y": 1.0}))])
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
    welcome = await join(room, "c2", name="Kept")
    assert [r[4] for r in welcome["ships"]] == ["Kept"]  # the lost ship was never committed
    assert room.runtime.stats()["connections"] == 1  # the failed connection is not kept


async def test_game_time_is_clock_time_since_the_game_epoch(room_directory, manual_clock):
    room = await open_room(room_directory)
    welcome = await join(room, "c1")
    assert welcome["time"] == welcome["tick"] / 10
    assert manual_clock.now() - GAME_EPOCH - 0.1 < welcome["time"] <= manual_clock.now() - GAME_EPOCH


async def test_idle_players_let_the_room_hibernate_and_their_next_input_wakes_it(room_directory, manual_clock):
    room = await open_room(room_directory)
    welcome = await join(room, "c1", name="Idle")
    await manual_clock.advance(2.5)  # the loop lingers 2 s after the last input, then stops
    frames = of_type(await drain(room), P.FRAME)
    assert 15 <= len(frames) <= 25
    assert await room_directory.is_active("system", "sol")
    await manual_clock.advance(10.1)  # idle timeout with the player still connected
    assert not await room_directory.is_active("system", "sol")
    assert ("hibernate",) in await drain(room)  # the gateway keeps the socket open

    room = await open_room(room_directory)  # what the gateway does on the player's next input
    await room.send_batch(GW, [("message", "c1", P.ClientMessage(P.MOVE_TO, 9, {"x": 0.0, "y": 0.0}))])
    runtime = room_directory.runtime("system", "sol")
    conn = runtime.room.connections[0]
    assert (conn.id, conn.attachment) == ("c1", {"player": welcome["player"], "ship": welcome["ship"]})
    await manual_clock.advance(0.3)
    frames = of_type(await drain(room), P.FRAME, "c1")
    assert frames and frames[-1][2]["ack"] == 9
    assert frames[-1][2]["ships"][0][3] == P.SHIP_ONLINE | P.SHIP_MOVING
    assert runtime.epoch == 2


async def test_a_connection_unknown_to_a_new_activation_is_told_to_rejoin(room_directory):
    room = await open_room(room_directory)
    await room.send_batch(GW, [("check", "ghost"), ("message", "ghost2", P.ClientMessage(P.MOVE_TO, 1, {"x": 0.0, "y": 0.0}))])
    items = await drain(room)
    assert ("close", "ghost", P.CLOSE_ROOM_UNAVAILABLE, "unknown connection; rejoin") in items
    assert ("close", "ghost2", P.CLOSE_ROOM_UNAVAILABLE, "unknown connection; rejoin") in items


async def test_epoch_fence_a_duplicate_activation_can_never_commit(tmp_path, manual_clock):
    """Two activations of one room on one database (a zombie and its successor): the newer
    epoch wins, the older one's writes and held messages are dropped and it stops."""
    from starhold.rooms.runtime import RoomRuntime
    from starhold.rooms.solar_system import SolarSystemRoom
    from starhold.storage.base import StaleEpochError
    from starhold.storage.snapshots import LocalDirSnapshotStore

    def activation():
        return RoomRuntime(SolarSystemRoom, "sol", {"system": SYSTEM}, db_path=tmp_path / "sol.sqlite",
                           clock=manual_clock, snapshots=LocalDirSnapshotStore(tmp_path / "snaps"))

    zombie, successor = activation(), activation()
    await zombie.start()
    await successor.start()
    assert (zombie.epoch, successor.epoch) == (1, 2)
    with pytest.raises(RoomGone) as info:  # callers resolve the room again: the successor
        await zombie.dispatch(GW, [("connect", "z", {"payload": {"name": "Zombie"}, "seq": 1})])
    assert isinstance(info.value.__cause__, StaleEpochError)
    assert zombie.state == "fenced"
    with pytest.raises(RoomGone):
        await zombie.pull(GW, 0)  # its welcome was held by the output gate, then dropped
    with pytest.raises(RoomGone):
        await zombie.dispatch(GW, [])
    await successor.dispatch(GW, [("connect", "s", {"payload": {"name": "Heir"}, "seq": 1})])
    welcome = P.decode_server((await successor.pull(GW, 0))[0][2])[2]
    assert [row[4] for row in welcome["ships"]] == ["Heir"]  # nothing of the zombie's was committed
    assert await successor.hibernate()


async def test_awake_rooms_are_snapshotted_periodically(manual_clock, tmp_path):
    from starhold.rooms.local_host import InProcessDirectory

    SNAPSHOT_INTERVAL = 30.0
    room_directory = InProcessDirectory(tmp_path / "data", clock=manual_clock, snapshot_interval=SNAPSHOT_INTERVAL)
    room = await open_room(room_directory)
    welcome = await join(room, "c1")
    snaps = room_directory.snapshots
    assert await snaps.latest("system/sol") is None
    for i in range(int(SNAPSHOT_INTERVAL / 5) + 1):  # an active player: it never hibernates
        target = {"x": 500.0 * (-1) ** i, "y": 0.0}
        await room.send_batch(GW, [("message", "c1", P.ClientMessage(P.MOVE_TO, i + 2, target))])
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
    a zombie activation still runs on node A: B publishes its epoch at once, so nothing the
    zombie does later can reach the store, and the zombie stops."""
    from starhold.rooms.runtime import RoomRuntime
    from starhold.rooms.solar_system import SolarSystemRoom
    from starhold.storage.base import StaleEpochError
    from starhold.storage.snapshots import LocalDirSnapshotStore

    shared = LocalDirSnapshotStore(tmp_path / "bucket")

    def node(name):
        return RoomRuntime(SolarSystemRoom, "sol", {"system": SYSTEM}, db_path=tmp_path / name / "sol.sqlite",
                           clock=manual_clock, snapshots=shared)

    zombie = node("a")
    await zombie.start()
    await zombie.dispatch(GW, [("connect", "z1", {"payload": {"name": "Before"}, "seq": 1})])
    await zombie.snapshot()  # a periodic snapshot: manifest at epoch 1
    heir = node("b")
    await heir.start()
    assert heir.epoch == 2 and (await shared.latest("system/sol")).epoch == 2
    await zombie.dispatch(GW, [("connect", "z2", {"payload": {"name": "After"}, "seq": 1})])  # local only
    await zombie.snapshot()  # refused: the zombie stops
    assert zombie.state == "fenced"
    with pytest.raises(StaleEpochError):
        await shared.save("system/sol", tmp_path / "a" / "sol.sqlite", 1)
    third = node("c")  # the next activation anywhere sees the heir's data, never the zombie's
    await third.start()
    names = [s["name"] for s in third.room.ships.values()]
    assert names == ["Before"]

"""The ship rooms' tick journal (``rooms.ships.journal``): a tick's writes as one entry,
folded into their keys later, and nothing acknowledged lost when the room crashes between."""

import json

import msgspec
import pytest

from starhold.rooms import protocol as P
from starhold.kernels.motion import pack_legs
from starhold.rooms.ships.journal import DELETED, FOLD_INTERVAL, MISSING, PREFIX, Journal, read_entry
from starhold._runtime.events import Message
from starhold.room import HttpRequest
from starhold.storage.base import MAX_VALUE_BYTES
from starhold.storage.sqlite_store import SqliteRoomStorage

from test_room_inprocess import GW, PARAMS, drain, join, of_type, open_room


@pytest.fixture
async def storage(tmp_path):
    store = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    yield store
    await store.close()


async def entries(storage):
    return await storage.list(prefix=PREFIX)


async def test_entries_hold_the_writes_until_a_fold_writes_the_latest_of_each_key(storage):
    journal = Journal(storage)
    await storage.put("ship:1", {"x": 0})
    await storage.commit()
    await journal.append({"ship:1": {"x": 1}, "seat:a": {"ack": 2}}, [])
    await journal.append({"ship:1": {"x": 3}}, ["seat:b"])
    await storage.commit()
    assert list(await entries(storage)) == [f"{PREFIX}{1:012d}", f"{PREFIX}{2:012d}"]
    assert await storage.get("ship:1") == {"x": 0}  # the keys lag ...
    assert journal.latest("ship:1") == {"x": 3} and journal.latest("seat:b") is DELETED  # ... the journal knows
    assert journal.latest("ship:9") is MISSING
    assert journal.due(0.0)  # entries and never folded
    await storage.put("seat:b", {"ack": 1})  # (written before the entry that deletes it)
    await journal.fold(10.0)
    await storage.commit()
    assert await entries(storage) == {}
    assert await storage.get("ship:1") == {"x": 3} and await storage.get("seat:a") == {"ack": 2}
    assert await storage.get("seat:b") is None
    assert not journal.due(10.0 + FOLD_INTERVAL) and journal.latest("ship:1") is MISSING
    await journal.append({"ship:2": {}}, [])
    assert not journal.due(10.0 + FOLD_INTERVAL - 0.5) and journal.due(10.0 + FOLD_INTERVAL)


async def test_load_folds_what_an_earlier_activation_left_in_order(storage):
    await storage.put("ship:2", {"x": 0})  # written before the entries, which are newer
    first = Journal(storage)
    for x in range(1, 13):  # past entry 9 -> 10: keys must sort by number
        await first.append({"ship:1": {"x": x}}, [])
    await first.append({}, ["ship:2"])
    await storage.commit()
    second = Journal(storage)
    assert await second.load(now=5.0) == 13
    await storage.commit()
    assert await storage.get("ship:1") == {"x": 12} and await storage.get("ship:2") is None
    assert await entries(storage) == {}
    await second.append({"ship:1": {"x": 13}}, [])
    assert list(await entries(storage)) == [f"{PREFIX}{14:012d}"]  # numbering goes on
    assert await Journal(storage).load(now=6.0) == 1


async def test_a_rolled_back_fold_never_replays_its_entries_over_later_writes(storage):
    journal = Journal(storage)
    await journal.append({"ship:1": {"x": 1}}, [])
    await storage.commit()
    await journal.fold(1.0)
    await storage.rollback()  # the hook that folded raised: its transaction is gone
    assert len(await entries(storage)) == 1  # so is the entry's deletion
    await journal.fold(2.0)  # the next flush without the journal folds (nothing new) ...
    await storage.put("ship:1", {"x": 2})  # ... and writes the key itself
    await storage.commit()
    assert await Journal(storage).load(now=3.0) == 0  # the old entry is superseded, not replayed
    await storage.commit()
    assert await storage.get("ship:1") == {"x": 2} and await entries(storage) == {}


async def test_a_room_that_never_journaled_writes_nothing_when_it_folds(storage):
    journal = Journal(storage)
    assert await journal.load(now=0.0) == 0
    await journal.fold(5.0)
    await storage.commit()
    assert await storage.list() == {}


async def test_an_entry_over_the_value_limit_is_split(storage):
    journal = Journal(storage)
    big = {f"ship:{i}": {"blob": "x" * 1000} for i in range(300)}  # ~300 KB: three entries or more
    await journal.append(big, ["ship:gone"])
    await storage.commit()
    stored = await entries(storage)
    assert len(stored) >= 3 and all(len(v) < MAX_VALUE_BYTES for v in stored.values())
    stored = [read_entry(v) for v in stored.values()]
    assert sum(len(entry[0]) for entry in stored) == 300
    assert [entry[1] for entry in stored if entry[1]] == [["ship:gone"]]
    await Journal(storage).load(now=0.0)
    assert len(await storage.list(prefix="ship:")) == 300
    with pytest.raises(ValueError):
        await journal.append({"ship:huge": "x" * (MAX_VALUE_BYTES + 1)}, [])


async def test_an_entry_with_patches_over_the_limit_is_split_with_whole_values(storage):
    journal = Journal(storage)
    big = {f"ship:{i}": {"blob": "x" * 1000} for i in range(300)}
    seats = {f"seat:{i}": {"player": str(i), "ack": i} for i in range(3)}
    await journal.append(big, [], {k: {"ack": v["ack"]} for k, v in seats.items()}, seats)
    await storage.commit()
    stored = [read_entry(v) for v in (await entries(storage)).values()]
    assert len(stored) >= 3 and not any(entry[2] for entry in stored)
    assert {k: v for entry in stored for k, v in entry[0].items() if k.startswith("seat:")} == seats
    await Journal(storage).load(now=0.0)
    assert await storage.list(prefix="seat:") == seats


async def test_entries_are_read_back_as_bytes_and_as_the_lists_an_older_version_stored(storage):
    await storage.put({"ship:1": {"x": 0}, "ship:2": {"x": 0}})
    journal = Journal(storage)
    await journal.append({"ship:1": {"x": 2, "tags": {"a"}}}, [])  # a set: stored as a list by msgspec
    await storage.put(f"{PREFIX}{2:012d}", [{"ship:3": {"x": 3}}, ["ship:2"]])  # the format before bytes
    await storage.commit()
    assert await Journal(storage).load(now=0.0) == 2
    await storage.commit()
    assert await storage.get("ship:1") == {"x": 2, "tags": ["a"]} and await storage.get("ship:3") == {"x": 3}
    assert await storage.get("ship:2") is None
    with pytest.raises(TypeError):  # a value neither encoder takes: the storage's own error
        await journal.append({"ship:4": object()}, [])


async def test_a_patch_stores_the_changed_fields_and_is_applied_on_the_latest_value(storage):
    await storage.put({"seat:a": {"player": "a", "token": "t" * 32, "ack": 1}, "seat:b": {"ack": 1, "x": 0}})
    await storage.commit()
    journal = Journal(storage)
    a = {"player": "a", "token": "t" * 32, "ack": 5}
    await journal.append({}, [], {"seat:a": {"ack": 5}}, {"seat:a": a})  # a patch of the stored value
    await journal.append({"seat:b": {"ack": 2, "x": 7}}, [])
    await journal.append({}, [], {"seat:b": {"ack": 9}}, {"seat:b": {"ack": 9, "x": 7}})  # ... of a journaled one
    with pytest.raises(KeyError):
        await journal.append({}, [], {"seat:c": {"ack": 1}}, {"seat:a": a})  # a patch needs its whole value
    with pytest.raises(KeyError):
        await journal.append({}, [], {"seat:c": {"ack": 1}})
    await storage.commit()
    (_, _, patches, _, _), = [read_entry(v) for k, v in (await entries(storage)).items() if k.endswith("1")]
    assert patches == {"seat:a": {"ack": 5}}  # the fields alone, not the seat
    assert journal.latest("seat:a") is a  # the whole value, for the fold
    assert await Journal(storage).load(now=0.0) == 3  # a restart: patches applied in order
    await storage.commit()
    assert await storage.get("seat:a") == {"player": "a", "token": "t" * 32, "ack": 5}
    assert await storage.get("seat:b") == {"ack": 9, "x": 7}


def _ship(ship_id: int, x: float, name: str = "Vega") -> dict:
    return {"id": ship_id, "player": f"p{ship_id}", "name": name, "x0": x, "y0": -x, "tx": 2 * x, "ty": 0.5,
            "t0": 1.7e9 + x}


async def test_legs_and_acks_store_packed_legs_and_bare_acks_applied_on_the_latest_values(storage):
    await storage.put({"ship:1": _ship(1, 0.0), "seat:a": {"player": "a", "token": "t" * 32, "ack": 1}})
    await storage.commit()
    journal = Journal(storage)
    a = {"player": "a", "token": "t" * 32, "ack": 5}
    moved = [_ship(1, 1.25), _ship(2, 3.5, name="Rigel")]
    await journal.append({"ship:2": _ship(2, 0.0, name="Rigel")}, [], values={"seat:a": a}, legs=moved[:1],
                         acks={"seat:a": 5})
    await journal.append({}, [], legs=moved[1:])  # a leg of a key journaled in an earlier entry
    await journal.append({}, [], legs=[_ship(9, 1.0)])  # a leg of a key that is in neither: ignored on load
    with pytest.raises(KeyError):  # an ack needs its whole value, as a patch does
        await journal.append({}, [], values={"seat:a": a}, acks={"seat:b": 3})
    await storage.commit()
    first, second, _ = [read_entry(v) for v in (await entries(storage)).values()]
    puts, deletes, patches, legs, acks = first
    assert (list(puts), deletes, patches, acks) == (["ship:2"], [], {}, {"seat:a": 5})  # the bare ack
    assert len(legs) == 48 and len(second[3]) == 48  # a packed leg per ship, not the ship
    assert journal.latest("ship:1") is moved[0] and journal.latest("seat:a") is a  # whole values, for the fold
    assert journal.latest("ship:2") is moved[1]
    assert await Journal(storage).load(now=0.0) == 3  # a restart: the legs and acks replayed in order
    await storage.commit()
    assert await storage.get("ship:1") == moved[0] and await storage.get("ship:2") == moved[1]
    assert await storage.get("seat:a") == a and await storage.get("ship:9") is None


async def test_an_entry_with_legs_over_the_limit_is_split_with_whole_ships(storage):
    journal = Journal(storage)
    ships = [{**_ship(i, float(i)), "blob": "x" * 1000} for i in range(300)]  # 14 KB packed, ~300 KB whole
    seats = {f"seat:{i}": {"player": str(i), "ack": i} for i in range(3)}
    await journal.append({f"ship:{i}": {"blob": "y" * 1000} for i in range(300, 430)}, [], values=seats,
                         legs=ships, acks={k: v["ack"] for k, v in seats.items()})  # 130 KB of puts: too big
    await storage.commit()
    stored = [read_entry(v) for v in (await entries(storage)).values()]
    assert len(stored) >= 3 and not any(entry[3] or entry[4] for entry in stored)
    await Journal(storage).load(now=0.0)
    await storage.commit()
    assert await storage.get("ship:7") == ships[7] and await storage.list(prefix="seat:") == seats


async def test_an_entry_of_an_unknown_format_is_refused_not_misread(storage):
    await storage.put(f"{PREFIX}{1:012d}", msgspec.msgpack.encode({"v": 3, "puts": {"ship:1": {"x": 1}}}))
    await storage.commit()
    with pytest.raises(ValueError, match="unknown format"):
        await Journal(storage).load(now=0.0)


@pytest.mark.parametrize("kind, room_id, params", [("system", "sol", PARAMS), ("session", "s1", {})],
                         ids=["system", "session"])
async def test_a_room_that_crashes_between_folds_keeps_every_acknowledged_input(room_directory, manual_clock,
                                                                                kind, room_id, params):
    room = await room_directory.get(kind, room_id, params)
    if kind == "session":  # a game session is created first (rooms/session/http.py)
        await room.request(HttpRequest("POST", "create", body=json.dumps({"seed": 1}).encode()))
    a = await join(room, "a")
    b = await join(room, "b")
    await drain(room)
    runtime = room_directory.runtime(kind, room_id)
    acked = {}
    for seq in range(2, 6):  # four ticks of inputs, all within one fold interval
        await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, seq, {"x": 100.0 + seq, "y": 0.0})),
                                   Message("b", P.ClientMessage(P.MOVE_TO, seq, {"x": -100.0, "y": 10.0 * seq}))])
        await manual_clock.advance(0.1)
        for ids, (_, _, payload) in of_type_with_ids(await drain(room), P.FRAME):
            acked[ids[0]] = payload["ack"]
    assert acked == {"a": 5, "b": 5}
    assert await entries(runtime.storage)  # the ticks went to the journal, not yet folded
    stored_seat = await runtime.storage.get("seat:p-a")
    assert stored_seat["ack"] < 5  # the key lags: the ack is only in the journal
    await runtime.crash()
    room = await room_directory.get(kind, room_id, params)
    again_a = await join(room, "a2", player="p-a", resume=a.welcome["seat"])
    again_b = await join(room, "b2", player="p-b", resume=b.welcome["seat"])
    assert again_a.welcome["resumed"] and again_a.welcome["ack"] == 5
    assert again_b.welcome["resumed"] and again_b.welcome["ack"] == 5
    runtime = room_directory.runtime(kind, room_id)
    ship = runtime.room.ships[a.welcome["ship"]]
    assert (ship["tx"], ship["ty"]) == pytest.approx((105.0, 0.0), abs=1.0)  # the last acknowledged order
    ship = runtime.room.ships[b.welcome["ship"]]
    assert (ship["tx"], ship["ty"]) == pytest.approx((-100.0, 50.0), abs=1.0)
    assert await entries(runtime.storage) == {}  # folded when the room started


async def test_a_ticking_room_folds_its_journal_every_fold_interval(room_directory, manual_clock):
    room = await open_room(room_directory)
    await join(room, "a")
    runtime = room_directory.runtime("system", "sol")
    seen = []
    for seq in range(2, 2 + int(FOLD_INTERVAL * 10) * 2):
        await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, seq, {"x": 100.0 + seq, "y": 0.0}))])
        await manual_clock.advance(0.1)
        await drain(room)
        seen.append(len(await entries(runtime.storage)))
    assert max(seen) <= FOLD_INTERVAL * 10 + 1 and 0 in seen[2:]  # bounded: folded on the way
    assert (await runtime.storage.get("seat:p-a"))["ack"] >= seq - FOLD_INTERVAL * 10 - 1


async def test_a_tick_that_folds_the_journal_sends_its_frame_first(room_directory, manual_clock):
    # The fold (every ship and seat key) is the tick's longest write: it waits until the tick's
    # frame has been handed to the gateways, so that frame is not late (issue 17's latency).
    room = await open_room(room_directory)
    await join(room, "a")
    ship_room = room_directory.runtime("system", "sol").room
    order = []
    send_spliced, fold = ship_room.send_spliced, ship_room.journal.fold

    def logged_send(tail, heads, **kwargs):
        order.append(("frame", manual_clock.now()))
        return send_spliced(tail, heads, **kwargs)

    async def logged_fold(now):
        order.append(("fold", manual_clock.now()))
        return await fold(now)

    ship_room.send_spliced, ship_room.journal.fold = logged_send, logged_fold
    acked = 0
    for seq in range(2, 2 + int(FOLD_INTERVAL * 10) * 2):
        await room.send_batch(GW, [Message("a", P.ClientMessage(P.MOVE_TO, seq, {"x": 100.0 + seq, "y": 0.0}))])
        await manual_clock.advance(0.1)
        frames = of_type(await drain(room), P.FRAME)
        acked = max([acked] + [payload["ack"] for _, _, payload in frames])
        assert acked == seq  # every tick's frame acknowledges its input, fold or not
    folds = [i for i, (what, _) in enumerate(order) if what == "fold"]
    assert folds  # folded on the way ...
    for i in folds:  # ... each right after the frame of its own tick
        assert order[i - 1] == ("frame", order[i][1])


def of_type_with_ids(items, type_):
    return [(ids, m) for ids, m in (i for i in items if i[0] not in ("close", "hibernate")) if m[0] == type_]


assert PARAMS["pilots"] is False  # players only: no pilot rooms behind the system


async def test_packed_legs_are_stored_as_legs_and_fold_as_the_ships_current_dicts(storage):
    await storage.put({"ship:1": _ship(1, 0.0), "ship:2": _ship(2, 0.0)})
    await storage.commit()
    current = {1: _ship(1, 1.25), 2: _ship(2, 3.5)}
    with pytest.raises(ValueError):  # packed legs need a resolve
        await Journal(storage).append({}, [], packed_legs=(pack_legs([current[1]]), [1]))
    journal = Journal(storage, resolve=current.get)
    await journal.append({}, [], packed_legs=(pack_legs([current[1], current[2]]), [1, 2]))
    await journal.append({}, [], packed_legs=(b"", []))  # nothing: no entry
    await storage.commit()
    (entry,) = [read_entry(v) for v in (await entries(storage)).values()]
    assert entry[:3] == ({}, [], {}) and len(entry[3]) == 96  # 48 bytes a leg
    assert await Journal(storage).load(now=0.0) == 1  # a restart replays the legs onto the stored ships
    await storage.rollback()
    current[1] = _ship(1, 2.5)  # moved again since (its next entry is not written yet)
    assert journal.latest("ship:1") is current[1]  # the current dict
    del current[2]  # gone from the room
    assert journal.latest("ship:2") is DELETED
    await journal.fold(now=0.0)
    await storage.commit()
    assert await storage.get("ship:1") == current[1] and await storage.get("ship:2") is None
    assert await entries(storage) == {}


async def test_an_entry_with_packed_legs_over_the_limit_is_split_with_the_current_ships(storage):
    current = {i: {**_ship(i, float(i)), "blob": "x" * 1000} for i in range(300)}
    journal = Journal(storage, resolve=current.get)
    await journal.append({f"ship:{i}": {"blob": "y" * 1000} for i in range(300, 430)}, [],
                         packed_legs=(pack_legs(list(current.values())), list(current)))  # 130 KB of puts: too big
    await storage.commit()
    stored = [read_entry(v) for v in (await entries(storage)).values()]
    assert len(stored) >= 3 and not any(entry[3] for entry in stored)  # whole ships instead
    await Journal(storage).load(now=0.0)
    await storage.commit()
    assert await storage.get("ship:7") == current[7]


async def test_the_newest_of_a_packed_leg_and_a_whole_value_of_a_ship_wins(storage):
    current = {1: _ship(1, 1.0), 2: _ship(2, 2.0)}
    journal = Journal(storage, resolve=current.get)
    whole = {**_ship(1, 5.0), "name": "Deneb"}
    await journal.append({"ship:2": _ship(2, 9.0)}, [])  # a whole value, then a packed leg: the leg's ship
    await journal.append({}, [], packed_legs=(pack_legs([current[1], current[2]]), [1, 2]))
    await journal.append({"ship:1": whole}, [])  # a packed leg, then a whole value: the value
    assert journal.latest("ship:1") is whole and journal.latest("ship:2") is current[2]
    await journal.append({}, [], legs=[_ship(2, 7.0)])  # a leg as a dict supersedes the current one too
    assert journal.latest("ship:2") == _ship(2, 7.0)
    await journal.fold(now=0.0)
    await storage.commit()
    assert await storage.get("ship:1") == whole and await storage.get("ship:2") == _ship(2, 7.0)

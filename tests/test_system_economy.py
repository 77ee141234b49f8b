"""The economy inside a solar system room (issue 16; docs/economy.md §3-5): scans, mining,
pirate bounties and wrecks, loot, player wrecks, the ledger view and the audit. In-process
rooms on a manual clock; the posts a system commits are recorded as they leave its outbox
(``Posts._enqueue_post``), and the pilot room's answers (``unstow``, ``wreck``, ``ledger``) are
sent to the system by the test as a pilot room would."""

from __future__ import annotations

import json
import math

import msgpack
import pytest

from starhold import HttpRequest
from starhold._runtime.posts import Posts
from starhold.messages import kind_schemas, parse_client_message
from starhold.rooms import protocol as P
from starhold.rooms.economy.anomalies import anomalies
from starhold.rooms.economy.loot import BOUNTY, pirate_loot
from starhold.rooms.system.params import system_params
from starhold.rooms.system.room import SolarSystemRoom
from starhold.rooms.system.targets import Targets
from starhold.rooms.ships.room import GAME_EPOCH

from test_combat_game import Game, nearest_pirate

SOL = system_params("sol")


class EcoGame(Game):
    """``Game`` that also keeps every message per connection."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages: dict[str, list] = {}

    def _on(self, conn, message):
        self.messages.setdefault(conn, []).append(message)
        super()._on(conn, message)

    def of(self, conn, type_):
        return [m[2] for m in self.messages.get(conn, ()) if m[0] == type_]

    @property
    def room_obj(self):
        return self.directory.runtime(self.kind, self.name).room

    async def place(self, conn, x, y):
        """Put ``conn``'s ship at rest at ``(x, y)`` (as if it had flown there)."""
        await self.room()
        runtime = self.directory.runtime(self.kind, self.name)
        async with runtime._gate:
            room = runtime.room
            ship = room.ships[self.welcomes[conn]["ship"]]
            room.sim.fly(ship, x, y, [], room.clock.now(), dest=None)
        await self.advance(0.1)

    async def post(self, path, body, *, sender, key):
        handle = await self.room()
        return await handle.request(HttpRequest("POST", path, {}, json.dumps(body).encode(), sender=sender, key=key))

    async def audit(self):
        handle = await self.room()
        return (await handle.request(HttpRequest("GET", "economy"))).body


@pytest.fixture
def posts(monkeypatch):
    """Every committed post, as ``(sender key, item)``, in commit order."""
    sent = []
    original = Posts._enqueue_post

    def record(self, seq, item):
        sent.append((self.key, {**item, "body": json.loads(item["body"] or "null")}))
        original(self, seq, item)

    monkeypatch.setattr(Posts, "_enqueue_post", record)
    return sent


def posts_to(posts, path):
    return [item for sender, item in posts if sender.startswith("system/") and item["path"] == path]


@pytest.fixture
def game(room_directory, manual_clock):
    return EcoGame(room_directory, manual_clock, params={**SOL, "pirates": False})


def beside_field(game, index, gap=15.0):
    """A free point ``gap`` units beyond field ``index``'s bounding disc, on the star's side."""
    field = game.room_obj.economy.targets.fields_json()[index]
    d = math.hypot(field["x"], field["y"])
    r = d - field["radius"] - gap
    return field["x"] / d * r, field["y"] / d * r


async def test_a_scan_completes_the_same_for_two_pilots_and_posts_discover(game, posts):
    await game.join("a")
    await game.join("b")
    x, y = beside_field(game, 0)
    await game.place("a", x, y)
    await game.place("b", x + 5.0, y)
    seq = await game.send("a", P.SCAN, {"target": "field:0"})
    await game.advance(0.5)
    started = [m for m in game.messages["a"] if m[0] == P.SCAN]
    assert started[0][1] == seq and started[0][2]["target"] == "field:0"
    me = game.welcomes["a"]["ship"]
    assert game.flags_seen["b"][me] & P.SHIP_SCANNING  # the other pilot sees it scanning
    await game.send("b", P.SCAN, {"target": "field:0"})
    await game.advance(P.SCAN_SECONDS + 0.2)
    done_a, done_b = game.of("a", P.SCAN)[-1], game.of("b", P.SCAN)[-1]
    assert done_a["state"] == done_b["state"] == "done"
    strip = lambda r: {k: v for k, v in r.items() if k != "scan"}  # noqa: E731
    assert strip(done_a) == strip(done_b)
    targets = game.room_obj.economy.targets
    assert done_a["resources"] == targets.capacities(0) and done_a["region"] == "core"
    assert done_a["kind"] == "asteroid field" and done_a["lore"]
    assert ["field:sol/0", "in", "star:sol"] in done_a["fragments"]
    assert [f"field:sol/0", "holds", "resource:ferrite"] in done_a["fragments"]
    discover = posts_to(posts, "discover")
    assert sorted(d["id"] for d in discover) == sorted(["p-a", "p-b"])
    assert {d["key"] for d in discover} == {f"discover:{done_a['scan']}", f"discover:{done_b['scan']}"}
    assert all(d["body"]["fragments"] == done_a["fragments"] for d in discover)
    await game.advance(0.5)
    assert not game.ship("b", me)[2] & P.SHIP_SCANNING  # the flag is gone with the scan


async def test_a_move_cancels_a_scan_and_range_and_targets_are_checked(game, posts):
    await game.join("a")
    x, y = beside_field(game, 1)
    await game.place("a", x, y)
    await game.send("a", P.SCAN, {"target": "field:1"})
    await game.advance(1.0)
    await game.move("a", 0.0, -150.0)
    await game.advance(P.SCAN_SECONDS)
    assert game.of("a", P.SCAN)[-1] == {"target": "field:1", "state": "cancelled", "reason": "moved"}
    assert posts_to(posts, "discover") == []
    # out of range at the start; unknown targets
    await game.place("a", 0.0, -150.0)
    bad = {await game.send("a", P.SCAN, {"target": "field:1"}): P.ERR_TOO_FAR,
           await game.send("a", P.SCAN, {"target": "field:9"}): P.ERR_UNKNOWN_OBJECT,
           await game.send("a", P.SCAN, {"target": "planet:42"}): P.ERR_UNKNOWN_OBJECT,
           await game.send("a", P.SCAN, {"target": "anomaly:0"}): P.ERR_UNKNOWN_OBJECT,  # sol has none
           await game.send("a", P.SCAN, {"target": "field:01"}): P.ERR_UNKNOWN_OBJECT,
           await game.send("a", P.LOOT, {"wreck": 77}): P.ERR_UNKNOWN_OBJECT,
           await game.send("a", P.MINE, {"target": "field:1"}): P.ERR_TOO_FAR}
    await game.advance(0.2)
    assert dict(game.errors["a"]) == bad
    # out of range at the end: the ship is taken away during the scan
    await game.place("a", x, y)
    await game.send("a", P.SCAN, {"target": "field:1"})
    await game.advance(1.0)
    await game.place("a", 0.0, -150.0)
    await game.advance(P.SCAN_SECONDS)
    assert game.of("a", P.SCAN)[-1]["reason"] == "out of range"
    # the wire: a target is a string of 1-64 characters, a wreck a non-negative integer
    for type_, payload, code in ((P.SCAN, {"target": ""}, P.ERR_OUT_OF_RANGE), (P.SCAN, {}, P.ERR_INVALID_FIELD),
                                 (P.SCAN, {"target": "x" * 65}, P.ERR_OUT_OF_RANGE),
                                 (P.MINE, {"target": 5}, P.ERR_INVALID_FIELD),
                                 (P.LOOT, {"wreck": -1}, P.ERR_OUT_OF_RANGE), (P.LOOT, {}, P.ERR_INVALID_FIELD)):
        with pytest.raises(P.ProtocolError) as info:
            parse_client_message(msgpack.packb([type_, 3, payload]), kind_schemas(SolarSystemRoom))
        assert info.value.code == code, (type_, payload)
    assert parse_client_message(msgpack.packb([P.MINE, 3, {"target": None}]),
                                kind_schemas(SolarSystemRoom)).payload == P.Mine(None)


async def test_a_planet_must_be_scanned_before_it_is_mined(game, posts):
    await game.join("a")
    room = game.room_obj
    neptune = room.economy.targets.planets[8]
    px, py = neptune.position(room.clock.now() + 1.0 - GAME_EPOCH)
    d = math.hypot(px, py)
    await game.place("a", px / d * (d - 40.0), py / d * (d - 40.0))
    seq = await game.send("a", P.MINE, {"target": "planet:8"})
    await game.advance(0.2)
    assert game.errors["a"] == [(seq, P.ERR_UNKNOWN_OBJECT)]
    await game.send("a", P.SCAN, {"target": "planet:8"})
    await game.advance(P.SCAN_SECONDS + 0.2)
    done = game.of("a", P.SCAN)[-1]
    assert done["state"] == "done" and done["kind"] == "ice giant"
    assert ["planet:sol/8", "orbits", "star:sol"] in done["fragments"]
    await game.send("a", P.MINE, {"target": "planet:8"})
    await game.advance(P.MINE_CYCLE + 0.2)
    stow = posts_to(posts, "stow")
    assert len(stow) == 1 and stow[0]["body"]["from"] == "planet:8" and stow[0]["body"]["source"] == "mine"


async def test_mining_depletes_the_field_posts_stow_and_stops_when_the_hold_is_full(game, posts):
    await game.join("a")
    await game.join("b")
    caps = game.room_obj.economy.targets.capacities(1)
    richest = max(caps, key=caps.get)
    x, y = beside_field(game, 1)
    await game.place("a", x, y)
    # the pilot's ledger view: 90 of 100 units used
    view = {"player": "p-a", "version": 5, "credits": 1000, "cargo": {"ice": 90}, "capacity": 100, "reserved": 0}
    assert (await game.post("ledger", view, sender="pilot/p-a", key="l5")).status == 200
    await game.advance(0.1)
    assert game.of("a", P.CARGO)[-1] == {"credits": 1000, "cargo": {"ice": 90}, "capacity": 100, "reserved": 0,
                                         "free": 10}
    stale = {**view, "version": 4, "cargo": {}}
    assert (await game.post("ledger", stale, sender="pilot/p-a", key="l4")).body == {"applied": False}
    assert (await game.post("ledger", view, sender="pilot/p-b", key="x")).status == 403
    assert (await game.post("ledger", view, sender="", key="x")).status == 404  # rooms only
    await game.send("a", P.MINE, {"target": "field:1"})
    await game.advance(0.3)
    me = game.welcomes["a"]["ship"]
    assert game.of("a", P.MINE)[-1] == {"target": "field:1", "state": "started"}
    assert game.flags_seen["b"][me] & P.SHIP_MINING
    await game.advance(4 * P.MINE_CYCLE)
    stow = posts_to(posts, "stow")
    # 4 + 4 + 2: the view's free space, then the hold is full
    assert [s["body"]["goods"] for s in stow] == [{richest: 4}, {richest: 4}, {richest: 2}]
    assert [s["key"] for s in stow] == ["stow:sol:1", "stow:sol:2", "stow:sol:3"]
    assert all(s["id"] == "p-a" and s["body"]["from"] == "field:1" for s in stow)
    assert game.errors["a"][-1] == (0, P.ERR_HOLD_FULL)
    assert game.of("a", P.MINE)[-1] == {"target": "field:1", "state": "stopped", "reason": "hold full"}
    assert game.of("a", P.CARGO)[-1]["free"] == 0
    amounts = (await game.audit())["fields"]["field:1"]
    assert amounts[richest] == pytest.approx(caps[richest] - 10, abs=0.5)  # regrowth meanwhile
    seq = await game.send("a", P.MINE, {"target": "field:1"})
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_HOLD_FULL)
    # the pilot had room for 6 only: it gives 4 back
    body = {"from": "field:1", "goods": {richest: 4}}
    assert (await game.post("unstow", body, sender="pilot/p-a", key="u1")).body == {"applied": True}
    assert (await game.post("unstow", body, sender="pilot/p-a", key="u1")).body == {"applied": False}
    amounts = (await game.audit())["fields"]["field:1"]
    assert amounts[richest] == pytest.approx(caps[richest] - 6, abs=0.5)
    # a fresh view with room: mining goes on until stopped
    await game.post("ledger", {**view, "version": 6, "cargo": {}}, sender="pilot/p-a", key="l6")
    await game.send("a", P.MINE, {"target": "field:1"})
    await game.advance(P.MINE_CYCLE + 0.2)
    await game.send("a", P.MINE, {"target": None})
    await game.advance(2 * P.MINE_CYCLE)
    assert len(posts_to(posts, "stow")) == 4
    assert game.of("a", P.MINE)[-1]["reason"] == "stopped"
    # regrowth: 5 % of the capacity per hour, in closed form (the room sleeps meanwhile)
    await game.leave("a")
    await game.leave("b")
    gone = {**view, "version": 9}  # the ship docked: the system keeps no view of its ledger
    assert (await game.post("ledger", gone, sender="pilot/p-a", key="l9")).body == {"applied": False}
    assert (await game.post("ledger", [1], sender="pilot/p-a", key="l9")).status == 400
    before = (await game.audit())["fields"]["field:1"][richest]
    await game.clock.advance(1800.0)
    after = (await game.audit())["fields"]["field:1"][richest]
    assert after == pytest.approx(min(caps[richest], before + caps[richest] * 0.025), abs=0.01)


async def test_pirate_kill_pays_a_bounty_and_leaves_a_wreck_to_loot(room_directory, manual_clock, posts):
    game = EcoGame(room_directory, manual_clock, params=SOL)
    welcome = await game.join("a")
    me = welcome["ship"]
    pirate, _ = nearest_pirate(game, "a")
    await game.attack("a", pirate)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED and e[2] == pirate for e in game.events["a"]), 60.0)
    await game.advance(0.2)
    assert game.states["a"].hp[me][0] > 0
    bounty = posts_to(posts, "bounty")
    assert [(b["id"], b["key"], b["body"]) for b in bounty] == [
        ("p-a", f"bounty:sol:{pirate}:1", {"credits": BOUNTY["raider"], "pirate": pirate})]
    wrecks = game.of("a", P.WRECKS)[-1]["wrecks"]
    loot = pirate_loot("sol", pirate, 1, "core")
    assert len(wrecks) == 1 and wrecks[0]["goods"] == loot
    wreck = wrecks[0]
    assert wreck["expires"] == pytest.approx(game.clock.now() - GAME_EPOCH + P.WRECK_TTL, abs=1.0)
    audit = await game.audit()
    assert audit["dropped"] == loot and audit["wrecks"] == wrecks
    # loot: too far, then near
    await game.place("a", wreck["x"] + 150.0, wreck["y"])
    seq = await game.send("a", P.LOOT, {"wreck": wreck["id"]})
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_TOO_FAR)
    await game.place("a", wreck["x"] + 50.0, wreck["y"])
    # a hold with 1 unit free: that much is taken, the rest stays in the wreck
    # (a version above the real pilot room's own views, which its bounty post just bumped)
    view = {"player": "p-a", "version": 1001, "credits": 0, "cargo": {"ice": 99}, "capacity": 100, "reserved": 0}
    await game.post("ledger", view, sender="pilot/p-a", key="l1")
    first = next(iter(loot))
    seq = await game.send("a", P.LOOT, {"wreck": wreck["id"]})
    await game.advance(0.2)
    assert game.of("a", P.LOOT)[-1] == {"wreck": wreck["id"], "goods": {first: 1}}
    rest = {**loot, first: loot[first] - 1}
    assert game.of("a", P.WRECKS)[-1]["wrecks"][0]["goods"] == {k: v for k, v in rest.items() if v}
    seq = await game.send("a", P.LOOT, {"wreck": wreck["id"]})
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_HOLD_FULL)
    # the pilot had no room after all: it gives the unit back to the wreck (once)
    unstow = {"from": f"wreck:{wreck['id']}", "goods": {first: 1}}
    for _ in range(2):
        assert (await game.post("unstow", unstow, sender="pilot/p-a", key="u1")).status == 200
    await game.advance(0.2)
    assert game.of("a", P.WRECKS)[-1]["wrecks"][0]["goods"] == loot
    await game.post("ledger", {**view, "version": 1002, "cargo": {}}, sender="pilot/p-a", key="l2")
    seq = await game.send("a", P.LOOT, {"wreck": wreck["id"]})
    await game.advance(0.2)
    assert game.of("a", P.LOOT)[-1] == {"wreck": wreck["id"], "goods": loot}
    stow = posts_to(posts, "stow")
    assert [s["body"] for s in stow] == [{"goods": {first: 1}, "source": "loot", "from": f"wreck:{wreck['id']}"},
                                         {"goods": loot, "source": "loot", "from": f"wreck:{wreck['id']}"}]
    assert game.of("a", P.WRECKS)[-1]["wrecks"] == []
    assert game.of("a", P.CARGO)[-1]["cargo"] == loot  # the view counts what was sent
    assert (await game.audit())["wrecks"] == []
    # the pilot gives some back: the wreck is gone, so they are destroyed (counted)
    await game.post("unstow", {**unstow, "goods": {first: 2}}, sender="pilot/p-a", key="u2")
    assert (await game.audit())["expired"] == {first: 2}


async def test_a_destroyed_player_ship_posts_destroyed_and_the_pilot_wreck_appears_and_expires(game, posts):
    await game.join("a")
    await game.join("b")
    b = game.welcomes["b"]["ship"]
    room = game.room_obj
    room.fleet.arrays()
    room.sim.battle.state["hp"][room.sim.battle.index[b]] = 1  # one hit from destruction
    await game.attack("a", b)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED and e[2] == b for e in game.events["a"]), 30.0)
    await game.advance(0.2)
    destroyed = posts_to(posts, "destroyed")
    assert len(destroyed) == 1 and destroyed[0]["id"] == "p-b"
    body = destroyed[0]["body"]
    assert destroyed[0]["key"] == f"destroyed:sol:{body['wreck']}" and set(body) == {"wreck", "x", "y"}
    assert game.of("a", P.WRECKS)[-1]["wrecks"] == []  # not before the pilot says what was lost
    answer = {"wreck": body["wreck"], "goods": {"ice": 7, "platinum": 2}, "x": body["x"], "y": body["y"]}
    assert (await game.post("wreck", answer, sender="pilot/p-b", key="w1")).body == {"applied": True}
    assert (await game.post("wreck", answer, sender="pilot/p-b", key="w1")).body == {"applied": False}
    assert (await game.post("wreck", answer, sender="system/x", key="w3")).status == 403
    await game.advance(0.2)
    wrecks = game.of("a", P.WRECKS)[-1]["wrecks"]
    assert [(w["id"], w["goods"]) for w in wrecks] == [(body["wreck"], {"ice": 7, "platinum": 2})]
    assert game.of("b", P.WRECKS)[-1]["wrecks"] == wrecks
    # a restart keeps the wrecks and the fields
    await game.place("a", *beside_field(game, 0))
    await game.send("a", P.MINE, {"target": "field:0"})
    await game.advance(P.MINE_CYCLE + 0.2)
    before = await game.audit()
    assert before["fields"]["field:0"] != {k: float(v) for k, v in room.economy.targets.capacities(0).items()}
    await game.directory.runtime("system", "sol").crash()
    after = await game.audit()
    assert after["wrecks"] == before["wrecks"] and after["fields"]["field:0"] == pytest.approx(
        before["fields"]["field:0"], abs=0.01)
    # expiry: the goods are destroyed and counted; the sockets are told (the room's deadline)
    await game.join("a2", player="p-a")  # the crash dropped the sockets: the client rejoins
    assert game.of("a2", P.WRECKS) == [{"wrecks": before["wrecks"]}]
    await game.advance(P.WRECK_TTL, step=60.0)
    await game.room()  # the room slept meanwhile: a new handle on it
    await game.pump()
    assert game.of("a2", P.WRECKS)[-1]["wrecks"] == []
    audit = await game.audit()
    assert audit["wrecks"] == [] and audit["expired"] == {"ice": 7, "platinum": 2}
    # goods the system cannot place (a wreck id it never issued) are destroyed and counted
    await game.post("wreck", {"wreck": 999, "goods": {"ice": 1}, "x": 0, "y": 0}, sender="pilot/p-b", key="w9")
    assert (await game.audit())["expired"] == {"ice": 8, "platinum": 2}


async def test_an_anomaly_is_scanned_for_its_origin(room_directory, manual_clock, posts):
    system_id = next(f"eco-{i}" for i in range(100) if anomalies(f"eco-{i}"))
    anomaly = anomalies(system_id)[0]
    params = {"system": {"id": system_id, "name": "Test", "star_radius": 40.0, "planets": []}, "lanes": [],
              "pirates": False}
    game = EcoGame(room_directory, manual_clock, name=system_id, params=params)
    welcome = await game.join("a")
    assert welcome["system"]["anomalies"] == [{"index": 0, "x": anomaly.x, "y": anomaly.y}]
    assert welcome["system"]["region"] == "core" and len(welcome["system"]["fields"]) >= 2
    x, y = anomaly.x * 0.9, anomaly.y * 0.9
    await game.place("a", x, y)
    await game.send("a", P.SCAN, {"target": "anomaly:0"})
    await game.advance(P.SCAN_SECONDS + 0.2)
    done = game.of("a", P.SCAN)[-1]
    assert done["state"] == "done" and done["kind"] == anomaly.kind and done["origin"] == anomaly.origin
    node = f"anomaly:{system_id}/0"
    assert [node, "originates_from", f"origin:{anomaly.origin}"] in done["fragments"]
    seq = await game.send("a", P.MINE, {"target": "anomaly:0"})
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_UNKNOWN_OBJECT)


async def test_a_ship_without_a_pilot_room_cannot_mine(game):
    welcome = await game.join("a", player="anon-a")
    assert welcome["ship"]
    await game.place("a", *beside_field(game, 0))
    seq = await game.send("a", P.MINE, {"target": "field:0"})
    await game.advance(0.2)
    assert game.errors["a"] == [(seq, P.ERR_SHIP_BUSY)]
    assert Targets.field_of("anomaly", 0) is None


async def test_the_checkout_gives_the_region_and_the_ledger_view(game, monkeypatch):
    from starhold.rooms.pilot.room import PilotRoom

    asked = []
    original = PilotRoom._checkout

    def checkout(self, request, body):
        asked.append(body)
        answer = original(self, request, body)
        if answer.status == 200:
            answer.body["ledger"] = {"player": self.name, "version": 3, "credits": 1000, "cargo": {"ferrite": 5},
                                     "capacity": 100, "reserved": 10}
        return answer

    monkeypatch.setattr(PilotRoom, "_checkout", checkout)
    welcome = await game.join("a")
    assert asked == [{"system": "sol", "name": "a", "region": "core"}]
    assert welcome["system"]["region"] == "core" and welcome["system"]["anomalies"] == []
    assert [f["index"] for f in welcome["system"]["fields"]] == [0, 1, 2]
    types = [m[0] for m in game.messages["a"]]
    assert types.index(P.CARGO) > types.index(P.WELCOME)
    assert game.of("a", P.CARGO) == [{"credits": 1000, "cargo": {"ferrite": 5}, "capacity": 100, "reserved": 10,
                                      "free": 85}]
    assert game.of("a", P.WRECKS) == [{"wrecks": []}]

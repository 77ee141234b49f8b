"""Combat in the solar system room (rooms/system/combat.py): pirates, the ``attack`` input, duels,
respawns, hibernation; the game session room stays as it was. In-process rooms on a manual
clock, frames applied by the Python client's ``WorldState``; no sleeping."""

import json
import math

import msgpack
import pytest

from starhold.rooms import protocol as P
from starhold._runtime.events import Message
from starhold.messages import kind_schemas, parse_client_message
from starhold.client.state import WorldState
from starhold.rooms.system.combat import PIRATE_STATS, PLAYER_STATS
from starhold._runtime.handle import RoomGone
from starhold.room import HttpRequest
from starhold.rooms.system.room import SPAWN_RADIUS, SolarSystemRoom

SYSTEM = {"id": "sol", "name": "Sol", "color": "#fff2e7", "star_radius": 40.0, "planets": []}
GW = "gw-combat"


class Game:
    """A room and the clients connected to it through one fake gateway: every frame is
    applied to its client's ``WorldState``; errors and events are collected per client."""

    def __init__(self, directory, clock, kind="system", name="sol", params=None):
        self.directory, self.clock, self.kind, self.name = directory, clock, kind, name
        self.params = {"system": SYSTEM} if params is None else params
        self.states: dict[str, WorldState] = {}
        self.welcomes: dict[str, dict] = {}
        self.errors: dict[str, list] = {}
        self.events: dict[str, list] = {}  # conn -> [(tick, kind, a, b, value)]
        self.flags_seen: dict[str, dict[int, int]] = {}  # conn -> ship -> OR of its flags
        self.frames: dict[str, list] = {}
        self.seq: dict[str, int] = {}
        self.handle = None

    async def room(self):
        """A handle on the room, waking it (as the gateway does for a join or an input)."""
        self.handle = await self.directory.get(self.kind, self.name, self.params)
        return self.handle

    async def pump(self):
        """Apply what the room sent; a sleeping room is not woken (the gateway keeps sockets)."""
        try:
            items = await self.handle.pull(GW, 0)
        except RoomGone:
            return
        for item in items:
            if item[0] == "send":
                for conn in item[1]:
                    self._on(conn, P.decode_server(item[2]))
            elif item[0] == "splice":
                for conn, head in item[2]:
                    self._on(conn, P.decode_server(head + item[1]))

    def _on(self, conn, message):
        type_, seq, payload = message
        if type_ == P.WELCOME:
            self.welcomes[conn] = payload
        elif type_ == P.ERROR:
            self.errors.setdefault(conn, []).append((seq, payload["code"]))
        elif type_ == P.FRAME:
            state = self.states.setdefault(conn, WorldState())
            assert state.apply(payload), "a delta that does not follow the last frame"
            self.frames.setdefault(conn, []).append(payload)
            self.events.setdefault(conn, []).extend((payload["tick"], *e) for e in payload.get("events", ()))
            seen = self.flags_seen.setdefault(conn, {})
            for row in payload["ships"]:
                seen[row[0]] = seen.get(row[0], 0) | row[3]

    async def join(self, conn, player=None, **payload):
        room = await self.room()
        self.seq[conn] = 1
        await room.connect(GW, conn, payload, 1, identity={"player": player or f"p-{conn}", "name": conn,
                                                            "kind": "guest"})
        self.states[conn] = WorldState()
        await self.pump()
        return self.welcomes[conn]

    async def send(self, conn, type_, payload):
        self.seq[conn] += 1
        room = await self.room()
        await room.send_batch(GW, [Message(conn, P.ClientMessage(type_, self.seq[conn], payload))])
        return self.seq[conn]

    async def move(self, conn, x, y):
        return await self.send(conn, P.MOVE_TO, {"x": float(x), "y": float(y)})

    async def attack(self, conn, target):
        return await self.send(conn, P.ATTACK, {"target": target})

    async def leave(self, conn):
        room = await self.room()
        await room.close(GW, conn, P.CLOSE_NORMAL, "bye")
        await self.pump()
        await self.posts_delivered()

    async def posts_delivered(self):
        """Wait until every room delivered its posts (the ship's checkin to its pilot room
        goes in real time, outside the manual clock)."""
        import asyncio

        async with asyncio.timeout(30):
            while self.directory.posts_pending():
                await asyncio.sleep(0.01)

    async def advance(self, seconds, step=0.5):
        while seconds > 1e-9:
            dt = min(step, seconds)
            await self.clock.advance(dt)
            seconds -= dt
            await self.pump()

    async def until(self, predicate, timeout, step=0.1):
        """Advance in ``step``s until ``predicate()``; returns the seconds it took."""
        waited = 0.0
        while not predicate():
            assert waited < timeout, f"not within {timeout} s"
            await self.advance(step, step)
            waited += step
        return waited

    def ship(self, conn, ship_id):
        return self.states[conn].ships[ship_id]

    def pirates(self, conn):
        return {i: row for i, row in self.states[conn].ships.items() if row[2] & P.SHIP_NPC}


def near(point, toward, distance):
    """The point ``distance`` from ``point`` in the direction of ``toward``."""
    dx, dy = toward[0] - point[0], toward[1] - point[1]
    d = math.hypot(dx, dy)
    return point[0] + dx / d * distance, point[1] + dy / d * distance


def nearest_pirate(game, conn):
    me = game.ship(conn, game.welcomes[conn]["ship"])
    return min(game.pirates(conn).items(), key=lambda kv: math.dist(kv[1][:2], me[:2]))


@pytest.fixture
def game(room_directory, manual_clock):
    return Game(room_directory, manual_clock)


# ---- pirates ---------------------------------------------------------------------------------
async def test_welcome_describes_obstacles_and_frames_show_pirates_with_hp(game):
    welcome = await game.join("a")
    system = welcome["system"]
    assert system["exclusion_radius"] > SYSTEM["star_radius"] and system["asteroids"]
    assert all(set(d) == {"x", "y", "radius"} for d in system["asteroids"])
    state = game.states["a"]
    pirates = game.pirates("a")
    assert 2 <= len(pirates) <= 4
    me = welcome["ship"]
    assert state.hp[me] == [PLAYER_STATS["max_hp"]] * 2
    assert all(state.hp[i] == [PIRATE_STATS["max_hp"]] * 2 for i in pirates)
    # pirates wait at their posts far from the spawn ring: nothing happens
    await game.advance(3.0)
    assert game.events["a"] == []
    assert all(not row[2] & P.SHIP_IN_COMBAT for row in state.ships.values())
    keys = list(game.frames["a"][-1])
    assert keys == ["tick", "ack", "base", "time", "ships", "removed", "names", "hp", "events"]


async def test_pirates_attack_a_player_who_comes_near(game):
    welcome = await game.join("a")
    me = welcome["ship"]
    pirate, row = nearest_pirate(game, "a")
    await game.move("a", *near(row[:2], (0.0, 0.0), 150.0))  # inside the pirate's sensor range
    await game.until(lambda: any(e[1] == P.EVENT_ATTACK and e[2:4] == (pirate, me) for e in game.events["a"]), 40.0)
    hit = [e for e in game.events["a"] if e[1] == P.EVENT_ATTACK and e[3] == me]
    assert game.states["a"].hp[me][0] == PLAYER_STATS["max_hp"] - sum(e[4] for e in hit) < PLAYER_STATS["max_hp"]
    assert all(1 <= e[4] for e in hit)
    assert game.flags_seen["a"][me] & P.SHIP_IN_COMBAT
    assert game.flags_seen["a"][pirate] & P.SHIP_IN_COMBAT and game.flags_seen["a"][pirate] & P.SHIP_NPC


async def test_attack_input_validation(game, room_directory):
    welcome = await game.join("a")
    await game.join("b")
    me = welcome["ship"]
    other = game.welcomes["b"]["ship"]
    bad = [await game.attack("a", 999_999), await game.attack("a", me)]
    await game.advance(0.2)
    assert game.errors["a"] == [(bad[0], P.ERR_UNKNOWN_TARGET), (bad[1], P.ERR_INVALID_TARGET)]
    assert game.states["a"].ack == bad[1]  # rejected inputs are acknowledged all the same
    room = await game.room()
    await room.close(GW, "b", 1006, "dropped")  # b's seat is held: its ship waits, not a target
    seq = await game.attack("a", other)
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_INVALID_TARGET)
    await game.join("b2", player="p-b")
    await game.leave("b2")  # b left: its ship is parked, out of the system
    seq = await game.attack("a", other)
    await game.advance(0.2)
    assert game.errors["a"][-1] == (seq, P.ERR_UNKNOWN_TARGET)
    # the wire format: a missing, non-integer or negative target never reaches the room
    for payload, code in (({}, P.ERR_INVALID_FIELD), ({"target": "7"}, P.ERR_INVALID_FIELD),
                          ({"target": True}, P.ERR_INVALID_FIELD), ({"target": -1}, P.ERR_OUT_OF_RANGE)):
        with pytest.raises(P.ProtocolError) as info:
            parse_client_message(msgpack.packb(["attack", 3, payload]), kind_schemas(SolarSystemRoom))
        assert info.value.code == code
    assert parse_client_message(P.encode(P.ATTACK, 4, {"target": 12}),
                                kind_schemas(SolarSystemRoom)).payload == P.Attack(12)


async def test_a_player_destroys_a_pirate_which_respawns_at_its_post_after_the_delay(game, room_directory):
    welcome = await game.join("a")
    me = welcome["ship"]
    pirate, row = nearest_pirate(game, "a")
    post = row[:2]
    await game.attack("a", pirate)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED and e[2] == pirate for e in game.events["a"]), 60.0)
    state = game.states["a"]
    assert state.hp[pirate][0] == 0 and state.ships[pirate][2] & P.SHIP_DESTROYED
    assert any(e[1] == P.EVENT_ATTACK and e[2:4] == (me, pirate) for e in game.events["a"])
    # attacking a wreck is refused
    seq = await game.attack("a", pirate)
    await game.move("a", 0.0, -SPAWN_RADIUS)  # fly home: the respawned pirate is left alone
    await game.advance(0.2)
    assert (seq, P.ERR_INVALID_TARGET) in game.errors["a"]
    await game.advance(P.RESPAWN_DELAY - 1.0)
    assert state.ships[pirate][2] & P.SHIP_DESTROYED and state.hp[pirate][0] == 0
    await game.advance(1.0)
    assert not state.ships[pirate][2] & P.SHIP_DESTROYED
    assert state.hp[pirate] == [PIRATE_STATS["max_hp"]] * 2
    assert state.ships[pirate][:2] == [P.quantize(post[0]), P.quantize(post[1])]


# ---- players -------------------------------------------------------------------------------------
async def test_two_players_do_not_fight_unless_one_attacks_then_they_duel(game):
    a = (await game.join("a"))["ship"]
    b = (await game.join("b"))["ship"]
    await game.advance(0.2)
    where = game.ship("a", a)[:2]
    await game.move("b", *near(where, (0.0, 0.0), -30.0))  # right next to a, outward
    await game.advance(8.0)
    assert game.events["a"] == [] and game.events["b"] == []
    assert game.states["a"].hp[a] == game.states["a"].hp[b] == [PLAYER_STATS["max_hp"]] * 2
    assert not (game.flags_seen["a"][a] | game.flags_seen["a"][b]) & P.SHIP_IN_COMBAT
    await game.attack("a", b)
    await game.until(lambda: {(e[2], e[3]) for e in game.events["b"] if e[1] == P.EVENT_ATTACK} >= {(a, b), (b, a)},
                     20.0)
    assert game.states["b"].hp[b][0] < PLAYER_STATS["max_hp"]


async def test_a_destroyed_player_ship_respawns_at_the_star(game):
    a = (await game.join("a"))["ship"]
    b = (await game.join("b"))["ship"]
    await game.advance(0.2)
    await game.attack("a", b)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED for e in game.events["a"]), 60.0)
    dead = {e[2] for e in game.events["a"] if e[1] == P.EVENT_DESTROYED}  # both, if they died together
    assert dead <= {a, b}
    state = game.states["a"]
    for ship in dead:
        assert state.ships[ship][2] & P.SHIP_DESTROYED and state.hp[ship][0] == 0
    for ship in {a, b} - dead:
        assert state.hp[ship][0] > 0
    wreck = min(dead)
    await game.move("a" if wreck == a else "b", 500.0, 0.0)  # a wreck takes no orders (acknowledged, ignored)
    await game.advance(P.RESPAWN_DELAY - 0.5)
    assert all(state.ships[ship][2] & P.SHIP_DESTROYED for ship in dead)
    await game.advance(1.0)
    for ship in dead:
        x, y, flags = state.ships[ship]
        assert not flags & (P.SHIP_DESTROYED | P.SHIP_MOVING | P.SHIP_IN_COMBAT)
        assert math.hypot(x, y) == pytest.approx(SPAWN_RADIUS, abs=0.01)
        assert state.hp[ship] == [PLAYER_STATS["max_hp"]] * 2
    # the duel ended with the death: the two do not fight again
    count = len(game.events["a"])
    await game.advance(5.0)
    assert len(game.events["a"]) == count


# ---- persistence ---------------------------------------------------------------------------------
async def test_combat_state_survives_hibernation(game, room_directory):
    game.params = {"system": SYSTEM, "respawn_delay": 60.0}
    welcome = await game.join("a")
    me = welcome["ship"]
    pirate, _ = nearest_pirate(game, "a")
    await game.attack("a", pirate)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED and e[2] == pirate for e in game.events["a"]), 60.0)
    died = game.clock.now()
    hp = game.states["a"].hp[me][0]
    assert 0 < hp < PLAYER_STATS["max_hp"]
    await game.leave("a")
    await game.advance(11.0, step=1.0)
    assert not await room_directory.is_active("system", "sol")
    await game.join("a2", player="p-a")  # the same player: the same ship, its hp kept
    state = game.states["a2"]
    assert game.welcomes["a2"]["ship"] == me
    assert state.hp[me][0] == hp
    assert state.ships[pirate][2] & P.SHIP_DESTROYED and state.hp[pirate][0] == 0  # respawn still pending
    await game.move("a2", 0.0, SPAWN_RADIUS)  # away from the post
    await game.advance(died + 60.0 - game.clock.now() - 0.5)
    assert state.ships[pirate][2] & P.SHIP_DESTROYED
    await game.advance(1.0)
    assert not state.ships[pirate][2] & P.SHIP_DESTROYED and state.hp[pirate][0] == PIRATE_STATS["max_hp"]


async def test_a_respawn_due_while_asleep_is_applied_on_wake(game, room_directory):
    welcome = await game.join("a")
    pirate, _ = nearest_pirate(game, "a")
    await game.attack("a", pirate)
    await game.until(lambda: any(e[1] == P.EVENT_DESTROYED and e[2] == pirate for e in game.events["a"]), 60.0)
    await game.leave("a")
    await game.advance(30.0, step=5.0)  # asleep through the respawn time
    assert not await room_directory.is_active("system", "sol")
    await game.join("a2", player="p-a")
    assert not game.states["a2"].ships[pirate][2] & P.SHIP_DESTROYED
    assert game.states["a2"].hp[pirate] == [PIRATE_STATS["max_hp"]] * 2
    assert game.welcomes["a2"]["ship"] == welcome["ship"]


# ---- game sessions are unchanged -------------------------------------------------------------
async def test_session_rooms_have_no_combat_and_unchanged_frames(room_directory, manual_clock):
    game = Game(room_directory, manual_clock, kind="session", name="g-test", params={})
    room = await game.room()
    created = await room.request(HttpRequest("POST", "create", {}, json.dumps({"seed": 3, "max_players": 4}).encode()))
    assert created.status == 201
    welcome = await game.join("s")
    assert "system" not in welcome and welcome["session"]["seed"] == 3
    seq = await game.attack("s", welcome["ship"])
    await game.move("s", 0.0, 0.0)  # no obstacles in a session: a straight leg through the centre
    await game.advance(1.0)
    assert game.errors["s"] == [(seq, P.ERR_INVALID_TARGET)]
    frames = game.frames["s"]
    assert all(list(f) == ["tick", "ack", "base", "time", "ships", "removed", "names"] for f in frames)
    assert game.states["s"].hp == {} and game.states["s"].ships[welcome["ship"]][2] == P.SHIP_ONLINE | P.SHIP_MOVING
    runtime = room_directory.runtime("session", "g-test")
    ship = runtime.room.ships[welcome["ship"]]
    assert (ship["tx"], ship["ty"]) == (0.0, 0.0) and "path" not in ship and "hp" not in ship



async def test_system_frames_keep_the_ack_second_for_partial_decoders(game):
    from starhold.client import loadtest

    await game.join("a")
    await game.move("a", 0.0, 300.0)
    room = game.handle
    await game.clock.advance(0.3)
    frames = [head + item[1] for item in await room.pull(GW, 0) if item[0] == "splice" for _, head in item[2]]
    assert frames
    for data in frames:
        payload = P.decode_server(data)[2]
        assert len(payload) == P.COMBAT_FRAME_KEYS
        assert loadtest.frame_ack(data) == payload["ack"] == loadtest.full_ack(data) == 2
    # the spliced encoding is byte-identical to a plain msgpack encoding of the same payload
    rows, hp, events = [[1, 2.5, -3.0, 9]], [[1, 150, 200]], [[0, 1000001, 1, 12]]
    tail = P.pack_frame_tail(11, 1.2, rows, [], [[1, "Ada"]], hp, events)
    spliced = P.encode_frame(12, 5, tail, keys=P.COMBAT_FRAME_KEYS)
    payload = {"tick": 12, "ack": 5, "base": 11, "time": 1.2, "ships": rows, "removed": [], "names": [[1, "Ada"]],
               "hp": hp, "events": events}
    plain = msgpack.Packer(use_bin_type=True, use_single_float=True)
    assert spliced == b"".join([b"\x93", plain.pack("frame"), plain.pack(12), b"\x89",
                                *(msgpack.packb(k) + (plain.pack(v) if k == "ships" else msgpack.packb(v))
                                  for k, v in payload.items())])
    assert P.decode_server(spliced) == ("frame", 12, payload)


async def test_the_python_client_attacks_and_sees_hit_points_over_a_real_socket(gateway_factory, tmp_path):
    from starhold.client import StarholdClient
    from starhold._runtime.local_host import InProcessDirectory

    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    url = await gateway_factory(directory)
    async with StarholdClient(url, "Sol", name="Ada") as client:
        await client.join()
        await client.wait_for(lambda c: c.ship_id in c.hp)
        assert client.system["asteroids"] and client.system["exclusion_radius"] > client.system["star_radius"]
        assert client.hp[client.ship_id] == [PLAYER_STATS["max_hp"]] * 2
        pirates = [i for i, row in client.ships.items() if row[2] & P.SHIP_NPC]
        assert pirates and all(client.hp[i] == [PIRATE_STATS["max_hp"]] * 2 for i in pirates)
        bad = await client.attack(987_654)
        own = await client.attack(client.ship_id)
        await client.wait_for(lambda c: len(c.errors) >= 2 and c.ack >= own)
        assert [(e["seq"], e["code"]) for e in client.errors] == [(bad, P.ERR_UNKNOWN_TARGET), (own, P.ERR_INVALID_TARGET)]
        seq = await client.attack(pirates[0])  # accepted: the ship sets off toward the pirate
        await client.wait_for(lambda c: c.ack >= seq and c.ships[c.ship_id][2] & P.SHIP_MOVING)
        assert len(client.errors) == 2
    await directory.close()


# ---- parked ships (issue 12: a system is bounded by the players there or seated) ----------------
def player_ships(rows):
    """Ids of the non-pirate ships in frame rows ``[id, x, y, flags]``."""
    return {row[0] for row in rows if not row[3] & P.SHIP_NPC}


async def test_ships_of_players_who_left_leave_the_frames_and_the_tick(game, room_directory):
    flown = {}
    for k in range(25):  # join-and-leave guests, some flying off first
        ship = (await game.join(f"g{k}"))["ship"]
        if k % 5 == 0:
            await game.move(f"g{k}", 0.0, -SPAWN_RADIUS - 20.0 * k)
        flown[k] = ship
        await game.leave(f"g{k}")
    held = []
    for k in range(3):  # dropped players: their seats are held
        held.append((await game.join(f"d{k}"))["ship"])
        room = await game.room()
        await room.close(GW, f"d{k}", 1006, "dropped")
    me = (await game.join("w"))["ship"]
    keyframe = game.frames["w"][0]
    assert keyframe["base"] is None
    assert player_ships(keyframe["ships"]) == {me, *held}
    runtime = room_directory.runtime("system", "sol").room
    pirates = set(game.pirates("w"))
    assert set(runtime.ships) == {me, *held, *pirates}
    assert set(runtime.sim.battle.ids.tolist()) == {me, *held, *pirates}
    # when the holds expire, those ships leave too (the room slept meanwhile: the alarm woke it)
    await game.advance(P.SEAT_HOLD + 1.0)
    await game.room()
    await game.pump()
    await game.posts_delivered()
    assert player_ships([[i, *row] for i, row in game.states["w"].ships.items()]) == {me}
    runtime = room_directory.runtime("system", "sol").room
    assert set(runtime.ships) == {me, *pirates}
    # docked: their ships went back to their pilot rooms; the system lists them as docked
    assert {e["player"] for e in runtime.docked.entries()} == {f"p-g{k}" for k in range(25)} | {f"p-d{k}" for k in range(3)}


async def test_a_returning_player_gets_the_parked_ship_back_where_it_flew(game, room_directory):
    ship = (await game.join("a"))["ship"]
    goal = (0.0, -SPAWN_RADIUS - 100.0)
    await game.move("a", *goal)
    await game.advance(0.5)
    await game.attack("a", nearest_pirate(game, "a")[0])  # an order pending when it leaves
    await game.leave("a")
    await game.join("b")
    assert ship not in game.states["b"].ships
    await game.advance(60.0, step=1.0)
    again = await game.join("a2", player="p-a")
    assert again["ship"] == ship and again["name"] == "a2"  # the name its token has now
    row = game.ship("a2", ship)
    assert row[2] & P.SHIP_ONLINE and game.states["a2"].hp[ship][0] > 0
    assert "p-a" not in room_directory.runtime("system", "sol").room.docked


async def test_attacking_a_pirate_during_a_duel_flies_to_the_pirate(game):
    a = (await game.join("a"))["ship"]
    b = (await game.join("b"))["ship"]
    await game.advance(0.2)
    await game.move("b", *near(game.ship("a", a)[:2], (0.0, 0.0), -30.0))
    await game.advance(2.0)
    await game.attack("a", b)
    await game.until(lambda: game.ship("a", a)[2] & P.SHIP_IN_COMBAT, 10.0)
    pirate, row = nearest_pirate(game, "a")
    start = math.dist(game.ship("a", a)[:2], row[:2])
    await game.attack("a", pirate)  # ends the duel; the ship flies to the pirate
    await game.advance(1.0)
    me = game.ship("a", a)
    assert me[2] & P.SHIP_MOVING, me
    await game.until(lambda: math.dist(game.ship("a", a)[:2], game.ship("a", pirate)[:2]) < start - 100.0, 20.0)
    await game.until(lambda: any(e[1] == P.EVENT_ATTACK and e[2:4] == (a, pirate) for e in game.events["a"]), 40.0)

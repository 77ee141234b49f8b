"""Game sessions, tokens on every socket, seats held across gateways, and /metrics, over real
WebSockets on 127.0.0.1 with rooms in-process (no Ray)."""

import aiohttp
import pytest

from starhold.rooms import protocol as P
from starhold.gateway.app import GATEWAY
from starhold.gateway.auth import TokenService
from starhold.rooms.session.ids import SessionIds
from starhold._runtime.local_host import InProcessDirectory
from wire import Wire, guest_token


@pytest.fixture
async def directory(tmp_path):
    directory = InProcessDirectory(tmp_path / "data", idle_timeout=60)
    yield directory
    await directory.close()


@pytest.fixture
async def url(gateway_factory, directory):
    return await gateway_factory(directory)


async def new_game(session, url, token, **body):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(url + "/api/game/new", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_socket_without_a_valid_token_is_refused_4001(url):
    async with aiohttp.ClientSession() as session:
        for token in (None, "garbage", "a.b.c"):
            wire = await Wire.open(session, url, "/api/systems/sol/ws", token)
            error = await wire.recv(P.ERROR)
            assert error[2]["code"] == P.ERR_UNAUTHORIZED
            assert await wire.close_code() == P.CLOSE_UNAUTHORIZED
        # a token from another deployment's key does not verify either
        other = TokenService({"k": b"x" * 32}, "k").issue("g-intruder", "Eve", "guest")[0]
        wire = await Wire.open(session, url, "/api/systems/sol/ws", other)
        assert (await wire.recv(P.ERROR))[2]["code"] == P.ERR_UNAUTHORIZED


async def test_create_a_game_read_its_state_and_play_in_it(url):
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Host")
        assert (await new_game(session, url, None))[0] == 401
        assert (await new_game(session, url, token, max_players=0))[0] == 400
        assert (await new_game(session, url, token, seed="x"))[0] == 400
        status, game = await new_game(session, url, token, seed=7, max_players=4)
        assert status == 201 and game["seed"] == 7 and game["max_players"] == 4
        assert game["ws"] == f"/api/game/{game['id']}/ws"
        _, other = await new_game(session, url, token)
        assert other["id"] != game["id"]
        wire = await Wire.open(session, url, game["ws"], token)
        welcome, keyframe = await wire.join()
        assert welcome["session"] == {"id": game["id"], "seed": 7, "size": 1000.0, "max_players": 4}
        assert welcome["world_limit"] == 500.0
        await wire.send(P.MOVE_TO, 2, {"x": 900.0, "y": 0.0})  # clamped to the sector
        frame = await wire.recv(P.FRAME, where=lambda p: p["ack"] == 2)
        assert frame[2]["base"] is not None
        async with session.get(url + game["state"]) as resp:
            state = await resp.json()
        assert resp.status == 200 and state["players"] == 1
        ship = next(s for s in state["ships"] if s["id"] == welcome["ship"])
        assert ship["flags"] & P.SHIP_MOVING


async def test_unknown_or_forged_game_ids_are_refused_without_waking_anything(url, directory):
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url)
        forged = "0123456789abcdef" * 2 + "0" * 64
        async with session.get(url + f"/api/game/{forged}/state") as resp:
            assert resp.status == 404 and await resp.json() == {"error": "no such game"}
        wire = await Wire.open(session, url, f"/api/game/{forged}/ws", token)
        assert (await wire.recv(P.ERROR))[2]["code"] == P.ERR_UNKNOWN_ROOM
        assert await wire.close_code() == P.CLOSE_UNKNOWN_ROOM
        assert await directory.list_rooms() == []  # no room was created for the forged id


async def test_a_full_game_refuses_the_next_player_with_4003(url):
    async with aiohttp.ClientSession() as session:
        host = await guest_token(session, url, "Host")
        _, game = await new_game(session, url, host, max_players=1)
        first = await Wire.open(session, url, game["ws"], host)
        await first.join()
        late = await Wire.open(session, url, game["ws"], await guest_token(session, url, "Late"))
        await late.send(P.JOIN, 1)
        assert (await late.recv(P.ERROR))[2]["code"] == P.ERR_ROOM_FULL
        assert await late.close_code() == P.CLOSE_ROOM_FULL


async def test_a_player_commands_only_its_own_ship(url):
    async with aiohttp.ClientSession() as session:
        a = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, "A"))
        b = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url, "B"))
        wa, _ = await a.join()
        wb, _ = await b.join()
        await a.send(P.MOVE_TO, 2, {"x": 300.0, "y": 300.0})
        await b.recv(P.FRAME, where=lambda p: any(r[0] == wa["ship"] and r[3] & P.SHIP_MOVING for r in p["ships"]))
        state = await (await session.get(url + "/api/systems/sol/state")).json()
        flags = {s["id"]: s["flags"] for s in state["ships"]}
        assert flags[wa["ship"]] & P.SHIP_MOVING and not flags[wb["ship"]] & P.SHIP_MOVING


async def test_a_dropped_seat_resumes_through_another_gateway(gateway_factory, directory, tmp_path):
    """Two gateway replicas sharing keys (behind a load balancer): the player drops on one and
    resumes the same ship, seat and ack on the other, with its seat token."""
    url_a = await gateway_factory(directory, data_dir=tmp_path / "keys")
    url_b = await gateway_factory(directory, data_dir=tmp_path / "keys")
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url_a, "Roamer")
        _, game = await new_game(session, url_a, token)
        wire = await Wire.open(session, url_a, game["ws"], token)
        welcome, _ = await wire.join()
        await wire.send(P.MOVE_TO, 5, {"x": 100.0, "y": 100.0})
        await wire.recv(P.FRAME, where=lambda p: p["ack"] == 5)
        for sock in list(url_a.app[GATEWAY].sockets):  # gateway A drops the socket (not a leave)
            sock.close_soon(P.CLOSE_ROOM_UNAVAILABLE, "draining")
        assert await wire.close_code() == P.CLOSE_ROOM_UNAVAILABLE
        watcher = await Wire.open(session, url_b, game["ws"], await guest_token(session, url_b, "Watcher"))
        _, keyframe = await watcher.join()
        held = {r[0]: r[3] for r in keyframe["ships"]}
        if not held[welcome["ship"]] & P.SHIP_HELD:  # the keyframe may predate the drop by a tick
            await watcher.recv(P.FRAME, where=lambda p: any(r[0] == welcome["ship"] and r[3] & P.SHIP_HELD
                                                          for r in p["ships"]))
        again = await Wire.open(session, url_b, game["ws"], token)
        resumed, _ = await again.join(seq=6, resume=welcome["seat"])
        assert resumed["resumed"] is True and resumed["ship"] == welcome["ship"] and resumed["ack"] == 5
        await again.send(P.MOVE_TO, 6, {"x": 0.0, "y": 0.0})
        await again.recv(P.FRAME, where=lambda p: p["ack"] == 6)


async def test_a_normal_close_leaves_the_game_and_removes_the_ship(url):
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Leaver")
        _, game = await new_game(session, url, token)
        watcher = await Wire.open(session, url, game["ws"], await guest_token(session, url, "Watcher"))
        await watcher.join()
        leaver = await Wire.open(session, url, game["ws"], token)
        welcome, _ = await leaver.join()
        await watcher.recv(P.FRAME, where=lambda p: [welcome["ship"], "Leaver"] in p["names"])
        await leaver.ws.close()  # 1000: the player leaves; a game forgets its ship
        frame = await watcher.recv(P.FRAME, where=lambda p: welcome["ship"] in p["removed"])
        assert frame[2]["base"] is not None


async def test_metrics_count_traffic_closes_and_room_ticks(url, monkeypatch):
    from starhold._runtime import outbox

    monkeypatch.setattr(outbox, "STATS_INTERVAL", 0.0)  # rooms report tick figures with every reply
    async with aiohttp.ClientSession() as session:
        wire = await Wire.open(session, url, "/api/systems/sol/ws", await guest_token(session, url))
        await wire.join()
        await wire.send(P.MOVE_TO, 2, {"x": 10.0, "y": 10.0})
        await wire.recv(P.FRAME, where=lambda p: p["ack"] == 2)
        await wire.ws.send_bytes(b"\xc1")
        await wire.recv(P.ERROR)
        first = (await wire.recv(P.FRAME))[2]["tick"]
        await wire.recv(P.FRAME, where=lambda p: p["tick"] >= first + 5)  # five more ticks, reported
        await wire.send(P.PING, 3)
        await wire.recv(P.PONG)
        async with session.get(url + "/metrics") as resp:
            assert resp.status == 200 and resp.content_type == "text/plain"
            text = await resp.text()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line.startswith("starhold_")}
    assert values["starhold_connections"] >= 1
    assert values["starhold_messages_in_total"] >= 4 and values["starhold_messages_out_total"] >= 4
    assert values["starhold_bytes_out_total"] > 100
    assert values['starhold_errors_sent_total{code="1"}'] >= 1
    assert values["starhold_frame_bytes_count"] >= 1
    assert values['starhold_room_ticks_total{room="system/sol"}'] >= 5
    assert values['starhold_room_tick_seconds_count{room="system/sol"}'] >= 5
    assert values["starhold_room_wake_seconds_count"] >= 1


def test_game_ids_carry_a_full_length_hmac_sha256_tag():
    """An id is 128 random bits and the whole HMAC-SHA256 of them (256 bits): no truncated
    tag an attacker could hit by probing. Any change to either part is refused."""
    import hashlib
    import hmac

    key = b"k" * 32
    ids = SessionIds(key)
    game_id = ids.new()
    assert len(game_id) == 96 and all(c in "0123456789abcdef" for c in game_id)
    random_part, tag = game_id[:32], game_id[32:]
    assert tag == hmac.new(key, random_part.encode(), hashlib.sha256).hexdigest()
    assert ids.valid(game_id)
    for i in (0, 31, 32, 95):  # one character changed, in the random part or the tag
        flipped = game_id[:i] + ("0" if game_id[i] != "0" else "1") + game_id[i + 1:]
        assert not ids.valid(flipped)
    assert not ids.valid(game_id[:20])  # an id of the old 20-character (32-bit tag) format
    assert not ids.valid(game_id.upper()) and not ids.valid(game_id + "0")
    assert not SessionIds(b"o" * 32).valid(game_id)  # another deployment's key


class Ticks:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


async def test_game_creation_is_limited_per_player_with_429_and_retry_after(gateway_factory, directory):
    """Live games: a player's games that are awake count against the limit until they sleep.
    Creations: at most N per rolling hour. Other players are unaffected."""
    from starhold.rooms.session.quotas import LIVE_RETRY_AFTER, GameQuota

    clock = Ticks()
    url = await gateway_factory(directory, options={"game_quota": GameQuota(per_hour=4, live=2, now=clock)})
    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Greedy")
        games = [await new_game(session, url, token) for _ in range(2)]
        assert [status for status, _ in games] == [201, 201]
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(url + "/api/game/new", json={}, headers=headers) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == str(LIVE_RETRY_AFTER)
            assert "live games" in (await resp.json())["error"]
        assert len(await directory.list_rooms()) == 2  # the refused request started nothing
        assert (await new_game(session, url, await guest_token(session, url, "Other")))[0] == 201
        await directory.runtime("session", games[0][1]["id"]).hibernate(force=True)  # one game sleeps
        assert (await new_game(session, url, token))[0] == 201  # 3 created this hour
        await directory.runtime("session", games[1][1]["id"]).hibernate(force=True)
        clock.t += 600
        assert (await new_game(session, url, token))[0] == 201  # the 4th
        for room in await directory.list_rooms():  # every game sleeps: only the hourly limit is left
            await directory.runtime(*room.split("/")).hibernate(force=True)
        async with session.post(url + "/api/game/new", json={}, headers=headers) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "3000"  # the first leaves the hour
            assert (await resp.json())["error"] == "too many games created: at most 4 per hour"
        clock.t += 3000
        assert (await new_game(session, url, token))[0] == 201


async def test_the_default_limits_stop_a_flood_of_game_creations(url, directory):
    """The audit: a player looping on POST /api/game/new started an actor per call."""
    from starhold.rooms.session.quotas import LIVE_GAMES

    async with aiohttp.ClientSession() as session:
        token = await guest_token(session, url, "Flood")
        statuses = [(await new_game(session, url, token))[0] for _ in range(LIVE_GAMES + 3)]
    assert statuses == [201] * LIVE_GAMES + [429] * 3
    assert len(await directory.list_rooms()) == LIVE_GAMES

"""The real thing: Ray actor rooms behind the aiohttp gateway, Python clients over real
WebSockets on 127.0.0.1. Waits poll for conditions; nothing sleeps for a fixed time."""

import asyncio
import time

import pytest

from starhold.rooms import protocol as P
from starhold.client import StarholdClient
from starhold._runtime.paths import room_db_path
from starhold._runtime.ray_host import RAY_CALLS, actor_name

pytestmark = pytest.mark.ray


async def eventually(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def test_two_clients_see_each_other_move(ray_directory, gateway_factory):
    url = await gateway_factory(ray_directory)
    async with StarholdClient(url, "Sol", name="A") as a, StarholdClient(url, "Alpha Centauri A", name="X") as x:
        await a.join()
        await x.join()
        async with StarholdClient(url, "sol", name="B") as b:
            await b.join()
            assert actor_name("system", "sol") in ray_directory.actor_names()
            assert actor_name("system", "hip-71683") in ray_directory.actor_names()
            seq_a = await a.move_to(300, 0)
            seq_b = await b.move_to(0, -300)
            await a.wait_for(lambda c: c.ack >= seq_a)
            await b.wait_for(lambda c: c.ack >= seq_b)
            first_b_seen_by_a = list(a.ships[b.ship_id])
            first_a_seen_by_b = list(b.ships[a.ship_id])
            await a.wait_for(lambda c: c.ships[b.ship_id][:2] != first_b_seen_by_a[:2] and c.ships[b.ship_id][2] & P.SHIP_MOVING)
            await b.wait_for(lambda c: c.ships[a.ship_id][:2] != first_a_seen_by_b[:2])
            # another system: no other player there (its pirates are)
            assert {i for i, row in x.ships.items() if not row[2] & P.SHIP_NPC} == {x.ship_id}


async def test_room_actor_exits_when_idle_and_rejoin_restores_the_parked_ship(ray_directory, gateway_factory, tmp_path):
    url = await gateway_factory(ray_directory)
    async with StarholdClient(url, "Sol", name="Parker") as client:
        await client.join()
        seq = await client.move_to(120.0, 80.0)
        await client.wait_for(lambda c: c.ack >= seq and not c.ships[c.ship_id][2] & P.SHIP_MOVING, timeout=15)
        ship = client.ship_id
        token = client.token
    name = actor_name("system", "sol")
    # the idle timeout is 2 s in the fixture: the actor snapshots and exits
    await eventually(lambda: name not in ray_directory.actor_names())
    data = tmp_path / "data"
    assert room_db_path(data, "system", "sol").exists()
    assert (data / "snapshots" / "system" / "sol" / "manifest.json").exists()
    async with StarholdClient(url, "Sol", token=token) as again:  # the same player (token)
        welcome = await again.join()
        assert welcome["ship"] == ship
        await again.wait_for(lambda c: ship in c.ships)
        assert again.ships[ship][:2] == [120.0, 80.0] and again.names[ship] == "Parker"
        assert name in ray_directory.actor_names()


async def test_inputs_and_frames_cost_few_ray_calls(ray_directory, gateway_factory):
    url = await gateway_factory(ray_directory)
    clients = [StarholdClient(url, "Sol", name=f"bot{i}") for i in range(5)]
    for c in clients:
        await c.connect()
        await c.join()
    before = sum(RAY_CALLS.values())
    started = time.monotonic()
    for round_ in range(10):
        seqs = [await c.move_to(10 * round_ + i, 5) for i, c in enumerate(clients)]
    for c, seq in zip(clients, seqs):
        await c.wait_for(lambda cl, seq=seq: cl.ack >= seq)
    await clients[0].wait_for(lambda cl: cl.frames >= 20)
    calls = sum(RAY_CALLS.values()) - before
    elapsed = time.monotonic() - started
    for c in clients:
        await c.close()
    # 50 inputs plus ~10 Hz x 5 clients of frames: far fewer Ray calls than messages
    messages = 50 + sum(c.frames for c in clients)
    assert calls < messages / 2, (calls, messages, elapsed)


async def test_a_crashed_room_restarts_and_its_players_are_told_to_rejoin(ray_directory, gateway_factory):
    import os
    import signal

    url = await gateway_factory(ray_directory)
    async with StarholdClient(url, "Sol", name="Crash") as client:
        await client.join()
        seq = await client.move_to(-200.0, 0.0)
        await client.wait_for(lambda c: c.ack >= seq)
        handle = await ray_directory.get("system", "sol")
        pid = (await handle.stats())["pid"]
        ship = client.ship_id
        os.kill(pid, signal.SIGKILL)  # its host dies: the host pool wakes it on another host
        # The new activation does not know the socket: 4503, and the client reconnects with
        # backoff and resumes its seat (held by the new activation, which found it orphaned).
        await client.wait_for(lambda c: c.reconnects >= 1 and c.connected and c.welcome["resumed"], timeout=40)
        assert P.CLOSE_ROOM_UNAVAILABLE in client.close_codes
        assert client.ship_id == ship
        seq = await client.move_to(0.0, 0.0)
        await client.wait_for(lambda c: c.ack >= seq, timeout=10)
        assert (await (await ray_directory.get("system", "sol")).stats())["pid"] != pid


async def test_socket_held_through_hibernation_on_ray_and_woken_by_input(ray_directory, gateway_factory, tmp_path):
    url = await gateway_factory(ray_directory)
    name = actor_name("system", "sol")
    async with StarholdClient(url, "Sol", name="Sleeper") as client:
        welcome = await client.join()
        await eventually(lambda: name not in ray_directory.actor_names())  # linger 2 s + idle 2 s
        assert not client.closed
        seq = await client.move_to(-60.0, 30.0)
        await client.wait_for(lambda c: c.ack == seq and c.ships[welcome["ship"]][2] & P.SHIP_MOVING, timeout=30)
        assert name in ray_directory.actor_names()


async def test_an_alarm_wakes_a_hibernated_room_actor(ray_directory, gateway_factory):
    from starhold.room import HttpRequest

    await gateway_factory(ray_directory)  # the gateway starts the alarm scheduler (in the pool's actor)
    handle = await ray_directory.get("reminder", "r1")
    await handle.request(HttpRequest("GET", "arm", {"in": "5"}))
    assert await handle.hibernate()  # asleep now, its alarm with the scheduler
    name = actor_name("reminder", "r1")
    await eventually(lambda: name not in ray_directory.actor_names())
    await eventually(lambda: name in ray_directory.actor_names(), timeout=30)  # woken by its alarm
    await eventually_async(lambda: state_fired(ray_directory, "r1"), timeout=10)


async def state_fired(directory, room_id):
    """Whether the reminder has fired once; reads through a fresh handle each time (the room
    may have gone back to sleep after its alarm; reading wakes it)."""
    from starhold._runtime.handle import RoomGone
    from starhold.room import HttpRequest

    try:
        handle = await directory.get("reminder", room_id)
        return len((await handle.request(HttpRequest("GET", ""))).body["fired"]) == 1
    except RoomGone:
        return False


async def eventually_async(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def test_the_alarm_scheduler_survives_a_crash_of_the_pool_actor(ray_directory, ray_cluster):
    from starhold._runtime.host_pool import POOL_NAME
    from starhold.room import HttpRequest

    await ray_directory.start()
    handle = await ray_directory.get("reminder", "r2")
    armed_before = time.time()
    await handle.request(HttpRequest("GET", "arm", {"in": "4"}))
    assert await handle.hibernate()
    pool = ray_cluster.get_actor(POOL_NAME, namespace=ray_directory.namespace)  # it runs the scheduler
    pending = await ray_directory.pending_alarms()
    assert list(pending) == ["reminder/r2"] and armed_before + 4 <= pending["reminder/r2"] <= time.time() + 4
    ray_cluster.kill(pool, no_restart=False)  # Ray restarts it; its SQLite index remains
    # Nothing here wakes the room, nor starts the scheduler (no gateway runs: no keepalive
    # calls start()): it fires only if the restarted actor loads its alarms by itself.
    # Watched in its file (it may fire and fall asleep again between two looks at the awake
    # rooms).
    path = room_db_path(ray_directory.config["data_dir"], "reminder", "r2")

    async def fired() -> bool:
        return _fired_in_file(path)

    try:
        # (up to 120 s: on a loaded machine a wake can hang for a WAKE_TIMEOUT of 30 s and be retried)
        await eventually_async(fired, timeout=120, interval=0.5)
    except AssertionError:  # say what the scheduler and the pool think
        raise AssertionError(f"the alarm did not fire: scheduler pending {await pool.pending.remote()}, "
                             f"awake rooms {ray_directory.actor_names()}, file exists {path.exists()}") from None
    assert await state_fired(ray_directory, "r2")


def _fired_in_file(path) -> bool:
    """Whether the reminder room's file holds a fired alarm (read-only, without waking it)."""
    import sqlite3

    import msgpack

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
            row = db.execute("SELECT value FROM _starhold_kv WHERE key = 'fired'").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and len(msgpack.unpackb(row[0])) == 1

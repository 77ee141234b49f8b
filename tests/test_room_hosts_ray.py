"""Room hosts on the session's real Ray (issue 17): rooms packed several to a host process by
the namespace's host pool, spare hosts started ahead of need, a host's death waking its rooms
on another host without any caller, an ending activation freeing its slot, and a restarted
pool finding the awake rooms where they are, and a host that will not retire while a room is
still hibernating in it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from starhold import HttpRequest, HttpResponse, Room, define_room
from starhold._runtime.handle import RoomGone
from starhold._runtime.host_pool import kill_namespace
from starhold._runtime.ray_host import RayDirectory

pytestmark = pytest.mark.ray


@define_room
class Counter(Room):
    """Counts its HTTP requests in storage and answers with the count and its process id."""

    kind = "hostcount"

    async def on_request(self, request):
        import os

        count = int(await self.storage.get("count") or 0) + 1
        await self.storage.put("count", count)
        return HttpResponse(200, {"count": count, "pid": os.getpid()})


@define_room
class SlowSleeper(Room):
    """Hibernates slowly: ``on_hibernate`` creates the file ``params["entered"]``, then waits
    until the file ``params["gate"]`` exists (the test opens the gate)."""

    kind = "slowsleep"

    async def on_request(self, request):
        return HttpResponse(200, {"ok": True})

    async def on_hibernate(self):
        from pathlib import Path

        Path(self.params["entered"]).touch()
        while not Path(self.params["gate"]).exists():
            await asyncio.sleep(0.05)


@pytest.fixture
def hosts_directory(ray_cluster, tmp_path):
    directory = RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 60, "log_level": "WARNING",
                              "rooms_per_host": 2, "spare_hosts": 1},
                             namespace=f"hosts-{uuid.uuid4().hex[:8]}",
                             room_classes={"hostcount": Counter, "slowsleep": SlowSleeper})
    yield directory
    kill_namespace(directory.namespace)


async def until(predicate, timeout: float = 60.0):
    """Await ``predicate()`` (a coroutine function) until it returns a truthy value."""
    async with asyncio.timeout(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.1)


async def count(directory: RayDirectory, room: str) -> dict:
    return (await (await directory.get("hostcount", room)).request(HttpRequest("GET", "/"))).body


async def test_rooms_pack_into_hosts_and_a_spare_stays_started(hosts_directory):
    d = hosts_directory
    pids = {room: (await count(d, room))["pid"] for room in ("a", "b", "c")}
    assert pids["a"] == pids["b"] != pids["c"]  # two rooms per host: the third goes to the next host
    assert sorted(await d.list_rooms()) == ["hostcount/a", "hostcount/b", "hostcount/c"]

    async def spare_ready():
        hosts = await d._call_pool("hosts_info")
        return [h for h in hosts.values() if h["rooms"] == 0] and hosts
    hosts = await until(spare_ready)
    assert sorted(h["rooms"] for h in hosts.values()) == [0, 1, 2]
    assert len(d.host_names()) == 3


async def test_a_hibernated_room_frees_its_slot_and_wakes_with_its_state(hosts_directory):
    d = hosts_directory
    assert (await count(d, "a"))["count"] == 1
    handle = await d.get("hostcount", "a")
    assert await handle.hibernate()
    assert await d.list_rooms() == []  # the host told the pool before the hibernation returned
    with pytest.raises(RoomGone):
        await handle.request(HttpRequest("GET", "/"))  # the old handle: the activation ended
    assert (await count(d, "a"))["count"] == 2  # a new activation restored the count


async def test_a_dead_host_s_rooms_wake_on_another_host_without_a_caller(hosts_directory, ray_cluster):
    d = hosts_directory
    first = await count(d, "a")
    await count(d, "b")
    victim = (await (await d.get("hostcount", "a")).stats())["host"]
    ray_cluster.kill(ray_cluster.get_actor(victim, namespace=d.namespace), no_restart=True)

    async def moved():
        placement = await d._call_pool("rooms")
        return all(placement.get(f"hostcount/{r}") not in (None, victim) for r in "ab") and placement
    await until(moved)
    for room in "ab":  # awake again (the pool woke them): stats answer without starting them
        async def awake(room=room):  # (placed first, then activated: the wake may still be loading)
            stats = await (await d.get_if_active("hostcount", room)).stats()
            return stats if stats["state"] == "active" else None
        stats = await until(awake)
        assert stats["host"] != victim
    again = await count(d, "a")
    assert again["pid"] != first["pid"] and again["count"] == 2  # nothing committed was lost


async def test_a_restarted_pool_finds_the_awake_rooms_on_their_hosts(hosts_directory, ray_cluster):
    d = hosts_directory
    before = {room: await count(d, room) for room in "abc"}
    pool = ray_cluster.get_actor("hosts", namespace=d.namespace)
    old = await pool.incarnation.remote()
    ray_cluster.kill(pool, no_restart=False)  # Ray restarts it, empty: it asks the hosts

    async def restarted():
        try:
            return await d._call_pool("incarnation") != old
        except RoomGone:  # restarting
            return False
    await until(restarted)
    assert sorted(await d.list_rooms()) == ["hostcount/a", "hostcount/b", "hostcount/c"]
    for room, body in before.items():  # the same activations: same process, count goes on
        assert await count(d, room) == {"count": body["count"] + 1, "pid": body["pid"]}


async def test_a_host_refuses_to_retire_while_a_room_is_still_hibernating(hosts_directory, ray_cluster, tmp_path):
    """The pool retires surplus empty hosts; a host whose last room is writing its final
    snapshot is not empty (ending it then would lose the snapshot): it refuses until the
    hibernation is over."""
    d = hosts_directory
    entered, gate = tmp_path / "entered", tmp_path / "gate"
    handle = await d.get("slowsleep", "s", {"entered": str(entered), "gate": str(gate)})
    assert (await handle.request(HttpRequest("GET", "/"))).body == {"ok": True}
    hosts = [ray_cluster.get_actor(name, namespace=d.namespace) for name in d.host_names()]
    [host] = [h for h in hosts if await h.has.remote("slowsleep", "s")]
    sleeping = asyncio.ensure_future(handle.hibernate())

    async def in_on_hibernate():
        return entered.exists()
    await until(in_on_hibernate)
    assert await host.has.remote("slowsleep", "s") is None  # no live activation any more...
    assert await host.retire.remote() is False  # ...but the room is still in it
    gate.touch()
    assert await sleeping
    assert await host.retire.remote() is True  # empty now

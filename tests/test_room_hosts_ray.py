"""Room hosts on the session's real Ray (issue 17): rooms packed several to a host process by
the namespace's host pool, spare hosts started ahead of need, a host's death waking its rooms
on another host without any caller, an ending activation freeing its slot, and a restarted
pool finding the awake rooms where they are."""

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


@pytest.fixture
def hosts_directory(ray_cluster, tmp_path):
    directory = RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 60, "log_level": "WARNING",
                              "rooms_per_host": 2, "spare_hosts": 1},
                             namespace=f"hosts-{uuid.uuid4().hex[:8]}", room_classes={"hostcount": Counter})
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
        stats = await (await d.get_if_active("hostcount", room)).stats()
        assert stats["host"] != victim and stats["state"] == "active"
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

"""Room hosts on Ray (``starhold._runtime.pool``): spare hosts take on rooms, one live host per
room whatever the races, a dead host's room moves to a new generation with its state, and a
host refuses calls for anything but the generation it was claimed for."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from starhold import HttpRequest, HttpResponse, Room
from starhold._runtime.handle import RoomGone
from starhold._runtime.ray_host import RayDirectory, RayRoomHandle, actor_name

pytestmark = pytest.mark.ray


class Counter(Room):
    """``POST`` adds one to a stored count, ``GET`` reads it; answers carry the host's pid."""

    kind = "counter"

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        count = await self.storage.get("count") or 0
        if request.method == "POST":
            count += 1
            await self.storage.put("count", count)
        return HttpResponse(200, {"count": count})


def directory(tmp_path, namespace: str, pool_size: int = 0) -> RayDirectory:
    return RayDirectory({"data_dir": str(tmp_path / "data"), "idle_timeout": 600, "log_level": "WARNING"},
                        namespace=namespace, room_classes={"counter": Counter}, pool_size=pool_size)


async def until(predicate, timeout: float = 60.0) -> None:
    """Poll ``predicate`` (sync or async) every 50 ms until true; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _gone(rooms: RayDirectory, room_id: str) -> bool:
    return await rooms.get_if_active("counter", room_id) is None


@pytest.fixture
def namespace(ray_cluster):
    name = f"test-hosts-{uuid.uuid4().hex[:8]}"
    yield name
    for actor in ray_cluster.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == name:
            try:
                ray_cluster.kill(ray_cluster.get_actor(actor["name"], namespace=name), no_restart=True)
            except ValueError:
                pass


async def test_a_spare_takes_on_the_room_and_the_pool_refills(tmp_path, namespace):
    rooms = directory(tmp_path, namespace, pool_size=1)
    await rooms.start()
    await until(lambda: len(rooms.pool) == 1)
    [spare] = list(rooms.pool._spares)
    handle = await rooms.get("counter", "c1")
    assert handle.gen == 0
    assert (await handle.request(HttpRequest("POST"))).body == {"count": 1}
    assert (await handle.stats())["host"] == spare.name  # the spare, not a new process
    await until(lambda: len(rooms.pool) == 1)  # topped up in the background
    assert rooms.actor_names() == [actor_name("counter", "c1")]
    assert len(rooms.host_names()) == 2  # the room's host and the new spare
    await rooms.close(hibernate_rooms=False)
    await until(lambda: len(rooms.host_names()) == 1)  # close ends the spare, not the room


async def test_racing_directories_end_on_one_host(tmp_path, namespace):
    many = [directory(tmp_path, namespace, pool_size=size) for size in (0, 0, 1, 2)]
    for rooms in many:
        await rooms.start()
    handles = await asyncio.gather(*(rooms.get("counter", "c2") for rooms in many for _ in range(3)))
    assert len({h.gen for h in handles}) == 1
    assert len({(await h.stats())["host"] for h in handles}) == 1
    counts = await asyncio.gather(*(h.request(HttpRequest("POST")) for h in handles))
    assert sorted(c.body["count"] for c in counts) == list(range(1, 13))  # one room, one counter
    assert many[0].actor_names() == [actor_name("counter", "c2")]
    for rooms in many:
        await rooms.close(hibernate_rooms=False)


async def test_a_dead_host_is_replaced_by_the_next_generation_with_the_state(tmp_path, namespace, ray_cluster):
    rooms = directory(tmp_path, namespace)
    first = await rooms.get("counter", "c3")
    await first.request(HttpRequest("POST"))
    epoch = (await first.stats())["epoch"]
    ray_cluster.kill(first.actor, no_restart=True)  # a crash: no hibernation, no snapshot
    with pytest.raises(RoomGone):
        await first.request(HttpRequest("GET"))
    await until(lambda: rooms.actor_names() == [])
    second = await rooms.get("counter", "c3")
    assert second.gen == first.gen + 1
    assert (await second.request(HttpRequest("POST"))).body == {"count": 2}  # the committed count
    assert (await second.stats())["epoch"] > epoch  # the epoch fence moved on
    # the dead generation's handle still fails; another generation's call is refused by the host
    with pytest.raises(RoomGone):
        await first.request(HttpRequest("GET"))
    with pytest.raises(RoomGone):
        await RayRoomHandle(second.actor, "counter", "c3", second.gen + 1).request(HttpRequest("GET"))
    with pytest.raises(RoomGone):
        await RayRoomHandle(second.actor, "counter", "other", second.gen).request(HttpRequest("GET"))
    assert (await second.request(HttpRequest("GET"))).body == {"count": 2}


async def test_a_hibernated_room_wakes_on_a_new_host(tmp_path, namespace):
    rooms = directory(tmp_path, namespace, pool_size=1)
    await rooms.start()
    first = await rooms.get("counter", "c4")
    await first.request(HttpRequest("POST"))
    assert await first.hibernate()
    await until(lambda: not rooms.actor_names())  # the host forgets its room as it ends
    await until(lambda: _gone(rooms, "c4"))
    second = await rooms.get("counter", "c4")
    assert second.gen == first.gen + 1
    assert (await second.request(HttpRequest("GET"))).body == {"count": 1}
    await rooms.close(hibernate_rooms=False)

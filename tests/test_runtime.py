"""The room runtime with a custom room on the in-process host: alarms (retries, backoff,
waking a hibernated room), idleness."""

import pytest

from starhold._runtime.local_host import InProcessDirectory
from starhold.room import HttpRequest


@pytest.fixture
async def directory(tmp_path, manual_clock):
    directory = InProcessDirectory(tmp_path, clock=manual_clock, idle_timeout=10)
    yield directory
    await directory.close()


async def state(directory, name):
    return (await (await directory.get("reminder", name)).request(HttpRequest("GET", ""))).body


async def test_alarm_fires_once_at_its_time(directory, manual_clock):
    room = await directory.get("reminder", "a")
    t0 = manual_clock.now()
    await room.request(HttpRequest("GET", "arm"))
    await manual_clock.advance(4.9)
    assert (await state(directory, "a"))["fired"] == []
    await manual_clock.advance(0.2)
    assert (await state(directory, "a")) == {"fired": [[t0 + 5, 0, False]], "alarm": None}
    await manual_clock.advance(100)
    assert len((await state(directory, "a"))["fired"]) == 1


async def test_failing_alarm_is_retried_with_exponential_backoff_up_to_six_times(directory, manual_clock):
    room = await directory.get("reminder", "b")
    t0 = manual_clock.now()
    await room.request(HttpRequest("GET", "arm", {"failures": "100"}))
    await manual_clock.advance(1000)
    fired = (await state(directory, "b"))["fired"]
    assert [f[1] for f in fired] == [0, 1, 2, 3, 4, 5, 6]
    assert [f[2] for f in fired] == [False] + [True] * 6
    assert [round(b[0] - a[0], 6) for a, b in zip(fired, fired[1:])] == [2, 4, 8, 16, 32, 64]
    assert fired[0][0] == t0 + 5
    assert (await state(directory, "b"))["alarm"] is None  # gave up


async def test_alarm_retry_succeeds_and_resets(directory, manual_clock):
    room = await directory.get("reminder", "c")
    await room.request(HttpRequest("GET", "arm", {"failures": "2"}))
    await manual_clock.advance(100)
    assert [f[1] for f in (await state(directory, "c"))["fired"]] == [0, 1, 2]
    room = await directory.get("reminder", "c")
    await room.request(HttpRequest("GET", "arm"))
    await manual_clock.advance(100)
    assert [f[1] for f in (await state(directory, "c"))["fired"]] == [0, 1, 2, 0]


async def test_alarm_due_soon_keeps_the_room_awake_and_a_far_one_wakes_it(directory, manual_clock):
    room = await directory.get("reminder", "d")
    t0 = manual_clock.now()
    await room.request(HttpRequest("GET", "arm", {"in": "8"}))  # within the 10 s idle timeout
    await manual_clock.advance(7.9)
    assert await directory.is_active("reminder", "d")
    await manual_clock.advance(10.2)  # fired at +8, then idle for 10 s
    assert not await directory.is_active("reminder", "d")

    room = await directory.get("reminder", "d")
    await room.request(HttpRequest("GET", "arm", {"in": "3600"}))  # an hour away
    await manual_clock.advance(10.1)
    assert not await directory.is_active("reminder", "d")  # asleep, alarm with the scheduler
    assert await directory.scheduler.pending() == {("reminder", "d"): pytest.approx(t0 + 18.1 + 3600)}
    await manual_clock.advance(3600)
    assert [f[0] for f in (await state(directory, "d"))["fired"]] == pytest.approx([t0 + 8, t0 + 18.1 + 3600])
    assert await directory.scheduler.pending() == {}


async def test_scheduler_survives_its_own_restart(tmp_path, manual_clock):
    first = InProcessDirectory(tmp_path, clock=manual_clock, idle_timeout=10)
    room = await first.get("reminder", "e")
    await room.request(HttpRequest("GET", "arm", {"in": "600"}))
    await manual_clock.advance(10.1)
    assert not await first.is_active("reminder", "e")
    await first.close()  # the whole process goes away: scheduler and rooms

    second = InProcessDirectory(tmp_path, clock=manual_clock, idle_timeout=10)
    await second.start()  # loads the durable alarm index
    await manual_clock.advance(600)
    assert len((await state(second, "e"))["fired"]) == 1
    await second.close()

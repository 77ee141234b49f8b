"""The room runtime with a custom room on the in-process host: alarms, retries, storage."""

import pytest

from starhold.rooms.local_host import InProcessDirectory
from starhold.rooms.room import HttpRequest, HttpResponse, Room


class AlarmRoom(Room):
    kind = "alarmtest"

    async def on_start(self):
        self.fired = []
        self.failures_left = await self.storage.get("failures") or 0

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.path == "arm":
            await self.storage.put("failures", int(request.query.get("failures", 0)))
            self.failures_left = int(request.query.get("failures", 0))
            await self.storage.set_alarm(self.clock.now() + 5)
        return HttpResponse(200, {"fired": self.fired, "alarm": await self.storage.get_alarm()})

    async def on_alarm(self, info):
        self.fired.append((self.clock.now(), info.retry_count, info.is_retry))
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("flaky")


@pytest.fixture
def directory(tmp_path, manual_clock):
    return InProcessDirectory(tmp_path, clock=manual_clock, idle_timeout=10, room_classes={"alarmtest": AlarmRoom})


async def test_alarm_fires_once_at_its_time(directory, manual_clock):
    room = await directory.get("alarmtest", "a")
    t0 = manual_clock.now()
    await room.request(HttpRequest("GET", "arm"))
    runtime = directory.runtime("alarmtest", "a")
    await manual_clock.advance(4.9)
    assert runtime.room.fired == []
    await manual_clock.advance(0.2)
    assert runtime.room.fired == [(t0 + 5, 0, False)]
    await manual_clock.advance(9)
    assert len(runtime.room.fired) == 1
    assert (await room.request(HttpRequest("GET", ""))).body["alarm"] is None


async def test_failing_alarm_is_retried_with_exponential_backoff_up_to_six_times(directory, manual_clock):
    room = await directory.get("alarmtest", "b")
    t0 = manual_clock.now()
    await room.request(HttpRequest("GET", "arm", {"failures": "100"}))
    runtime = directory.runtime("alarmtest", "b")
    await manual_clock.advance(1000)
    fired = runtime.room.fired
    assert [f[1] for f in fired] == [0, 1, 2, 3, 4, 5, 6]
    assert [f[2] for f in fired] == [False] + [True] * 6
    gaps = [round(b[0] - a[0], 6) for a, b in zip(fired, fired[1:])]
    assert gaps == [2, 4, 8, 16, 32, 64]
    assert fired[0][0] == t0 + 5
    assert runtime.state == "hibernated"  # gave up: no alarm left, so the room went idle


async def test_alarm_retry_succeeds_and_resets(directory, manual_clock):
    room = await directory.get("alarmtest", "c")
    await room.request(HttpRequest("GET", "arm", {"failures": "2"}))
    runtime = directory.runtime("alarmtest", "c")
    await manual_clock.advance(100)
    fired = runtime.room.fired
    assert [f[1] for f in fired] == [0, 1, 2]


async def test_room_with_pending_alarm_does_not_hibernate(directory, manual_clock):
    room = await directory.get("alarmtest", "d")
    await room.request(HttpRequest("GET", "arm"))
    await manual_clock.advance(4)
    assert await directory.is_active("alarmtest", "d")
    await manual_clock.advance(1 + 10.5)  # alarm fired at +5, then 10 s idle
    assert not await directory.is_active("alarmtest", "d")

"""The alarm scheduler (``starhold._runtime.scheduler``) when a wake fails: retried after
``RETRY_DELAY``; a room whose activation is going away (``RoomGone``, as at a shutdown) is an
expected moment, logged at INFO without a traceback, a real failure at WARNING."""

import logging

from starhold._runtime.handle import RoomGone
from starhold._runtime.scheduler import RETRY_DELAY, AlarmScheduler


class FailingOnce:
    """A wake function that raises ``error`` on its first call and records every call."""

    def __init__(self, error: Exception):
        self.error = error
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, kind: str, room_id: str) -> None:
        self.calls.append((kind, room_id))
        if len(self.calls) == 1:
            raise self.error


async def _fire_twice(tmp_path, manual_clock, wake) -> AlarmScheduler:
    scheduler = await AlarmScheduler(tmp_path / "scheduler.sqlite", manual_clock, wake).open()
    await scheduler.register("system", "sol", manual_clock.now() + 5)
    await manual_clock.advance(5)  # the first wake fails
    assert wake.calls == [("system", "sol")] and scheduler.wakes == 0
    await manual_clock.advance(RETRY_DELAY)  # retried
    assert wake.calls == [("system", "sol")] * 2 and scheduler.wakes == 1
    return scheduler


async def test_a_room_going_away_is_retried_and_logged_without_a_warning(tmp_path, manual_clock, caplog):
    caplog.set_level(logging.INFO, logger="starhold")
    scheduler = await _fire_twice(tmp_path, manual_clock, FailingOnce(RoomGone("system/sol")))
    try:
        records = [r for r in caplog.records if "system/sol" in r.getMessage()]
        assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)], records
    finally:
        await scheduler.close()


async def test_a_failed_wake_is_retried_and_logged_as_a_warning_with_its_traceback(tmp_path, manual_clock, caplog):
    caplog.set_level(logging.INFO, logger="starhold")
    scheduler = await _fire_twice(tmp_path, manual_clock, FailingOnce(RuntimeError("boom")))
    try:
        [record] = [r for r in caplog.records if "system/sol" in r.getMessage()]
        assert record.levelno == logging.WARNING and record.exc_info is not None
    finally:
        await scheduler.close()

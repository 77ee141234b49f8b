"""``SystemClock``: the real clock's timers, on the loop the gateway runs (uvloop)."""

import asyncio
import time

import pytest

from starhold.rooms.clock import SystemClock

uvloop = pytest.importorskip("uvloop")


def test_system_clock_timers_never_run_before_their_deadline():
    """uvloop fires about two thirds of ``call_later`` timers up to ~1 ms early; the clock's
    callbacks must still run at or after ``when`` (rooms' alarms rely on it)."""

    async def main() -> list[tuple[float, float]]:
        clock = SystemClock()
        seen: list[tuple[float, float]] = []
        for i in range(40):
            done = asyncio.Event()
            when = clock.now() + 0.002 + (i % 7) * 0.00037  # fractions of a millisecond

            async def callback(when=when, done=done) -> None:
                seen.append((when, time.time()))
                done.set()

            clock.call_at(when, callback)
            await asyncio.wait_for(done.wait(), 5)
        return seen

    seen = uvloop.run(main())
    assert len(seen) == 40
    early = [(when, ran) for when, ran in seen if ran < when]
    assert early == []


def test_system_clock_cancelled_timer_does_not_run_even_when_rearmed():
    async def main() -> bool:
        clock = SystemClock()
        ran = asyncio.Event()

        async def callback() -> None:
            ran.set()

        timer = clock.call_at(clock.now() + 0.003, callback)
        await asyncio.sleep(0)
        timer.cancel()
        try:
            await asyncio.wait_for(ran.wait(), 0.05)
        except asyncio.TimeoutError:
            return False
        return True

    assert uvloop.run(main()) is False

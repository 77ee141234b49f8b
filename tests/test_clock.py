"""``SystemClock``: the real clock's timers, on the loop the gateway runs (uvloop)."""

import asyncio
import gc
import time

import pytest

from starhold.clock import SystemClock, Timer

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
    """A timer cancelled before its deadline never runs: a later sentinel timer runs first and
    the test waits for that, not for a fixed time."""

    async def main() -> list[str]:
        clock = SystemClock()
        ran: list[str] = []
        sentinel = asyncio.Event()

        async def cancelled() -> None:
            ran.append("cancelled")

        async def later() -> None:
            ran.append("sentinel")
            sentinel.set()

        timer = clock.call_at(clock.now() + 0.0031, cancelled)  # a fraction of a ms: often re-armed
        clock.call_at(clock.now() + 0.0101, later)
        await asyncio.sleep(0)
        timer.cancel()
        await asyncio.wait_for(sentinel.wait(), 5)
        return ran

    assert uvloop.run(main()) == ["sentinel"]


def test_system_clock_timer_cancelled_after_its_time_came_but_before_its_task_ran_does_not_run():
    """Two timers fall due in one turn of the loop (the loop is kept busy past both deadlines):
    the first one's callback cancels the second, whose task is already created; it must not run
    (``Timer.cancel``'s promise: code that cancels a timer and arms another, as a room's alarm
    does when a commit moves it, must not get both callbacks)."""

    async def main() -> list[str]:
        clock = SystemClock()
        ran: list[str] = []
        timers = {}

        async def first() -> None:
            ran.append("first")
            timers["second"].cancel()

        async def second() -> None:
            ran.append("second")

        now = clock.now()
        clock.call_at(now + 0.002, first)
        timers["second"] = clock.call_at(now + 0.003, second)
        while time.time() < now + 0.02:  # the loop is busy past both deadlines
            pass
        for _ in range(10):  # both timers' handles, their tasks, and any callback they start
            await asyncio.sleep(0)
        return ran

    assert uvloop.run(main()) == ["first"]


def test_system_clock_timers_leave_no_reference_cycles():
    """Timers that fired (most re-armed once: uvloop fires them early), and timers cancelled
    before their time, are freed by reference counting: none is left for the cyclic collector
    (a room host arms ~100 a second; cyclic garbage at that rate drove full collections that
    stalled its loop). The collector is off while they run, and what it then finds is kept in
    ``gc.garbage`` (``DEBUG_SAVEALL``) to be inspected."""

    async def main() -> list:
        clock = SystemClock()
        done = asyncio.Event()
        fired = []

        async def callback() -> None:
            fired.append(1)
            if len(fired) == 20:
                done.set()

        for i in range(20):
            clock.call_at(clock.now() + 0.001 + (i % 7) * 0.00037, callback)
        for _ in range(5):
            clock.call_at(clock.now() + 60, callback).cancel()
        await asyncio.wait_for(done.wait(), 5)
        for _ in range(5):  # the tasks end
            await asyncio.sleep(0)
        return fired

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        assert len(uvloop.run(main())) == 20
        gc.collect()
        timers = [o for o in gc.garbage if isinstance(o, Timer)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert timers == []

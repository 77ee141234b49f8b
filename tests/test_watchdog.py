"""The blocking-call watchdog behind the ``no_blocking`` fixture."""

import asyncio
import time

import pytest

from starhold.watchdog import BlockingWatchdog


@pytest.mark.allow_blocking
async def test_a_blocking_call_is_caught_with_its_stack():
    watchdog = BlockingWatchdog(threshold=0.1).start()

    def culprit():
        time.sleep(0.3)

    culprit()
    await asyncio.sleep(0.05)
    watchdog.stop()
    assert len(watchdog.stalls) == 1
    assert watchdog.stalls[0][0] > 0.1 and "culprit" in watchdog.stalls[0][1]


async def test_awaiting_does_not_count_as_blocking(no_blocking):
    await asyncio.sleep(0.3)
    await asyncio.to_thread(time.sleep, 0.3)
    assert no_blocking.stalls == []


def test_a_thread_waiting_in_its_selector_is_idle_and_one_sleeping_is_not():
    """A stalled heartbeat whose loop thread is in ``selectors.select`` is CPU starvation on a
    loaded machine, not a blocking call; a thread in ``time.sleep`` is blocked."""
    import selectors
    import sys
    import threading
    import time

    from starhold.watchdog import waiting_in_selector

    selector = selectors.DefaultSelector()
    ready = threading.Event()

    def wait_in_select():
        ready.set()
        selector.select(timeout=2.0)

    def sleep():
        ready.set()
        time.sleep(2.0)

    for target, innermost, idle in ((wait_in_select, "select", True), (sleep, "sleep", False)):
        ready.clear()
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        ready.wait()
        frame = sys._current_frames().get(thread.ident)
        while frame.f_code.co_name != innermost:  # until the thread is inside the call
            time.sleep(0.01)
            frame = sys._current_frames().get(thread.ident)
        assert waiting_in_selector(frame) is idle
    selector.close()
    assert waiting_in_selector(None) is False


@pytest.mark.allow_blocking
async def test_a_process_starved_of_cpu_is_not_taken_for_a_blocking_call(monkeypatch):
    """When the watchdog's own thread oversleeps (the machine ran something else), the loop's
    silence meanwhile is not reported; once it is scheduled again, a real block is."""
    from starhold import watchdog as W

    real_sleep = time.sleep
    starved = {"on": True}

    class StarvedTime:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds):
            real_sleep(seconds + (0.3 if starved["on"] else 0.0))  # woken 0.3 s late

    monkeypatch.setattr(W, "time", StarvedTime)
    dog = BlockingWatchdog(threshold=0.5).start()
    try:
        real_sleep(0.8)  # the loop is silent, but so was everyone
        assert dog.stalls == []
        starved["on"] = False
        await asyncio.sleep(0.1)  # the loop beats again; the watchdog is back on time
        real_sleep(0.8)  # now a real blocking call
    finally:
        dog.stop()
    assert len(dog.stalls) == 1 and "real_sleep(0.8)" in dog.stalls[0][1]

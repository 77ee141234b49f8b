"""The blocking-call watchdog behind the ``no_blocking`` fixture."""

import asyncio
import time

import pytest

from starhold.watchdog import BlockingWatchdog


@pytest.mark.allow_blocking
async def test_a_blocking_call_is_caught_with_its_stack():
    watchdog = BlockingWatchdog(threshold=0.25).start()

    def culprit():
        time.sleep(1.5)  # blocks the loop 6 thresholds long: caught even if some samples are starved

    culprit()
    await asyncio.sleep(0.05)
    watchdog.stop()
    assert watchdog.stalls, "the blocking call was not caught"
    assert all(seconds > 0.25 and "culprit" in stack for seconds, stack in watchdog.stalls)


async def test_awaiting_does_not_count_as_blocking(no_blocking):
    await asyncio.sleep(0.3)
    await asyncio.to_thread(time.sleep, 0.3)
    assert no_blocking.stalls == []


def test_a_thread_waiting_in_its_selector_is_idle_and_one_waiting_elsewhere_is_not():
    """A stalled heartbeat whose loop thread is in ``selectors.select`` is CPU starvation on a
    loaded machine, not a blocking call; a thread blocked anywhere else is blocked. Each thread
    waits until the test releases it (no timing)."""
    import selectors
    import socket
    import sys
    import threading

    from starhold.watchdog import waiting_in_selector

    selector = selectors.DefaultSelector()
    reader, writer = socket.socketpair()
    selector.register(reader, selectors.EVENT_READ)
    release = threading.Event()

    def wait_in_select():
        selector.select()  # until the test writes to the socket pair

    def wait_on_event():
        release.wait()

    for target, innermost, idle in ((wait_in_select, "select", True), (wait_on_event, "wait", False)):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        frame = sys._current_frames().get(thread.ident)
        while frame is None or frame.f_code.co_name != innermost:  # until it is inside the call
            time.sleep(0.01)
            frame = sys._current_frames().get(thread.ident)
        assert waiting_in_selector(frame) is idle
        if idle:
            writer.send(b"x")
        else:
            release.set()
        thread.join()
    selector.close()
    reader.close()
    writer.close()
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
        real_sleep(2.0)  # now a real blocking call, 4 thresholds long
    finally:
        dog.stop()
    assert dog.stalls and all("real_sleep(2.0)" in stack for _, stack in dog.stalls)

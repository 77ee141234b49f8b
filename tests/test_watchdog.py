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

"""Injectable clocks. Room code reads time only through ``self.clock`` (DESIGN §3).

``SystemClock`` is wall-clock time on the running asyncio loop. ``ManualClock`` is for tests:
time stands still until ``advance()`` moves it, firing due timers in deadline order, so a
test of a 10 Hz loop, an idle timeout or an hour of sleep runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Awaitable, Callable

__all__ = ["Clock", "EARLY_TIMER_SLACK", "ManualClock", "SystemClock", "Timer", "TimerCallback"]

TimerCallback = Callable[[], Awaitable[None]]


class Timer:
    """A scheduled callback; ``cancel()`` prevents it from running if it has not begun yet
    (on ``SystemClock``: also when its time came and its task has not started)."""

    __slots__ = ("when", "callback", "cancelled", "_handle")

    def __init__(self, when: float, callback: TimerCallback):
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()


class Clock:
    """Interface: ``now()`` in seconds (Unix epoch on ``SystemClock``) and ``call_at(when, cb)``
    which runs the coroutine function ``cb`` once, at or after ``when`` seconds. ``wall``:
    whether ``now()`` is the system's Unix time (``time.time()``), the time gateways read: only
    then does a ticked room wait for its gateways' tick marks (``starhold._runtime.channel``'s
    input barrier)."""

    wall = False

    def now(self) -> float:
        raise NotImplementedError

    def call_at(self, when: float, callback: TimerCallback) -> Timer:
        raise NotImplementedError


EARLY_TIMER_SLACK = 0.0005
"""Seconds added when a loop timer fires before its deadline and is re-armed for the rest."""


class SystemClock(Clock):
    """Wall-clock time (``time.time()``), timers on the running asyncio loop.

    A timer's callback never runs before its deadline. uvloop (libuv) rounds a delay to whole
    milliseconds against a loop time cached at the start of the iteration, so about two thirds
    of its timers fire up to ~1 ms early; such a timer is re-armed for the remainder (plus
    ``EARLY_TIMER_SLACK``) instead of running. Before this, a room's alarm fired early on most
    ticks, found itself not due and rescheduled: a task, the input gate and a storage read
    spent for nothing.

    A timer leaves no reference cycle behind (its loop handle is dropped when it fires, and a
    cancelled handle drops its callback): a room host arms ~100 timers a second (every room's
    tick), and the closures this used to build (``Timer`` -> handle -> closure -> ``Timer``)
    were ~1,600 objects a second of cyclic garbage per host at 1,000 players, which drove
    CPython's collector to a full collection of the host's ~130,000 objects (the players'
    sockets) every ~20 s, a 70-150 ms stall of its event loop each time (docs/operating.md,
    fourteenth session).
    """

    wall = True

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: TimerCallback) -> Timer:
        timer = Timer(when, callback)
        timer._handle = asyncio.get_running_loop().call_later(max(0.0, when - time.time()), self._fire, timer)
        return timer

    def _fire(self, timer: Timer) -> None:
        timer._handle = None
        if timer.cancelled:
            return
        loop = asyncio.get_running_loop()
        remaining = timer.when - time.time()
        if remaining > 0:
            timer._handle = loop.call_later(remaining + EARLY_TIMER_SLACK, self._fire, timer)
            return
        task = loop.create_task(self._run(timer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(timer: Timer) -> None:
        if not timer.cancelled:  # cancelled after it fired, before its task ran: not run either
            await timer.callback()


class ManualClock(Clock):
    """A clock that moves only when told to.

    ``await advance(seconds)`` moves time forward, running every timer that falls due on the
    way, in deadline order, each at its own deadline (a 10 Hz loop advanced by 1 s ticks ten
    times). ``await advance_to_next()`` jumps to the next deadline (auto-advance).
    """

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = float(start)
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: TimerCallback) -> Timer:
        timer = Timer(float(when), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def next_deadline(self) -> float | None:
        """The earliest pending timer's deadline in seconds, or None."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0), firing due timers in order.
        Raises ``ValueError`` for negative ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._now + seconds
        while True:
            when = self.next_deadline()
            if when is None or when > target:
                break
            _, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            await timer.callback()
        self._now = target

    async def advance_to_next(self) -> float | None:
        """Advance to the next deadline and fire it; returns the new time, or None if idle."""
        when = self.next_deadline()
        if when is None:
            return None
        await self.advance(max(0.0, when - self._now))
        return self._now

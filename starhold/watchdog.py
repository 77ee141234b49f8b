"""Detects blocking calls on an asyncio event loop (for tests; DESIGN §10).

A heartbeat callback runs on the loop every ``interval`` seconds; a thread checks that it
keeps running. When the loop has not beaten for ``threshold`` seconds, something is blocking
it: the thread records the loop thread's stack at that moment, naming the culprit (a
``time.sleep``, a synchronous HTTP call, a blocking SQLite or boto3 call...).

A loop found waiting in its selector is not blocked, however late its heartbeat: on a machine
loaded beyond its cores the process is simply not scheduled (seen on CI: 0.5 s "stalls" whose
stack was ``selectors.select``). Such a sample is not a stall; the watch goes on, so a real
blocking call later in the same stall is still caught. Likewise, when the watchdog's own
thread wakes far later than it asked, the whole process was waiting for a core, and the loop's
silence until then is not held against it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback


STARVED_FRACTION = 4
"""The watchdog thread itself waking more than ``threshold / STARVED_FRACTION`` s late means
the process was not scheduled (a machine loaded beyond its cores): the loop's silence up to
then is not counted. A blocking call in the loop releases the GIL (or gives it up every 5 ms),
so it never delays this thread that much."""


def waiting_in_selector(frame) -> bool:
    """Whether ``frame`` (a thread's innermost frame, or None) is an event loop waiting for I/O
    in ``selectors`` (``select``/``poll``/``epoll``), i.e. idle rather than running code."""
    return frame is not None and frame.f_code.co_filename.endswith("selectors.py") \
        and frame.f_code.co_name == "select"


class BlockingWatchdog:
    """``start(loop)`` in the loop's thread; ``stop()``; ``stalls`` lists
    ``(seconds_blocked, formatted_stack)`` for every stall longer than ``threshold`` s."""

    def __init__(self, threshold: float = 0.25, interval: float = 0.01):
        self.threshold = threshold
        self.interval = interval
        self.stalls: list[tuple[float, str]] = []
        self._beat = time.monotonic()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._thread: threading.Thread | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> "BlockingWatchdog":
        self._loop = loop or asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._running = True
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="blocking-watchdog", daemon=True)
        self._thread.start()
        return self

    def _tick(self) -> None:
        self._beat = time.monotonic()
        if self._running:
            self._handle = self._loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        reported_beat = None
        starved_at = 0.0  # when this thread last found itself descheduled too
        last = time.monotonic()
        while self._running:
            time.sleep(self.interval)
            now = time.monotonic()
            overslept, last = now - last - self.interval, now
            if overslept > self.threshold / STARVED_FRACTION:
                starved_at = now  # the whole process waited for a core: nobody to blame
                continue
            if not self._loop.is_running():  # between pytest phases the loop is stopped
                self._beat = now
                continue
            beat = max(self._beat, starved_at)
            stalled = now - beat
            if stalled > self.threshold and beat != reported_beat:
                frame = sys._current_frames().get(self._loop_thread)
                if waiting_in_selector(frame):
                    continue  # starved of CPU, not blocked: look again
                stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
                self.stalls.append((stalled, stack))
                reported_beat = beat

    def stop(self) -> None:
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join()

    def report(self) -> str:
        return "\n\n".join(f"event loop blocked for more than {s:.2f} s here:\n{stack}" for s, stack in self.stalls)

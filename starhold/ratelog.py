"""Rate-limited logging: one line per kind of failure per interval, not one per attempt.

A failure that repeats (a snapshot store that is down, every wake of every room failing the
same way) would otherwise log a line, or a traceback, per attempt. ``RateLimitedLog`` logs the
first occurrence of each *key* (e.g. ``("store unavailable", "system")``: the kind of failure
and the room kind, never a room id, so the keys stay few) and then at most one line per
``interval`` seconds for that key, each saying how many occurrences it stood for since the
last line. Tracebacks go to DEBUG only, one per occurrence when DEBUG is enabled::

    WAKE_FAILURES = RateLimitedLog(logging.getLogger("starhold.gateway"), interval=30.0)

    WAKE_FAILURES.log(logging.WARNING, ("store unavailable", kind),
                      "room %s cannot wake: %s", key, describe(exc), exc_info=exc)
    ...
    WAKE_FAILURES.recovered(("store unavailable", kind), "room %s woke again", key)

The first line of a key and every later one are at the given level; ``recovered`` logs one
INFO line for a key that failed (with how many failures were held back) and forgets it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["DEFAULT_INTERVAL", "RateLimitedLog", "describe"]

DEFAULT_INTERVAL = 30.0
"""Seconds between two lines of one key."""


def describe(exc: BaseException, limit: int = 300) -> str:
    """One line for ``exc``: ``"<class name>: <first line of its message>"``, at most ``limit``
    characters. An exception that wraps another as ``cause`` (Ray's ``RayTaskError``, whose
    message carries the remote traceback) is described by the wrapped one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


class _Entry:
    __slots__ = ("last", "suppressed", "since")

    def __init__(self, last: float):
        self.last = last  # when the last line of this key was logged
        self.suppressed = 0  # occurrences since that line that were not logged
        self.since = last  # when the first of them happened


class RateLimitedLog:
    """Logs through ``logger`` at most one line per key per ``interval`` seconds (``now``:
    a monotonic clock in seconds, injectable for tests). Not thread-safe: use it from one
    event loop."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL,
                 now: Callable[[], float] = time.monotonic):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.logger = logger
        self.interval = float(interval)
        self.now = now
        self._entries: dict[Hashable, _Entry] = {}

    def log(self, level: int, key: Hashable, msg: str, *args, exc_info: BaseException | None = None,
            extra: dict | None = None) -> bool:
        """One occurrence of ``key``: log ``msg % args`` at ``level`` if the key's last line is
        at least ``interval`` seconds old (or it has none), with ``" (+N more since HH:MM:SS)"``
        when N occurrences were held back since; else only count it. ``exc_info``: logged with
        its traceback at DEBUG, for every occurrence, when DEBUG is enabled. Returns whether a
        line was logged at ``level``."""
        if exc_info is not None and self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(msg, *args, exc_info=exc_info, extra=extra)
        t = self.now()
        entry = self._entries.get(key)
        if entry is not None and t - entry.last < self.interval:
            if entry.suppressed == 0:
                entry.since = t
            entry.suppressed += 1
            return False
        if entry is not None and entry.suppressed:
            msg += " (+%d more since %s)"
            args = (*args, entry.suppressed, _clock_time(entry.since, t))
        self._entries[key] = _Entry(t)
        self.logger.log(level, msg, *args, extra=extra)
        return True

    def recovered(self, key: Hashable, msg: str, *args, extra: dict | None = None) -> bool:
        """``key``'s failure is over: if it was logged, log ``msg % args`` at INFO (with
        ``" (+N more failures since HH:MM:SS)"`` when occurrences were held back since its last
        line) and forget the key, so that its next occurrence is logged at once. Returns
        whether a line was logged."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        if entry.suppressed:
            msg += " (+%d more failures since %s)"
            args = (*args, entry.suppressed, _clock_time(entry.since, self.now()))
        self.logger.info(msg, *args, extra=extra)
        return True

    def pending(self, key: Hashable) -> int:
        """Occurrences of ``key`` held back since its last line (0 for an unknown key)."""
        entry = self._entries.get(key)
        return entry.suppressed if entry is not None else 0


def _clock_time(at: float, now: float) -> str:
    """Wall-clock ``HH:MM:SS`` of the monotonic instant ``at``, ``now`` being the present."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() - (now - at)))

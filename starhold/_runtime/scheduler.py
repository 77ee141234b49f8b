"""The alarm scheduler: wakes hibernated rooms whose alarm falls due.

A hibernated room has no process to run its alarm, so before it sleeps it registers the alarm
here (the model is Orleans' reminder service: a durable index of due reminders that activates
grains). Entries live in the scheduler's own SQLite file and are loaded again when the
scheduler restarts, so no alarm is lost; an entry is deleted only after the wake call
succeeded (at-least-once). Waking a room that is already awake does no harm: the room's own
runtime fires its alarm.

Hosts: the in-process directory owns one ``AlarmScheduler``; on Ray it runs in a singleton
detached actor (``starhold._runtime.ray_host.SchedulerActor``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Awaitable, Callable

import aiosqlite

from ..storage.sqlite_store import daemon_connection

from ..clock import Clock, Timer

log = logging.getLogger("starhold.scheduler")

RETRY_DELAY = 1.0
"""Seconds before retrying a wake that failed (the room's host was unreachable)."""

WakeFn = Callable[[str, str], Awaitable[None]]


class AlarmScheduler:
    """Durable ``(kind, room_id) -> due time`` index that calls ``wake(kind, room_id)`` when
    an entry falls due. Times are seconds on ``clock``. Use ``await open()`` first."""

    def __init__(self, path: str | Path, clock: Clock, wake: WakeFn):
        self.path = Path(path)
        self.clock = clock
        self.wake = wake
        self._db: aiosqlite.Connection | None = None
        self._timers: dict[tuple[str, str], Timer] = {}
        self.wakes = 0

    async def open(self) -> "AlarmScheduler":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await daemon_connection(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS alarms (kind TEXT, room_id TEXT, at REAL, PRIMARY KEY (kind, room_id))")
        await self._db.commit()
        async with self._db.execute("SELECT kind, room_id, at FROM alarms") as cur:
            async for kind, room_id, at in cur:
                self._arm(kind, room_id, at)
        return self

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def register(self, kind: str, room_id: str, at: float) -> None:
        """Wake ``kind/room_id`` at ``at`` (replaces its previous entry). Durable on return."""
        await self._db.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?)", (kind, room_id, float(at)))
        await self._db.commit()
        self._arm(kind, room_id, float(at))

    async def pending(self) -> dict[tuple[str, str], float]:
        """Every registered entry: (kind, room_id) -> due time."""
        async with self._db.execute("SELECT kind, room_id, at FROM alarms") as cur:
            return {(k, r): at async for k, r, at in cur}

    def _arm(self, kind: str, room_id: str, at: float, when: float | None = None) -> None:
        """Fire the entry due at ``at`` at time ``when`` (default ``at``)."""
        key = (kind, room_id)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self.clock.call_at(at if when is None else when, lambda: self._fire(kind, room_id, at))

    async def _fire(self, kind: str, room_id: str, at: float) -> None:
        self._timers.pop((kind, room_id), None)
        if self._db is None:
            return
        try:
            await self.wake(kind, room_id)
        except Exception:
            log.exception("waking %s/%s failed; retrying in %.0f s", kind, room_id, RETRY_DELAY)
            self._arm(kind, room_id, at, self.clock.now() + RETRY_DELAY)
            return
        self.wakes += 1
        # Only the entry we fired: a newer registration made meanwhile stays.
        await self._db.execute("DELETE FROM alarms WHERE kind = ? AND room_id = ? AND at = ?", (kind, room_id, at))
        await self._db.commit()

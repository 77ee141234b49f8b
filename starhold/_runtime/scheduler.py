"""The alarm scheduler: wakes hibernated rooms whose alarm falls due.

A hibernated room has no process to run its alarm, so before it sleeps it registers the alarm
here (the model is Orleans' reminder service: a durable index of due reminders that activates
grains). Entries live in a durable index and are loaded again when the scheduler restarts, so
no alarm is lost; an entry is deleted only after the wake call succeeded (at-least-once).
Waking a room that is already awake, or waking it early, does no harm: the room's own runtime
fires its alarm when it is due.

Indexes (``AlarmIndex``): ``SqliteAlarmIndex``, a SQLite file of the scheduler's own (the
embedded default: ``<data_dir>/scheduler.sqlite``, local to one machine), and
``storage.s3_alarms.S3AlarmIndex``, one small object per entry under ``<prefix>_alarms/`` in
the snapshot bucket, so that a scheduler restarted on another node (another data dir) finds
every entry (``alarm_index_from_config`` picks one from the room hosts' config).

Hosts: the in-process directory owns one ``AlarmScheduler``; on Ray it runs in the namespace's
host pool actor (``starhold._runtime.pool_alarms``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Protocol

import aiosqlite

from ..storage.sqlite_store import daemon_connection

from ..clock import Clock, Timer
from .handle import RoomGone

log = logging.getLogger("starhold.scheduler")

RETRY_DELAY = 1.0
"""Seconds before retrying a wake that failed (the room's host was unreachable)."""
WAKE_TIMEOUT = 30.0
"""Seconds a wake call may take (placing the room, restoring it from S3) before it counts as
failed and is tried again: a call stuck on an unreachable actor must not hold the alarm forever."""

WakeFn = Callable[[str, str], Awaitable[None]]


class AlarmIndex(Protocol):
    """Durable storage of ``(kind, room_id, at)`` entries (``at``: seconds on the scheduler's
    clock). An index may hold several entries for one room after a crash between ``put`` and
    ``delete``; the scheduler keeps the earliest. Methods raise whatever their storage raises
    (``sqlite3.Error``, ``storage.s3_client.S3StorageError``)."""

    async def open(self) -> list[tuple[str, str, float]]:
        """Open the index and return every entry."""

    async def put(self, kind: str, room_id: str, at: float) -> None:
        """Store the entry durably (on return it survives a crash of this process)."""

    async def delete(self, kind: str, room_id: str, at: float) -> None:
        """Remove exactly the entry ``(kind, room_id, at)``; a missing entry is no error."""

    async def close(self) -> None:
        """Release the index's resources."""


class SqliteAlarmIndex:
    """``AlarmIndex`` in a SQLite file (WAL), one row per room: ``put`` replaces the room's row."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> list[tuple[str, str, float]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await daemon_connection(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS alarms (kind TEXT, room_id TEXT, at REAL, PRIMARY KEY (kind, room_id))")
        await self._db.commit()
        async with self._db.execute("SELECT kind, room_id, at FROM alarms") as cur:
            return [(kind, room_id, at) async for kind, room_id, at in cur]

    async def put(self, kind: str, room_id: str, at: float) -> None:
        await self._db.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?)", (kind, room_id, float(at)))
        await self._db.commit()

    async def delete(self, kind: str, room_id: str, at: float) -> None:
        await self._db.execute("DELETE FROM alarms WHERE kind = ? AND room_id = ? AND at = ?", (kind, room_id, at))
        await self._db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


def alarm_index_from_config(config: dict) -> AlarmIndex:
    """The index of a room host's ``config`` (``Settings.room_config()``): with S3 snapshots
    (``config["snapshots"]["kind"] == "s3"``) an ``S3AlarmIndex`` in the snapshot bucket under
    ``<prefix>_alarms/``, reachable from every node; otherwise ``SqliteAlarmIndex`` on
    ``<data_dir>/scheduler.sqlite``."""
    spec = config.get("snapshots")
    if spec and spec.get("kind") == "s3":
        from ..storage.s3_alarms import S3AlarmIndex

        return S3AlarmIndex.from_spec(spec)
    return SqliteAlarmIndex(Path(config["data_dir"]) / "scheduler.sqlite")


class AlarmScheduler:
    """Durable ``(kind, room_id) -> due time`` index that calls ``wake(kind, room_id)`` when
    an entry falls due. Times are seconds on ``clock``. ``index``: an ``AlarmIndex``, or a path
    (a ``SqliteAlarmIndex`` there). Use ``await open()`` first."""

    def __init__(self, index: AlarmIndex | str | Path, clock: Clock, wake: WakeFn):
        self.index: AlarmIndex = SqliteAlarmIndex(index) if isinstance(index, (str, Path)) else index
        self.clock = clock
        self.wake = wake
        self._open = False
        self._due: dict[tuple[str, str], float] = {}
        self._timers: dict[tuple[str, str], Timer] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.wakes = 0

    async def open(self) -> "AlarmScheduler":
        """Load every entry and arm it. Where the index holds several entries of one room
        (a crash between writing a new one and deleting the old), the earliest is armed and
        the others are deleted (waking early is harmless; the room registers again when it
        sleeps)."""
        entries = await self.index.open()
        for timer in self._timers.values():  # a reopened scheduler starts from the index alone
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        self._open = True
        stale = []
        for kind, room_id, at in sorted(entries, key=lambda e: e[2]):
            if (kind, room_id) in self._due:
                stale.append((kind, room_id, at))
                continue
            self._due[(kind, room_id)] = at
            self._arm(kind, room_id, at)
        for kind, room_id, at in stale:
            try:
                await self.index.delete(kind, room_id, at)
            except Exception as exc:  # it stays; the next open deletes it again
                log.warning("could not delete the superseded alarm entry %s/%s at %s: %s", kind, room_id, at, exc)
        return self

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._open = False
        await self.index.close()

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def register(self, kind: str, room_id: str, at: float) -> None:
        """Wake ``kind/room_id`` at ``at`` (replaces its previous entry). Durable on return;
        raises what the index raises (then the previous entry, if any, stays)."""
        key, at = (kind, room_id), float(at)
        async with self._lock(key):
            previous = self._due.get(key)
            await self.index.put(kind, room_id, at)
            self._due[key] = at
            self._arm(kind, room_id, at)
            if previous is not None and previous != at:
                try:
                    await self.index.delete(kind, room_id, previous)
                except Exception as exc:  # the next open() keeps the earliest and deletes the rest
                    log.warning("could not delete the replaced alarm entry %s/%s: %s", kind, room_id, exc)

    async def pending(self) -> dict[tuple[str, str], float]:
        """Every registered entry: (kind, room_id) -> due time."""
        return dict(self._due)

    def _arm(self, kind: str, room_id: str, at: float, when: float | None = None) -> None:
        """Fire the entry due at ``at`` at time ``when`` (default ``at``)."""
        key = (kind, room_id)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self.clock.call_at(at if when is None else when, lambda: self._fire(kind, room_id, at))

    async def _fire(self, kind: str, room_id: str, at: float) -> None:
        key = (kind, room_id)
        self._timers.pop(key, None)
        if not self._open:
            return
        try:
            await asyncio.wait_for(self.wake(kind, room_id), WAKE_TIMEOUT)
        except Exception as exc:
            if isinstance(exc, RoomGone):  # its activation is going away (a shutdown, a hibernation)
                log.info("waking %s/%s: its activation is going away; retrying in %.0f s", kind, room_id,
                         RETRY_DELAY)
            else:
                log.warning("waking %s/%s failed (%s); retrying in %.0f s", kind, room_id,
                            "no answer in %.0f s" % WAKE_TIMEOUT if isinstance(exc, asyncio.TimeoutError)
                            else repr(exc), RETRY_DELAY, exc_info=not isinstance(exc, asyncio.TimeoutError))
            if self._due.get(key) == at and key not in self._timers:
                self._arm(kind, room_id, at, self.clock.now() + RETRY_DELAY)
            return
        self.wakes += 1
        async with self._lock(key):
            if self._due.get(key) != at:  # a newer registration made meanwhile stays
                return
            try:
                await self.index.delete(kind, room_id, at)
            except Exception as exc:  # the entry stays: after a restart it wakes the room once more
                log.warning("could not delete the fired alarm entry %s/%s: %s", kind, room_id, exc)
            self._due.pop(key, None)

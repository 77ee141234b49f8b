"""Snapshots and hibernation of an activation (DESIGN §3, §5).

- **Periodic snapshots**: every ``snapshot_interval`` seconds an awake room's committed
  database is copied to the ``SnapshotStore`` (the upload runs outside the input gate, so the
  room keeps serving); the copy also extends the activation lease.
- **Restore**: an activation whose local file is missing or older than the snapshot its claim
  names starts from a fresh copy of that snapshot (the room last ran elsewhere).
- **Hibernation**: with no event for ``idle_timeout`` seconds and no alarm due within it, the
  room saves its connections (ids, gateways, attachments, tags), hands a pending alarm to the
  ``AlarmService``, publishes a snapshot releasing its lease, tells each gateway
  ``("hibernate",)`` (the sockets stay open) and ends (``on_exit``).

``Hibernation`` is a mixin of ``RoomRuntime`` (``starhold._runtime.runtime``): it uses the
runtime's input gate, ``state``, ``storage``, ``snapshots``, ``lease``, ``clock``,
``_conns``, the output gate (``_pending``, ``_deliver``), ``_abandon`` and ``_stop_timers``,
and owns ``_idle_timer`` and ``_snapshot_timer``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ..ratelog import RateLimitedLog, describe
from ..storage.base import StaleEpochError
from ..storage.sqlite_store import SqliteRoomStorage
from .state import ActivationState

log = logging.getLogger("starhold.room")

SNAPSHOT_FAILURES = RateLimitedLog(log)
"""Failed periodic snapshots and hibernations (a store outage): one line per kind of failure
and room kind per 30 s, tracebacks at DEBUG only."""

SNAPSHOT_INTERVAL = 300.0
"""Seconds between snapshots of an awake room (besides the one taken when it hibernates)."""


class Hibernation:
    """Idle detection, periodic snapshots, restore and hibernation (see the module docstring)."""

    def _arm_snapshot(self) -> None:
        if self.snapshots is not None and self.snapshot_interval and self.state == ActivationState.ACTIVE:
            self._snapshot_timer = self.clock.call_at(self.clock.now() + self.snapshot_interval, self.snapshot)

    def snapshot_soon(self) -> None:
        """Take a snapshot now, in the background (the log grew long: ``replication``)."""
        if self._snapshotting is None or self._snapshotting.done():
            if self._snapshot_timer is not None:
                self._snapshot_timer.cancel()
                self._snapshot_timer = None
            self._snapshotting = asyncio.get_running_loop().create_task(self.snapshot())

    def _log_fields(self, seq: int, position: tuple, released: bool) -> dict:
        """The manifest fields of a snapshot holding the log through ``seq`` of this epoch at
        ``position``: the log goes on after it, unless the activation is ending (``released``)."""
        if not self.replicating:
            return {}
        return {"position": position, "log": () if released else ((self.epoch, seq, -1),)}

    async def snapshot(self) -> None:
        """Take a snapshot now, without hibernating (periodic; the upload runs outside the
        input gate so the room keeps serving). A superseded activation stops here."""
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
        self._snapshot_timer = None
        tmp = self.db_path.with_name(self.db_path.name + ".periodic")
        try:
            async with self._gate:
                if self.state != ActivationState.ACTIVE:
                    return
                await self.storage.commit()
                await self.storage.backup_to(tmp)
                seq, position = self.storage.log_seq, await self.storage.log_position()
            try:
                until = self.lease.until()
                manifest = await self.snapshots.save(self.key, tmp, self.epoch, lease_until=until,
                                                     **self._log_fields(seq, position, False))
                self.lease.extended(until)
                if self.replicator is not None:
                    self.replicator.covered(seq)
                    await self._prune_log((self.epoch, seq))
            except StaleEpochError:
                async with self._gate:
                    if self.state == ActivationState.ACTIVE:
                        await self._abandon()
                return
            async with self._gate:
                if self.state == ActivationState.ACTIVE:
                    await self.storage.meta_put("snapshot_version", manifest.version)
                    await self.storage.commit()
        except Exception as exc:
            SNAPSHOT_FAILURES.log(logging.WARNING, ("periodic snapshot failed", self.room_cls.kind),
                                  "room %s: periodic snapshot failed: %s", self.key, describe(exc), exc_info=exc)
        finally:
            tmp.unlink(missing_ok=True)
            self._arm_snapshot()

    async def _prune_log(self, through: tuple[int, int]) -> None:
        """Delete the log segments a published snapshot holds (best effort)."""
        try:
            await self.snapshots.prune_log(self.key, through)
        except Exception as exc:
            log.warning("room %s: pruning its log failed: %s", self.key, exc)

    async def _restore_if_newer(self, storage: SqliteRoomStorage, manifest) -> SqliteRoomStorage:
        """The open ``storage``, or, when its file is missing or older than the snapshot that
        ``manifest`` (just claimed: nobody else can publish now) names, the storage reopened
        on a fresh copy of that snapshot (the room last ran elsewhere)."""
        if int(await storage.meta_get("snapshot_version") or 0) >= manifest.version:
            return storage
        await storage.close()
        for suffix in ("", "-wal", "-shm"):
            self.db_path.with_name(self.db_path.name + suffix).unlink(missing_ok=True)
        restored = await self.snapshots.restore(self.key, self.db_path)
        storage = await self.storage_factory(self.db_path).open()
        await storage.meta_put("snapshot_version", restored.version if restored else 0)
        await storage.commit()
        return storage

    async def _publish_snapshot(self, tmp: Path) -> None:
        """Snapshot the committed database to the store, releasing the lease, and record its
        version (the caller holds the input gate and is hibernating). Raises
        ``StaleEpochError`` when superseded."""
        try:
            await self.storage.backup_to(tmp)
            seq, position = self.storage.log_seq, await self.storage.log_position()
            manifest = await self.snapshots.save(self.key, tmp, self.epoch, lease_until=0.0,
                                                 **self._log_fields(seq, position, True))
        finally:
            tmp.unlink(missing_ok=True)
        if self.replicator is not None:
            self.replicator.covered(seq)
            await self._prune_log(tuple(position))
        await self.storage.meta_put("snapshot_version", manifest.version)
        await self.storage.commit()

    def _touch(self) -> None:
        """Re-arm or cancel the idle timer after an event; keep the lease renewed."""
        if self.lease is not None:
            self.lease.touch()
        if self.state != ActivationState.ACTIVE:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            return
        # A deadline moved later, not a timer re-armed per event: the timer, when it fires
        # early, re-arms itself at the deadline (_idle).
        self._idle_deadline = self.clock.now() + self.idle_timeout
        if self._idle_timer is None:
            self._idle_timer = self.clock.call_at(self._idle_deadline, self._idle)

    def _busy(self) -> bool:
        """Whether work is scheduled soon: an alarm due within ``idle_timeout``, or posts
        waiting for delivery (``starhold._runtime.posts``)."""
        return bool(self._posts) or (self.replicator is not None and self.replicator.pending) or (
            self._alarm_at is not None and self._alarm_at - self.clock.now() <= self.idle_timeout)

    async def _idle(self) -> None:
        if self.clock.now() < self._idle_deadline:  # events came since it was armed
            self._idle_timer = self.clock.call_at(self._idle_deadline, self._idle)
            return
        self._idle_timer = None
        try:
            await self.hibernate(force=False)
        except Exception as exc:  # the store is unreachable: the room stays awake and tries again
            SNAPSHOT_FAILURES.log(logging.WARNING, ("hibernation failed", self.room_cls.kind),
                                  "room %s: hibernation failed, it stays awake: %s", self.key, describe(exc),
                                  exc_info=exc)

    async def hibernate(self, force: bool = True, moved: bool = False) -> bool:
        """Snapshot and end this activation. Unless ``force``, only when still idle. With
        ``moved`` (a drain: the room wakes elsewhere at once) each gateway holding sockets
        gets ``("moved",)`` before ``("hibernate",)`` and reopens the room's channel at once.
        Returns whether it hibernated."""
        async with self._gate:
            if self.state != ActivationState.ACTIVE or (not force and self._busy()):
                if self.state == ActivationState.ACTIVE:
                    self._touch()
                return False
            self.state = ActivationState.HIBERNATING
            self._pending = []
            try:
                await self.room.on_hibernate()
            except Exception:
                log.exception("room %s: on_hibernate failed", self.key)
            held = [(c.id, c.gateway_id, c.attachment, sorted(c.tags)) for c in self._conns.values()]
            await self.storage.save_connections(held)
            try:
                await self.storage.commit()
                wake_at = self._alarm_at
                if self._posts:  # forced with posts undelivered: wake soon to deliver them
                    wake_at = min(wake_at if wake_at is not None else float("inf"), self.clock.now() + 1.0)
                if wake_at is not None and self.alarm_service is not None:
                    await self.alarm_service.register(self.room_cls.kind, self.name, wake_at)
                if self.snapshots is not None:
                    if self.lease is not None:
                        self.lease.stop()  # the save releases the lease: no renewal may race with it
                    await self._publish_snapshot(self.db_path.with_name(self.db_path.name + ".snapshot"))
            except StaleEpochError:  # a newer activation exists: this one is a zombie
                self._pending = None
                await self._abandon()
                return False
            except BaseException:
                self.state = ActivationState.ACTIVE  # still serving; the next idle period tries again
                self._pending = None
                if self.lease is not None:
                    self.lease.start(self._lease_lost)
                self._touch()
                raise
            pending, self._pending = self._pending, None
            self._after_commit(pending)
            await self.storage.close()
            self._stop_timers()
            for gateway_id in {c.gateway_id for c in self._conns.values()}:
                if moved:
                    self._deliver((gateway_id,), ("moved",))  # wake me again at once (a drain)
                self._deliver((gateway_id,), ("hibernate",))  # keep the sockets open; we sleep
            for conn in self._conns.values():
                conn.closed = True
            self._conns.clear()
            self.state = ActivationState.HIBERNATED
            for box in self._outboxes.values():
                box.ready.set()
            await self.channels.close()  # after pushing the last items
        log.info("room %s hibernated (epoch %d)", self.key, self.epoch)
        if self.on_exit is not None:
            await self.on_exit()
        return True

"""The in-process host: rooms as ``RoomRuntime`` objects on the caller's event loop.

Used by unit tests (with a ``ManualClock``: no Ray, no sleeping) and by
``starhold serve --host local``. Same ``RoomDirectory``/``RoomHandle`` contract as the Ray host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ..storage.snapshots import LocalDirSnapshotStore, SnapshotStore
from ..storage.sqlite_store import SqliteRoomStorage
from ..clock import Clock, SystemClock
from .handle import RoomDirectory, RoomGone, RoomHandle
from ..kinds import room_class
from .paths import room_db_path
from ..room import HttpRequest, HttpResponse, Room
from .hibernation import SNAPSHOT_INTERVAL
from .runtime import RoomRuntime
from .scheduler import AlarmScheduler


def start_task(runtime: RoomRuntime, done: Callable[[BaseException | None], None]) -> asyncio.Task:
    """``runtime.start()`` as a task its callers share: each awaits ``asyncio.shield(task)``,
    so a caller that is cancelled does not cancel the start the others wait for, and all see
    the same outcome. ``done(exc)`` is called synchronously when the start ends, before any
    waiter resumes (``exc``: what it raised, or None). A failure nobody awaits any more is
    not reported as "never retrieved" (its waiters, or the host's log, report it)."""

    async def run() -> None:
        try:
            await runtime.start()
        except BaseException as exc:
            done(exc)
            raise
        done(None)

    task = asyncio.ensure_future(run())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


async def _shielded(call):
    """Await coroutine ``call`` as a task of its own that the caller's cancellation does not
    cancel: a room's hook runs to its end (commit or rollback) like an actor's method on Ray,
    whose caller giving up (a post's timeout, a killed sender's delivery task) does not stop
    it. Cancelling a hook midway would roll its storage back and leave the room's memory ahead
    of it. A failure nobody awaits any more is not reported as "never retrieved"."""
    task = asyncio.ensure_future(call)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return await asyncio.shield(task)


class LocalRoomHandle(RoomHandle):
    """A handle on one in-process activation. Raises ``RoomGone`` once it has hibernated.
    ``send_batch`` and ``request`` run the room's hooks shielded from the caller's
    cancellation (``_shielded``)."""

    def __init__(self, runtime: RoomRuntime, kind: str, room_id: str):
        self.runtime = runtime
        self.kind = kind
        self.room_id = room_id

    async def send_batch(self, gateway_id: str, events: list[tuple]) -> int:
        return await _shielded(self.runtime.dispatch(gateway_id, events))

    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        return await self.runtime.pull(gateway_id, timeout, epoch)

    async def open_channel(self, gateway_id: str) -> dict:
        return await self.runtime.channel_info(gateway_id)

    async def request(self, request: HttpRequest) -> HttpResponse:
        return await _shielded(self.runtime.request(request))

    async def stats(self) -> dict:
        if self.runtime.state not in ("new", "active"):
            raise RoomGone(self.runtime.key)
        return self.runtime.stats()

    async def hibernate(self) -> bool:
        """Hibernate now (ops drain, tests)."""
        await self.runtime._ensure_active()
        return await self.runtime.hibernate(force=True)

    async def fire_alarm(self) -> bool:
        """Deliver the pending alarm now, whatever its time (tests); False if none."""
        return await self.runtime.fire_alarm_now()

    async def migrate(self) -> dict:
        """Hibernate now because the room moves to another node (``starhold drain``): a forced
        hibernation (connections saved, final snapshot, lease released, the activation ends),
        in which each gateway holding sockets of the room gets ``("moved",)`` right before its
        ``("hibernate",)``, so it reopens the room's channel at once, waking the room wherever
        the directory places it, instead of waiting for its next input.

        Returns ``{"migrated": bool, "connections": int, "gateways": [gateway ids]}``:
        ``migrated`` is False when the activation was already ending (another hibernation
        or a newer activation got there first), ``connections`` the sockets held over.
        Raises ``RoomGone`` when the activation has ended, and what the final commit or
        snapshot raised (the room then goes on serving here)."""
        runtime = self.runtime
        await runtime._ensure_active()
        connections = len(runtime._conns)
        gateways = sorted({c.gateway_id for c in runtime._conns.values()})
        migrated = await runtime.hibernate(force=True, moved=True)
        return {"migrated": migrated, "connections": connections if migrated else 0,
                "gateways": gateways if migrated else []}


class InProcessDirectory(RoomDirectory):
    """Activates rooms in this process. ``data_dir`` holds ``rooms/`` (SQLite files) and
    ``snapshots/`` (the default ``LocalDirSnapshotStore``); ``room_classes`` overrides the
    registry (kind -> Room subclass), handy for tests of custom rooms."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        clock: Clock | None = None,
        idle_timeout: float = 10.0,
        snapshots: SnapshotStore | None = None,
        room_classes: dict[str, type[Room]] | None = None,
        storage_factory=SqliteRoomStorage,
        snapshot_interval: float | None = SNAPSHOT_INTERVAL,
    ):
        self.data_dir = Path(data_dir)
        self.clock = clock or SystemClock()
        self.idle_timeout = idle_timeout
        self.snapshots = snapshots or LocalDirSnapshotStore(self.data_dir / "snapshots")
        self.room_classes = dict(room_classes or {})
        self.storage_factory = storage_factory
        self.snapshot_interval = snapshot_interval
        self._runtimes: dict[tuple[str, str], RoomRuntime] = {}
        self._starts: dict[tuple[str, str], asyncio.Task] = {}  # start attempts in flight
        self._lock = asyncio.Lock()
        self.scheduler = AlarmScheduler(self.data_dir / "scheduler.sqlite", self.clock, self._wake)
        self._scheduler_open = False
        self.closed = False

    def room_class(self, kind: str) -> type[Room]:
        """``room_classes[kind]``, else the registry's class. Raises ``KeyError``."""
        return self.room_classes.get(kind) or room_class(kind)

    async def _wake(self, kind: str, room_id: str) -> None:
        if not self.closed:  # an alarm firing while the directory closes must not revive a room
            await self.get(kind, room_id)

    async def get(self, kind: str, room_id: str, params: dict | None = None) -> LocalRoomHandle:
        """The room's handle, activating it if needed. Raises ``RuntimeError`` after ``close``,
        and what the activation's start raised (``StorageError`` when the snapshot store cannot
        be reached, what ``on_start`` raised): concurrent callers share one start attempt and
        all see its failure; the failed activation is forgotten, so the next call starts a
        fresh one."""
        if self.closed:
            raise RuntimeError("the room directory is closed")
        async with self._lock:
            if not self._scheduler_open:  # reloads the alarms of rooms that slept through a restart
                await self.scheduler.open()
                self._scheduler_open = True
            key = (kind, room_id)
            runtime = self._runtimes.get(key)
            if runtime is None or runtime.state not in ("new", "active"):
                runtime = RoomRuntime(
                    self.room_class(kind),
                    room_id,
                    dict(params or {}),
                    db_path=room_db_path(self.data_dir, kind, room_id),
                    clock=self.clock,
                    snapshots=self.snapshots,
                    idle_timeout=self.idle_timeout,
                    on_exit=lambda key=key: self._forget(key),
                    alarm_service=self.scheduler,
                    storage_factory=self.storage_factory,
                    snapshot_interval=self.snapshot_interval,
                    directory=self,
                )
                self._runtimes[key] = runtime
            starting = self._starts.get(key)
            if starting is None and runtime.state == "new":
                starting = self._starts[key] = start_task(
                    runtime, lambda exc, key=key, runtime=runtime: self._start_done(key, runtime, exc))
        if starting is not None:
            await asyncio.shield(starting)
        return LocalRoomHandle(runtime, kind, room_id)

    def _start_done(self, key: tuple[str, str], runtime: RoomRuntime, exc: BaseException | None) -> None:
        """``runtime``'s start ended (``exc``: its failure, or None): forget the attempt, and a
        failed activation with it (the next ``get`` creates a fresh one)."""
        self._starts.pop(key, None)
        if exc is not None and self._runtimes.get(key) is runtime:
            del self._runtimes[key]

    async def _forget(self, key: tuple[str, str]) -> None:
        runtime = self._runtimes.get(key)
        if runtime is not None and runtime.state == "hibernated":
            del self._runtimes[key]

    async def get_if_active(self, kind: str, room_id: str) -> LocalRoomHandle | None:
        runtime = self._runtimes.get((kind, room_id))
        if runtime is None or runtime.state != "active":
            return None
        return LocalRoomHandle(runtime, kind, room_id)

    async def is_active(self, kind: str, room_id: str) -> bool:
        runtime = self._runtimes.get((kind, room_id))
        return runtime is not None and runtime.state == "active"

    async def list_rooms(self) -> list[str]:
        return sorted(f"{k}/{i}" for (k, i), r in self._runtimes.items() if r.state in ("new", "active"))

    def posts_pending(self) -> int:
        """Posts the live rooms committed and have not delivered yet (``starhold.calls``): tests
        wait for 0 (delivery runs in real time, outside a ``ManualClock``)."""
        return sum(r.posts_pending() for r in list(self._runtimes.values()) if r.state == "active")

    def runtime(self, kind: str, room_id: str) -> RoomRuntime | None:
        """The live runtime of a room, or None (tests use it to inspect and evict)."""
        return self._runtimes.get((kind, room_id))

    async def close(self) -> None:
        """Hibernate every live room (snapshots taken), e.g. at server shutdown. Afterwards no
        room activates again (alarms falling due are left to the next start)."""
        self.closed = True
        for runtime in list(self._runtimes.values()):
            if runtime.state == "active":
                await runtime.hibernate(force=True)
        if self._scheduler_open:
            await self.scheduler.close()
            self._scheduler_open = False

    async def start(self) -> None:
        """Load the scheduler's alarms now (else on the first ``get``), so rooms asleep since
        before a restart wake when their alarms fall due."""
        async with self._lock:
            if not self._scheduler_open:
                await self.scheduler.open()
                self._scheduler_open = True

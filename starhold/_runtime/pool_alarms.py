"""The alarm scheduler of a namespace on Ray, run by the host pool's actor.

A hibernated room's alarm is held by an ``AlarmScheduler`` (``starhold._runtime.scheduler``:
a durable index, Orleans' reminder service) that wakes the room when the alarm falls due. On
Ray it runs in the namespace's ``hosts`` actor (``HostPool``, which mixes this class in), not
in an actor of its own: it places the rooms it wakes through that same pool, and a process
less is ~0.5 % of a core and ~50 MB (USS) less per cluster (every Ray actor process's main
thread wakes 100 times a second to check for signals, whatever it serves: docs/operating.md,
fourteenth session). A room host registers an alarm with ``register`` (``AlarmClient``)
before its room sleeps; the index is loaded when the actor starts (it calls
``start_scheduler`` on itself the first time and after every restart by Ray), and the gateway
calls ``start_scheduler`` every few seconds, so that an index that could not be opened (S3
unreachable) is tried again.
"""

from __future__ import annotations

import asyncio
import logging

import ray
from ray.exceptions import RayActorError

from ..clock import SystemClock
from ..ratelog import describe
from .handle import RoomGone
from .scheduler import AlarmScheduler, alarm_index_from_config

log = logging.getLogger("starhold.scheduler")

ALARM_WAKER = "scheduler"
"""The gateway id an alarm wakes a room with (an empty batch, its first call)."""


class PoolAlarms:
    """The alarm half of the host pool's actor (a mixin of ``HostPool``, which provides
    ``get(kind, room_id, params, stale)`` -> ``(host name, host actor)``). Call
    ``_init_alarms(config)`` from the constructor."""

    def _init_alarms(self, config: dict) -> None:
        self.alarms = AlarmScheduler(alarm_index_from_config(config), SystemClock(), self._wake_for_alarm)
        self._alarms_open: asyncio.Future | None = None
        self._alarm_stale: dict[tuple[str, str], str] = {}  # room -> host that did not run it
        try:  # a call queued on ourselves, run once the constructor returns: load the alarms now.
            # Retried: in an actor Ray restarts, a call made before the constructor returns can
            # find the actor still "restarting" and fail at once (ACTOR_UNAVAILABLE), and then
            # nothing would load the alarms until a gateway's keepalive called.
            ray.get_runtime_context().current_actor.start_scheduler.options(max_task_retries=-1).remote()
        except Exception as exc:  # outside an actor (tests constructing it directly); the gateway starts it
            log.debug("scheduler: no self-start (%s)", exc)

    async def start_scheduler(self) -> int:
        """Open the alarm index (once; again after a failed attempt, e.g. S3 unreachable);
        returns how many alarms are pending. Raises what opening the index raised."""
        if self._alarms_open is None or (self._alarms_open.done() and self._alarms_open.exception() is not None):
            self._alarms_open = asyncio.ensure_future(self.alarms.open())
        await asyncio.shield(self._alarms_open)
        return len(await self.alarms.pending())

    async def register(self, kind: str, room_id: str, at: float) -> None:
        """Wake ``kind/room_id`` at ``at`` (Unix seconds), replacing its earlier alarm; durable
        on return. Raises what the index raises."""
        await self.start_scheduler()
        await self.alarms.register(kind, room_id, at)

    async def pending(self) -> dict[str, float]:
        """``{"kind/room_id": due time}`` of every registered alarm."""
        await self.start_scheduler()
        return {f"{k}/{r}": at for (k, r), at in (await self.alarms.pending()).items()}

    async def _wake_for_alarm(self, kind: str, room_id: str) -> None:
        """Place the room (``get``) and send it an empty batch. A host that turned out not to
        run it (``RoomGone``, or the host dead) raises ``RoomGone``; the scheduler tries again
        after ``scheduler.RETRY_DELAY``, and that ``get`` has the pool check that host first
        (its ``stale``), as a ``RayDirectory`` handle does."""
        key = (kind, room_id)
        name, actor = await self.get(kind, room_id, None, self._alarm_stale.pop(key, None))
        try:
            await actor.send_batch.remote(kind, room_id, ALARM_WAKER, [])
        except (RoomGone, RayActorError) as exc:
            self._alarm_stale[key] = name
            raise RoomGone(f"{kind}/{room_id}: {describe(exc)}") from None


class AlarmClient:
    """The ``AlarmService`` a room host gives its rooms: ``register`` on the namespace's pool
    actor (``POOL_NAME``). It never creates the pool: while the pool is missing (a namespace
    being torn down) or restarting, ``register`` raises, and the room does not hibernate (it
    tries again at its next idle period)."""

    def __init__(self, config: dict, pool_name: str):
        self.namespace = config["namespace"]
        self.pool_name = pool_name
        self._pool = None

    async def register(self, kind: str, room_id: str, at: float) -> None:
        if self._pool is None:
            self._pool = await asyncio.to_thread(ray.get_actor, self.pool_name, self.namespace)
        try:
            await self._pool.register.remote(kind, room_id, at)
        except RayActorError:
            self._pool = None  # looked up again next time
            raise

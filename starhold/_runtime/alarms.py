"""Alarm delivery of an activation (DESIGN §3): one durable alarm per room, fired through the
clock, at least once, retried with exponential backoff when ``on_alarm`` raises.

``AlarmDelivery`` is a mixin of ``RoomRuntime`` (``starhold._runtime.runtime``): it uses the
runtime's input gate (``_gate``), ``state``, ``storage``, ``clock``, ``room``, ``room_cls``,
``channels``, ``tick_stats`` and ``_invoke``, and owns ``_alarm_at`` (the stored alarm's time
as last seen), ``_alarm_timer`` and ``_retries`` (the stored retry count, cached; None: read it).
"""

from __future__ import annotations

import logging
import time

from ..room import AlarmInfo
from ..storage.base import StorageError
from .handle import RoomGone
from .state import ActivationState

log = logging.getLogger("starhold.room")

ALARM_RETRY_BASE = 2.0
"""First alarm retry delay, seconds; doubles on each retry."""
ALARM_MAX_RETRIES = 6
"""Retries of a failing ``on_alarm`` (2, 4, ... 64 s after each failure) before the alarm is dropped."""


class AlarmDelivery:
    """Fires the room's stored alarm when it falls due (see the module docstring)."""

    async def fire_alarm_now(self) -> bool:
        """Deliver the pending alarm now, whatever its time (tests); ``on_alarm`` gets the time
        the alarm was set for as ``info.scheduled_time``. Returns False if none."""
        await self._ensure_active()
        return await self._fire_alarm(early=True)

    async def _sync_alarm(self) -> None:
        """Reschedule the clock timer after a commit changed the stored alarm."""
        at = await self.storage.get_alarm()
        if at == self._alarm_at and (at is None or self._alarm_timer is not None):
            return
        if self._alarm_timer is not None:
            self._alarm_timer.cancel()
            self._alarm_timer = None
        self._alarm_at = at
        if at is not None:
            self._alarm_timer = self.clock.call_at(at, self._fire_alarm)

    async def _fire_alarm(self, early: bool = False) -> bool:
        """Deliver the stored alarm if it is due (``early``: whatever its time; its clock timer
        is then left to be cancelled by the commit). Returns whether ``on_alarm`` ran.

        A due alarm of a ticked room on the wall clock first waits, outside the input gate, for
        the marks of the gateways holding its connections (the channel's input barrier,
        ``starhold._runtime.channel``): their batches for the tick that ends now are applied
        before the tick."""
        rate = self.room_cls.tick_rate
        if not early and rate and self.clock.wall and self._alarm_at is not None:
            started = time.perf_counter()
            complete = await self.channels.await_marks(self._alarm_at, 0.5 / rate)
            if complete is not None:
                self.tick_stats.observe_barrier(time.perf_counter() - started, complete)
        async with self._gate:
            if self.state != ActivationState.ACTIVE:
                return False
            if not early:
                self._alarm_timer = None
            at = await self.storage.get_alarm()
            if at is None:
                self._alarm_at = None
                return False
            if at > self.clock.now() and not early:
                self._alarm_at = None
                await self._sync_alarm()
                return False
            # The retry count is stored with the alarm, so retries survive hibernation.
            retries = int(await self.storage.meta_get("alarm_retries") or 0) if self._retries is None else self._retries
            await self.storage.delete_alarm()
            if retries:
                await self.storage.meta_put("alarm_retries", 0)
            info = AlarmInfo(scheduled_time=at, retry_count=retries)
            started = time.perf_counter()
            late = self.clock.now() - at
            try:
                await self._invoke(None, self.room.on_alarm, info, reraise=True)
                self._retries = 0
            except (StorageError, RoomGone):
                self._retries = None
                return True
            except Exception:  # its writes were rolled back: the alarm is still set
                log.exception("room %s: on_alarm failed (retry %d)", self.key, retries)
                if retries < ALARM_MAX_RETRIES:
                    await self.storage.set_alarm(self.clock.now() + ALARM_RETRY_BASE * 2 ** retries)
                    await self.storage.meta_put("alarm_retries", retries + 1)
                    self._retries = retries + 1
                else:
                    await self.storage.delete_alarm()
                    await self.storage.meta_put("alarm_retries", 0)
                    self._retries = 0
                await self.storage.commit()
                await self._sync_alarm()
            finally:
                self.tick_stats.observe(time.perf_counter() - started, late)
        self._touch()
        return True

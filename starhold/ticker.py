"""A fixed-rate loop on the room's durable alarm, with catch-up (DESIGN §3).

Colyseus's ``setSimulationInterval``, on a Durable Object's one alarm: a room that declares
``tick_rate = 10`` (Hz) and runs ``await self.ticker.start()`` gets

    async def on_tick(self, tick: int, missed: int) -> None

called at every tick boundary until ``await self.ticker.stop()``. Tick ``k``'s boundary is
the clock time ``epoch + offset + k / rate`` seconds: ``epoch`` is the room's time zero
(``Room.tick_epoch``, default 0.0, the Unix epoch; the game uses 2026-01-01), ``offset`` the
room's phase in ``[0, 1/rate)`` (``starhold.ticking.tick_offset("kind/id", rate)``) so that
rooms do not all tick at the same instant. Ticks are numbered by the clock, not counted: the
tick delivered at time ``t`` is ``floor((t - epoch - offset) * rate)``, so every activation,
on any node, agrees on the numbering.

**Catch-up.** ``missed`` is how many ticks went by without a delivery since the one the alarm
was armed for: 0 while the room keeps up; after an alarm fired late (a busy room, an alarm
retried after ``on_alarm`` raised) or after the room slept or crashed with its loop running,
the delivered ``tick`` is the current one and ``missed`` counts the skipped ones (the room
fast-forwards its simulation or applies a closed form: DESIGN §3). Whether the loop runs is
stored in the room's database (key ``STATE_KEY``, written only when the loop starts or
stops), and the alarm is durable, so a loop resumes by itself after a wake or a crash: the
next activation's first alarm delivers the current tick with the missed count.
``dt`` is always ``ticker.period`` (``1 / rate`` seconds): the loop is fixed-rate.

**One alarm per room: the ticker owns it.** A room that uses the ticker never calls
``storage.set_alarm``/``delete_alarm`` itself; its other timed work (a seat hold's expiry, a
respawn) registers a *deadline*: ``await ticker.wake_at(key, at, callback)``. The alarm is
set to the next tick boundary while the loop runs, else to the earliest deadline (deleted
when there is none). Due deadlines run (earliest first) at the start of every alarm delivery,
before the tick: while the loop runs, a deadline is thus served at the first tick boundary at
or after it (at most one period late); while it rests, at its own time. ``Room.on_alarm``
delivers to the ticker by default (a room overriding it calls ``await self.ticker.on_alarm(
info)``). Deadlines live in memory: a room registers them again in ``on_start`` (the alarm
itself is durable, so a sleeping room still wakes for them).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Awaitable, Callable

from .ticking import tick_offset

if TYPE_CHECKING:
    from .room import AlarmInfo, Room

__all__ = ["Ticker", "STATE_KEY"]

STATE_KEY = "starhold:ticker"
"""Storage key (in the room's KV) holding ``{"running": True}`` while the loop runs; the
ticker's own, like the alarm: room code leaves it alone."""
EPSILON = 1e-6
"""Ticks of tolerance in ``tick_at``: an alarm set for a boundary fires exactly on it, and
float rounding must not number it as the tick before."""

Deadline = Callable[[], Awaitable[None]]


class Ticker:
    """The fixed-rate loop and deadline multiplexer of one room activation.

    ``room``: the ``Room`` (its ``clock``, ``storage``, ``kind``/``name``); ``rate``: ticks
    per second (default ``room.tick_rate``; None for a ticker that only serves deadlines);
    ``epoch``: clock seconds of the time zero (default ``room.tick_epoch``); ``offset``:
    seconds in ``[0, 1/rate)`` (default ``tick_offset(f"{kind}/{name}", rate)``);
    ``on_tick``: ``async (tick: int, missed: int) -> None`` (default ``room.on_tick``).
    Raises ``ValueError`` for a rate that is not > 0.
    """

    def __init__(self, room: "Room", rate: float | None = None, *, epoch: float | None = None,
                 offset: float | None = None, on_tick: Callable[[int, int], Awaitable[None]] | None = None):
        rate = room.tick_rate if rate is None else rate
        if rate is not None and not rate > 0:
            raise ValueError(f"tick rate must be > 0 Hz, not {rate!r}")
        self.room = room
        self.rate = rate
        self.epoch = float(getattr(room, "tick_epoch", 0.0) if epoch is None else epoch)
        if offset is None:
            offset = tick_offset(f"{room.kind}/{room.name}", rate) if rate else 0.0
        self.offset = offset
        self.on_tick = on_tick or room.on_tick
        self.running = False
        """Whether the loop runs (its state as stored; read from storage on first use)."""
        self.last_tick: int | None = None
        """The last tick delivered by this activation, None before the first."""
        self._deadlines: dict[str, tuple[float, Deadline]] = {}
        self._alarm_at: float | None = None
        self._loaded = False
        self._in_alarm = False

    # ---- time --------------------------------------------------------------------------
    @property
    def period(self) -> float:
        """Seconds between two ticks (``1 / rate``); ``dt`` of every tick."""
        return 1.0 / self._rate()

    def tick_at(self, at: float) -> int:
        """The tick whose period contains clock time ``at`` (seconds): ``floor((at - epoch -
        offset) * rate)``, a boundary itself counting as its tick."""
        return math.floor((at - self.epoch - self.offset) * self._rate() + EPSILON)

    def current_tick(self) -> int:
        """The tick now (``tick_at(clock.now())``)."""
        return self.tick_at(self.room.clock.now())

    def tick_time(self, tick: int) -> float:
        """Clock time of ``tick``'s boundary, seconds: ``epoch + offset + tick / rate``."""
        return self.epoch + self.offset + tick / self._rate()

    @property
    def next_alarm(self) -> float | None:
        """When the ticker has set the room's alarm (clock seconds), None for no alarm."""
        return self._alarm_at

    # ---- control -----------------------------------------------------------------------
    async def start(self) -> None:
        """Run the loop: the next tick is delivered at the next boundary (a no-op when it
        runs: an alarm already armed, even an overdue one after a wake, is kept, so its
        delivery reports the ticks missed). Called while an alarm is being delivered (from a
        deadline's callback), the first tick is delivered in that same alarm. Raises
        ``RuntimeError`` for a ticker without a rate."""
        await self._load()
        if self.rate is None:
            raise RuntimeError("a ticker without a tick rate cannot run a loop")
        if not self.running:
            self.running = True
            await self.room.storage.put(STATE_KEY, {"running": True})
            await self._arm(force=True)
        elif self._alarm_at is None and not self._in_alarm:
            await self._arm()

    async def stop(self) -> None:
        """Stop the loop after the tick being delivered (if any); the alarm is left at the
        earliest deadline, or deleted. A no-op when the loop rests."""
        await self._load()
        if self.running:
            self.running = False
            await self.room.storage.delete(STATE_KEY)
            if not self._in_alarm:
                await self._arm()

    async def wake_at(self, key: str, at: float | None, callback: Deadline | None = None) -> None:
        """Register (or move) the deadline ``key`` at clock time ``at`` (seconds): the async
        ``callback()`` runs in the first alarm delivery at or after ``at``, once (register it
        again for another). ``at`` None removes the deadline. Raises ``ValueError`` when
        ``at`` is given without a callback."""
        await self._load()
        if at is None:
            self._deadlines.pop(key, None)
        elif callback is None:
            raise ValueError("a deadline needs a callback")
        else:
            self._deadlines[key] = (float(at), callback)
        if not self._in_alarm:
            await self._arm()

    # ---- the alarm ---------------------------------------------------------------------
    async def on_alarm(self, info: "AlarmInfo") -> None:
        """Deliver the room's alarm: the due deadlines (earliest first), then, if the loop
        runs, one tick: ``on_tick(tick, missed)`` with ``tick = max(current tick, last + 1)``
        and ``missed`` the ticks between the one the alarm was armed for and ``tick``. Then
        re-arm. If a callback or ``on_tick`` raises, the ticker reloads its state from storage
        on next use (the runtime rolled back the hook's writes and retries the alarm)."""
        await self._load()
        self._alarm_at = None  # the runtime took it off before delivering
        armed = None
        if self.running and self.rate is not None:
            armed = round((info.scheduled_time - self.epoch - self.offset) * self.rate)
        self._in_alarm = True
        try:
            now = self.room.clock.now()
            for key, entry in sorted(self._deadlines.items(), key=lambda item: item[1][0]):
                if entry[0] <= now and self._deadlines.get(key) is entry:
                    del self._deadlines[key]
                    await entry[1]()
            if self.running:
                current = self.current_tick()
                tick = current if self.last_tick is None else max(current, self.last_tick + 1)
                missed = max(0, tick - armed) if armed is not None else 0
                self.last_tick = tick
                # The next tick's alarm now, before the tick, so that it commits with what
                # on_tick commits (commit_now): one commit per tick, not two. A tick that stops
                # the loop re-arms below.
                await self._arm()
                await self.on_tick(tick, missed)
        except BaseException:
            self._loaded = False
            raise
        finally:
            self._in_alarm = False
        await self._arm()

    # ---- internals ---------------------------------------------------------------------
    def _rate(self) -> float:
        if self.rate is None:
            raise RuntimeError("this ticker has no tick rate")
        return self.rate

    async def _load(self) -> None:
        """Read the loop's stored state and the stored alarm (first use of an activation)."""
        if self._loaded:
            return
        self._loaded = True
        storage = self.room.storage
        state = await storage.get(STATE_KEY)
        self.running = bool(state and state.get("running")) and self.rate is not None
        self._alarm_at = await storage.get_alarm()

    async def _arm(self, force: bool = False) -> None:
        """Set the alarm: the next tick boundary while the loop runs, else the earliest
        deadline, else none. Writes only when that changes. While the loop runs, an armed
        alarm is kept (unless ``force``): it is the next tick, or an overdue one whose delivery
        reports the ticks missed."""
        if self.running and self._alarm_at is not None and not force:
            return
        if self.running:
            current = self.current_tick()
            at = self.tick_time(max(current, current if self.last_tick is None else self.last_tick) + 1)
        else:
            at = min((entry[0] for entry in self._deadlines.values()), default=None)
        if at == self._alarm_at and not force:
            return
        self._alarm_at = at
        if at is None:
            await self.room.storage.delete_alarm()
        else:
            await self.room.storage.set_alarm(at)

"""Admission control: refuse new players while the gateway or their room is overloaded.

A server that keeps admitting players past its capacity serves all of them late. Refusing
the new arrivals instead keeps the players already in a room at their normal latency, as long
as the server itself is the bottleneck. (When a load generator shares the machine, as in
``benchmarks/realtime.py`` at 2,000 bots on 2 cores, it is the one starved first: its event
loop fell seconds behind while the gateways' loops and the rooms' ticks stayed under these
limits, so nothing was refused.) Two signals decide, both cheap and
both local to this gateway process:

- **Event-loop lag** of this gateway process. A probe asks the loop to wake it every
  ``PROBE_INTERVAL`` seconds and measures how late it woke. After ``SHED_AFTER`` probes in a
  row later than ``lag_limit`` (default ``LAG_LIMIT``: half a tick, sustained for a second)
  the gateway is overloaded; it recovers after ``CLEAR_AFTER`` probes in a row under half the
  limit (two seconds). A single long stall (a GC pause, a slow disk) counts as one probe and
  sheds nobody.
- **Tick overruns** of the room, from the ``stats`` report each room pushes to its gateways
  about once a second (``starhold._runtime.stats.TickStats``): a room is overloaded when at least
  ``ROOM_OVERRUN_SHARE`` of its ticks since the previous report started half a tick late or
  ran longer than a tick, over at least ``ROOM_MIN_TICKS`` ticks. Rooms may run on other nodes
  than the gateway, so the gateway's own lag says nothing about them.

While either holds, a ``join`` without a seat token is answered with an error frame
``ERR_OVERLOADED`` and the socket closed with 1013 (*try again later*, RFC 6455 §7.4.1 as
registered by IANA); clients reconnect with their usual backoff. A ``join`` with ``resume``
(a player taking back its held seat) is always admitted: it is load the room already carries.
Players already in are never touched. Durable Objects do the same per object: past what one
thread can do, requests fail with an error marked ``overloaded`` that callers should not retry
at once (Cloudflare, "Durable Objects: error handling"); here the refusal happens at the door,
for new players only.
"""

from __future__ import annotations

import asyncio
import logging

from . import metrics

log = logging.getLogger("starhold.gateway.admission")

PROBE_INTERVAL = 0.25
"""Seconds between event-loop lag probes."""
LAG_LIMIT = 0.05
"""Seconds of event-loop lag (half a 10 Hz tick) above which a probe counts as overloaded."""
SHED_AFTER = 4
"""Consecutive overloaded probes (one second) before new players are refused."""
CLEAR_AFTER = 8
"""Consecutive probes under half of the lag limit (two seconds) before they are admitted again."""
ROOM_OVERRUN_SHARE = 0.5
"""Share of a room's ticks since its previous report that overran, at or above which the room
takes no new players."""
ROOM_MIN_TICKS = 5
"""Fewest ticks in a report interval for the overrun share to count."""


class LoadShedder:
    """This gateway process's overload state, fed with event-loop lag samples.

    ``observe(lag)`` takes one probe's lag in seconds; ``overloaded`` is True from the
    ``shed_after``-th consecutive probe above ``lag_limit`` until ``clear_after`` consecutive
    probes below ``lag_limit / 2``. ``lag_limit <= 0`` disables shedding (``overloaded`` stays
    False). ``run()`` is the probe loop (a task for the gateway's lifetime).
    """

    def __init__(self, lag_limit: float = LAG_LIMIT, shed_after: int = SHED_AFTER,
                 clear_after: int = CLEAR_AFTER, probe_interval: float = PROBE_INTERVAL):
        self.lag_limit = lag_limit
        self.shed_after = shed_after
        self.clear_after = clear_after
        self.probe_interval = probe_interval
        self.overloaded = False
        self.last_lag = 0.0
        self._high = 0
        self._low = 0

    def observe(self, lag: float) -> None:
        """Record one probe: ``lag`` seconds late (negative values count as 0)."""
        self.last_lag = lag = max(0.0, lag)
        if self.lag_limit <= 0:
            return
        if lag > self.lag_limit:
            self._high += 1
            self._low = 0
        elif lag < self.lag_limit / 2:
            self._low += 1
            self._high = 0
        else:  # between the two thresholds: neither streak grows
            self._high = self._low = 0
        if not self.overloaded and self._high >= self.shed_after:
            self.overloaded = True
            log.warning("gateway overloaded (event loop %.0f ms late): refusing new players", lag * 1000)
        elif self.overloaded and self._low >= self.clear_after:
            self.overloaded = False
            log.warning("gateway load back to normal: admitting new players")

    async def run(self) -> None:
        """Probe the running loop's lag every ``probe_interval`` seconds, forever."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.probe_interval
            await asyncio.sleep(self.probe_interval)
            self.observe(loop.time() - due)
            metrics.LOOP_LAG.set(self.last_lag)
            metrics.OVERLOADED.set(1 if self.overloaded else 0)


class TickReports:
    """A room's overload state from its cumulative ``stats`` reports (``ticks``, ``overruns``
    since its activation started; a smaller ``ticks`` than last time means a new activation).

    ``observe(report)`` takes each report; ``overloaded`` says whether at least
    ``ROOM_OVERRUN_SHARE`` of the ticks between the last two reports overran (with at least
    ``ROOM_MIN_TICKS`` of them)."""

    __slots__ = ("ticks", "overruns", "overloaded")

    def __init__(self) -> None:
        self.ticks = 0
        self.overruns = 0
        self.overloaded = False

    def observe(self, report: dict) -> None:
        ticks, overruns = int(report.get("ticks", 0)), int(report.get("overruns", 0))
        if ticks < self.ticks or overruns < self.overruns:  # a new activation: counts restarted
            self.ticks = self.overruns = 0
        new_ticks, new_overruns = ticks - self.ticks, overruns - self.overruns
        self.ticks, self.overruns = ticks, overruns
        if new_ticks >= ROOM_MIN_TICKS:
            self.overloaded = new_overruns >= ROOM_OVERRUN_SHARE * new_ticks
        elif new_ticks == 0:
            self.overloaded = False  # not ticking: nothing to overrun

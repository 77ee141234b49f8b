"""Tick figures an activation reports to its gateways (``("stats", key, report)`` items), which
feed ``/metrics`` and admission control (``starhold.gateway.admission.TickReports``)."""

from __future__ import annotations

DEFAULT_TICK = 0.1
"""Seconds of one tick for a room that declares no ``tick_rate`` (its alarm deliveries are
judged as if it ticked at 10 Hz)."""


class TickStats:
    """Cumulative figures of ``on_alarm`` deliveries (ticks) of one activation, reported to
    gateways for ``/metrics``: a histogram of durations (seconds, upper ``BOUNDS``), their sum,
    the count, and overruns (started more than half a tick late, or ran longer than a tick);
    and the input barrier's waits before deliveries (``starhold._runtime.channel``): how many
    waited for a gateway's mark, how many gave up, and the seconds waited.
    ``tick``: seconds of one tick of the room (``1 / Room.tick_rate``)."""

    BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, float("inf"))

    def __init__(self, tick: float = DEFAULT_TICK) -> None:
        self.tick = tick
        self.counts = [0] * len(self.BOUNDS)
        self.sum = 0.0
        self.ticks = 0
        self.overruns = 0
        self.barrier_waits = 0
        self.barrier_timeouts = 0
        self.barrier_seconds = 0.0

    def observe(self, seconds: float, late: float) -> None:
        """One delivery that ran ``seconds`` and started ``late`` seconds after its alarm time."""
        self.ticks += 1
        self.sum += seconds
        self.counts[next(i for i, b in enumerate(self.BOUNDS) if seconds <= b)] += 1
        if late > self.tick / 2 or seconds > self.tick:
            self.overruns += 1

    def observe_barrier(self, seconds: float, complete: bool) -> None:
        """A delivery waited ``seconds`` for gateways' marks; ``complete``: all of them came."""
        self.barrier_waits += 1
        self.barrier_seconds += seconds
        if not complete:
            self.barrier_timeouts += 1

    def report(self) -> dict:
        """``{"ticks", "overruns", "sum", "bounds", "counts", "barrier_waits",
        "barrier_timeouts", "barrier_seconds"}``: plain data for the gateways."""
        return {"ticks": self.ticks, "overruns": self.overruns, "sum": self.sum,
                "bounds": list(self.BOUNDS), "counts": list(self.counts), "barrier_waits": self.barrier_waits,
                "barrier_timeouts": self.barrier_timeouts, "barrier_seconds": self.barrier_seconds}

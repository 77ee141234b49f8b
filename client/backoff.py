"""Reconnection delays, the way partysocket does it.

partysocket (PartyKit's client, built on pladaria/reconnecting-websocket) waits before
reconnection attempt ``n`` (1, 2, ...)::

    delay(n) = min(minReconnectionDelay * reconnectionDelayGrowFactor ** (n - 1), maxReconnectionDelay)

with ``minReconnectionDelay = 1000 + Math.random() * 4000`` ms, ``reconnectionDelayGrowFactor =
1.3`` and ``maxReconnectionDelay = 10000`` ms (reconnecting-websocket's ``_getNextDelay`` and
its documented defaults), and it resets the attempt count once a connection has stayed up
``minUptime`` (5 s). The random first delay spreads the reconnections of many clients
dropped at once (a gateway restart) over 4 seconds instead of a thundering herd; the growth
keeps a long outage from being hammered; the cap keeps a recovered server from waiting long.

``Backoff`` is that schedule in seconds, with an injectable random generator. Unlike the
JavaScript module (whose default is drawn once per page), the random base is drawn per
``Backoff`` and again on every ``reset()``, so bots sharing one process do not reconnect in
lockstep.
"""

from __future__ import annotations

import random

MIN_DELAY = 1.0
"""Smallest first delay, seconds (partysocket: 1000 ms + up to ``JITTER``)."""
JITTER = 4.0
"""Random part of the first delay, seconds: the first delay is uniform in
``[MIN_DELAY, MIN_DELAY + JITTER]``."""
GROW_FACTOR = 1.3
"""Each further attempt waits this much longer than the previous one."""
MAX_DELAY = 10.0
"""Cap of any delay, seconds."""
MIN_UPTIME = 5.0
"""A connection that stayed up this long (seconds) resets the schedule (partysocket's
``minUptime``)."""


class Backoff:
    """Delays before reconnection attempts 1, 2, 3, ... in seconds.

    ``next_delay()`` returns the delay before the next attempt and counts it; ``reset()``
    starts over (after a connection that held) with a freshly drawn base. ``rng`` is any
    object with a ``random()`` method returning floats in ``[0, 1)`` (``random.Random(seed)``
    in tests).

    >>> b = Backoff(rng=random.Random(0))
    >>> [round(b.next_delay(), 3) for _ in range(4)]
    [4.378, 5.691, 7.398, 9.618]
    """

    def __init__(self, *, min_delay: float = MIN_DELAY, jitter: float = JITTER, grow_factor: float = GROW_FACTOR,
                 max_delay: float = MAX_DELAY, rng: random.Random | None = None):
        if min_delay < 0 or jitter < 0 or grow_factor < 1 or max_delay < min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay, jitter >= 0, grow_factor >= 1")
        self.min_delay = min_delay
        self.jitter = jitter
        self.grow_factor = grow_factor
        self.max_delay = max_delay
        self.rng = rng if rng is not None else random.Random()
        self.attempts = 0
        self.base = self._draw()

    def _draw(self) -> float:
        return self.min_delay + self.rng.random() * self.jitter

    def delay(self, attempt: int) -> float:
        """The delay before attempt ``attempt`` (1-based) with the current base, seconds."""
        if attempt < 1:
            return 0.0
        return min(self.base * self.grow_factor ** (attempt - 1), self.max_delay)

    def next_delay(self) -> float:
        """Count one more attempt and return the delay to wait before it, seconds."""
        self.attempts += 1
        return self.delay(self.attempts)

    def reset(self) -> None:
        """Start over at attempt 1 with a new random base."""
        self.attempts = 0
        self.base = self._draw()


__all__ = ["Backoff", "MIN_DELAY", "JITTER", "GROW_FACTOR", "MAX_DELAY", "MIN_UPTIME"]

"""Price history of a market: OHLC buckets and 24-hour figures (pure: no storage, no clock).

A **bucket** covers ``interval`` seconds (``INTERVALS``: 1 min, 1 h, 1 day) starting at a
multiple of ``interval`` in clock seconds (Unix time; game time zero, 2026-01-01T00:00Z, is a
multiple of a day, so the buckets are aligned in game time too). Its value is the list
``[open, high, low, close, volume, trades]``: prices in credits per unit, ``volume`` in units,
``trades`` a count. Only buckets with at least one trade exist.

``Recent`` keeps what the market's GET paths need in memory: per good the last
``TAPE_LENGTH`` trades, the latest bucket of each interval (what the next trade updates) and
the one-minute buckets of the last 24 hours (``stats``: volume and trade count over the
``WINDOW_BUCKETS`` one-minute buckets up to and including the current one).
"""

from __future__ import annotations

import collections

INTERVALS = (60, 3600, 86400)
"""Bucket lengths, seconds: 1 minute, 1 hour, 1 day."""
KEEP = {60: 7 * 86400, 3600: 90 * 86400, 86400: None}
"""Seconds a bucket of each interval is kept after its start (None: forever)."""
TAPE_LENGTH = 50
"""Trades per good in the tape (``GET book``'s ``trades``)."""
WINDOW_BUCKETS = 1440
"""One-minute buckets in the 24-hour figures: the current one and the 1,439 before it."""


def bucket_start(t: float, interval: int) -> int:
    """The start (clock seconds, an int) of the ``interval`` bucket holding time ``t``."""
    return int(t // interval) * interval


def merge(bucket: list | None, price: int, quantity: int) -> list:
    """``bucket`` (``[open, high, low, close, volume, trades]`` or None for a new one) with a
    trade of ``quantity`` units at ``price`` added; returns a new list."""
    if bucket is None:
        return [price, price, price, price, quantity, 1]
    o, h, lo, _, v, n = bucket
    return [o, max(h, price), min(lo, price), price, v + quantity, n + 1]


def to_json(t: int, bucket: list, epoch: float) -> dict:
    """A bucket starting at clock second ``t`` as the HTTP answer's object, ``t`` in game time
    (clock seconds minus ``epoch``)."""
    o, h, lo, c, v, n = bucket
    return {"t": int(t - epoch), "open": o, "high": h, "low": lo, "close": c, "volume": v, "trades": n}


class Recent:
    """The recent history of one market's goods (see the module docstring)."""

    def __init__(self, goods: tuple[str, ...]):
        self.tape = {g: collections.deque(maxlen=TAPE_LENGTH) for g in goods}
        self.latest: dict[tuple[str, int], tuple[int, list]] = {}  # (good, interval) -> (t, bucket)
        self.minutes = {g: collections.deque() for g in goods}  # (t, volume, trades), oldest first

    def load(self, good: str, tape: list[dict], latest: dict[int, tuple[int, list]],
             minutes: list[tuple[int, list]]) -> None:
        """Set ``good``'s state from storage: ``tape`` (trades oldest first), ``latest``
        (interval -> (t, bucket)) and ``minutes`` ((t, bucket) of the last day, oldest first)."""
        self.tape[good].extend(tape)
        for interval, item in latest.items():
            self.latest[(good, interval)] = item
        self.minutes[good].extend((t, b[4], b[5]) for t, b in minutes)

    def add(self, good: str, trade: dict, now: float) -> list[tuple[int, int, list]]:
        """Record ``trade`` (``{"trade", "price", "quantity", "time"}``) made at clock time
        ``now``; returns the buckets it changed as ``(interval, t, bucket)`` for storage. A
        trade earlier than the latest bucket (a clock stepping back) counts in that bucket."""
        self.tape[good].append(trade)
        price, quantity = trade["price"], trade["quantity"]
        changed = []
        for interval in INTERVALS:
            t = bucket_start(now, interval)
            held = self.latest.get((good, interval))
            if held is not None and held[0] >= t:
                t, bucket = held[0], merge(held[1], price, quantity)
            else:
                bucket = merge(None, price, quantity)
            self.latest[(good, interval)] = (t, bucket)
            changed.append((interval, t, bucket))
        minutes = self.minutes[good]
        t = changed[0][1]
        if minutes and minutes[-1][0] == t:
            minutes[-1] = (t, minutes[-1][1] + quantity, minutes[-1][2] + 1)
        else:
            minutes.append((t, quantity, 1))
        return changed

    def window(self, good: str, now: float) -> tuple[int, int]:
        """``(volume, trades)`` of ``good`` over the ``WINDOW_BUCKETS`` one-minute buckets up
        to and including the one holding ``now`` (older buckets are dropped from memory)."""
        first = self.window_start(now)
        minutes = self.minutes[good]
        while minutes and minutes[0][0] < first:
            minutes.popleft()
        return sum(m[1] for m in minutes), sum(m[2] for m in minutes)

    def window_start(self, now: float) -> int:
        """The start (clock s) of the first one-minute bucket of the 24-hour window at ``now``."""
        return bucket_start(now, 60) - (WINDOW_BUCKETS - 1) * 60

"""The chat rate limit: one token bucket per player, shared by ``say`` and ``tell``.

A bucket holds up to ``burst`` tokens and gains one every ``refill_seconds``; a message takes
one, and a message finding the bucket empty is refused (``ERR_RATE_LIMITED``). Each bucket is
kept as the single clock time at which it will be full again (GCRA, the "theoretical arrival
time"), so a check is O(1) and a player whose bucket is full again needs no record at all:
such players are forgotten, which bounds the memory by the players who chatted within the
last ``burst * refill_seconds`` seconds (10 s with the defaults).
"""

from __future__ import annotations

from .text import CHAT_BURST, CHAT_REFILL_SECONDS

__all__ = ["ChatLimiter"]

_EPSILON = 1e-9
"""Seconds of float rounding forgiven, so that a token due at exactly ``t`` is there at ``t``."""
_MIN_PRUNE = 64
"""Records kept before the first sweep of full buckets."""


class ChatLimiter:
    """Per-player token buckets. ``burst``: tokens a full bucket holds (int >= 1), i.e. the
    messages a player may send at once; ``refill_seconds``: seconds for one token to come back
    (> 0). Times are clock seconds (``Room.clock.now()``), passed in by the caller; they should
    not go backwards (a time before the last one is treated as that last one for the bucket).
    Raises ``ValueError`` for a bad ``burst`` or ``refill_seconds``.
    """

    def __init__(self, burst: int = CHAT_BURST, refill_seconds: float = CHAT_REFILL_SECONDS):
        if int(burst) != burst or burst < 1 or not refill_seconds > 0:
            raise ValueError("burst must be an integer >= 1 and refill_seconds > 0")
        self.burst, self.refill = int(burst), float(refill_seconds)
        self.full_at: dict[str, float] = {}
        """player -> clock time (s) at which that player's bucket is full again; a player
        without a record has a full bucket."""
        self._sweep_at = _MIN_PRUNE

    def __len__(self) -> int:
        """Players with a record (buckets not known to be full)."""
        return len(self.full_at)

    def allow(self, player: str, now: float) -> bool:
        """Whether ``player`` may send a chat message at clock time ``now`` (seconds): True
        takes a token, False (the bucket is empty) changes nothing."""
        full_at = max(self.full_at.get(player, now), now) + self.refill
        if full_at - now > self.burst * self.refill + _EPSILON:
            return False
        self.full_at[player] = full_at
        if len(self.full_at) >= self._sweep_at:
            self.prune(now)
        return True

    def tokens(self, player: str, now: float) -> float:
        """The tokens in ``player``'s bucket at clock time ``now`` (0..``burst``, fractional
        while refilling); no side effect."""
        behind = self.full_at.get(player, now) - now
        return self.burst - max(behind, 0.0) / self.refill

    def retry_after(self, player: str, now: float) -> float:
        """Seconds from ``now`` until ``player`` may send again: 0.0 when a token is there."""
        wait = self.full_at.get(player, now) - now - (self.burst - 1) * self.refill
        return max(wait, 0.0) if wait > _EPSILON else 0.0

    def prune(self, now: float) -> int:
        """Forget the players whose bucket is full at clock time ``now``; returns how many.
        ``allow`` calls it whenever the records doubled since the last sweep (amortised
        O(1) per call), so callers need not."""
        full = [p for p, at in self.full_at.items() if at <= now + _EPSILON]
        for player in full:
            del self.full_at[player]
        self._sweep_at = max(_MIN_PRUNE, 2 * len(self.full_at))
        return len(full)

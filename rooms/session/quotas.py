"""Limits on creating game sessions (``POST /api/game/new``), per player.

Each new game is a room: on Ray an actor process (~120 MB while awake), so a player may not
start them without bound. Two limits, each answered with ``429`` and a ``Retry-After`` header:

- **creations**: at most ``per_hour`` games created per player in any rolling hour (default
  ``GAMES_PER_HOUR``; ``Retry-After`` = seconds until the oldest of them leaves the hour);
- **live games**: at most ``live`` games created by the player that are awake (have a live
  activation) at once (default ``LIVE_GAMES``; ``Retry-After`` = ``LIVE_RETRY_AFTER``: a game
  with nobody in it goes to sleep after the rooms' idle timeout and stops counting).

"Awake" is asked of the room directory (Ray's GCS on Ray), so it is exact; *which* games a
player created is recorded by the gateway process that created them, in memory. With N
gateway processes a player spread over them gets up to N times the limits, and a restart
forgets the records (the games themselves are unaffected). A game counts from the moment its
creation starts, so concurrent requests cannot overshoot. 0 disables a limit.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable

GAMES_PER_HOUR = 20
"""Default games a player may create per rolling hour."""
LIVE_GAMES = 3
"""Default games created by one player that may be awake at once."""
WINDOW = 3600.0
"""Seconds of the creation window."""
LIVE_RETRY_AFTER = 30
"""``Retry-After`` seconds when the live-games limit refuses a creation."""


class QuotaExceeded(Exception):
    """A creation was refused: ``message`` (safe to show) and ``retry_after`` (seconds)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


class GameQuota:
    """Per-player game creation limits (see the module docstring). ``now`` returns seconds
    (monotonic); ``per_hour`` / ``live``: limits, 0 = unlimited."""

    def __init__(self, per_hour: int = GAMES_PER_HOUR, live: int = LIVE_GAMES, *,
                 now: Callable[[], float] = time.monotonic):
        self.per_hour, self.live, self.now = per_hour, live, now
        self._created: dict[str, collections.deque] = {}  # player -> creation times in the window
        self._games: dict[str, set[str]] = {}  # player -> games created, possibly awake
        self._pending: set[str] = set()  # games whose creation is in flight

    async def begin(self, player: str, game_id: str, is_awake: Callable[[str], Awaitable[bool]]) -> None:
        """Admit the creation of ``game_id`` by ``player`` and count it, or raise
        ``QuotaExceeded``. ``is_awake(game_id)`` says whether a game has a live activation.
        Call ``end(game_id)`` when the creation request has finished."""
        now = self.now()
        times = self._created.get(player)
        if times is not None:
            while times and times[0] <= now - WINDOW:
                times.popleft()
        if self.per_hour and times is not None and len(times) >= self.per_hour:
            wait = times[0] + WINDOW - now
            raise QuotaExceeded(f"too many games created: at most {self.per_hour} per hour", wait)
        games = self._games.get(player, set())
        for other in list(games):  # forget the ones asleep (never the ones being created)
            if other not in self._pending and not await is_awake(other):
                games.discard(other)
        # No await from here on: the check and the count happen together.
        if self.live and len(games) >= self.live:
            raise QuotaExceeded(f"too many live games: at most {self.live} of your games may be running at once; "
                                "retry when one is empty and has gone to sleep", LIVE_RETRY_AFTER)
        self._created.setdefault(player, collections.deque()).append(now)
        self._games.setdefault(player, games).add(game_id)
        self._pending.add(game_id)

    def end(self, game_id: str) -> None:
        """The creation request of ``game_id`` finished (whatever its outcome)."""
        self._pending.discard(game_id)

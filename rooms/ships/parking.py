"""Parked ships: the ships of players who left a room that keeps ships (a solar system).

A ship whose seat is released (its player left with a 1000 close, or its seat hold expired)
leaves the room's ships, frames and tick arrays: a room's live state is bounded by the
players who are there or hold a seat. The ship is kept as a **parked record** in the room's
storage under ``parked:<player>`` (the ship dict as it was, its leg and waypoints included,
so a flight in progress ends where it was going: positions are a closed-form function of
time), and comes back when that player joins again.

Parked records are bounded too:

- a record expires ``ttl`` seconds after it was parked (``PARK_TTL``, 7 days): the player's
  next join then gets a new ship at the spawn ring;
- at most ``limit`` records are kept (``MAX_PARKED``, 10,000, roughly 3 MB of SQLite): parking
  one more drops the oldest.

Expired records are dropped when the room starts and whenever a ship is parked. The room keeps
an index in memory (player -> parked-at clock time, oldest first, O(1) per park or expiry); the
records themselves are read from storage only when their player joins.
"""

from __future__ import annotations

PARK_TTL = 7 * 24 * 3600.0
"""Seconds a parked ship is kept for its player (7 days)."""
MAX_PARKED = 10_000
"""Most parked ships a room keeps; parking one more drops the oldest."""
PREFIX = "parked:"
"""Storage key prefix of parked records: ``parked:<player>``."""


class ParkingLot:
    """The parked ships of one room: an in-memory index plus write-behind changes.

    ``ttl``: seconds a record lives (> 0); ``limit``: most records kept (>= 1). Records are
    dicts (a ship dict); ``parked_at`` (clock seconds) is added to each. Changes are collected
    in ``pending`` (player -> record to put, or None to delete) until the room's flush takes
    them with ``take_writes``.
    """

    def __init__(self, ttl: float = PARK_TTL, limit: int = MAX_PARKED):
        if ttl <= 0 or limit < 1:
            raise ValueError("ttl must be > 0 and limit >= 1")
        self.ttl, self.limit = float(ttl), int(limit)
        self.index: dict[str, float] = {}  # player -> parked_at, oldest first
        self.pending: dict[str, dict | None] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, player: str) -> bool:
        return player in self.index

    def load(self, stored: dict[str, dict], now: float) -> None:
        """Index the records read from storage (``{key: record}``) and drop the expired ones."""
        records = sorted(stored.values(), key=lambda r: r.get("parked_at", 0.0))
        self.index = {r["player"]: float(r.get("parked_at", 0.0)) for r in records}
        self.expire(now)

    def park(self, player: str, ship: dict, now: float) -> None:
        """Park ``ship`` for ``player`` at clock time ``now`` (replacing an older record),
        then drop expired records and the oldest beyond ``limit``."""
        self.index.pop(player, None)
        self.index[player] = now
        self.pending[player] = {**ship, "parked_at": now}
        self.expire(now)

    def expire(self, now: float) -> None:
        """Drop the records parked ``ttl`` or more seconds before ``now``, and the oldest
        beyond ``limit``."""
        while self.index:
            player, at = next(iter(self.index.items()))
            if at + self.ttl > now and len(self.index) <= self.limit:
                break
            self._drop(player)

    async def take(self, player: str, storage, now: float) -> dict | None:
        """Unpark ``player``'s ship: its record without ``parked_at`` (the record is deleted),
        or None when there is none (never parked, expired or dropped). ``storage``: the
        room's storage (``get``)."""
        if player not in self.index:
            return None
        expired = self.index[player] + self.ttl <= now
        record = self.pending.get(player) if player in self.pending else await storage.get(PREFIX + player)
        self._drop(player)
        if record is None or expired:
            return None
        record = dict(record)
        record.pop("parked_at", None)
        return record

    def take_writes(self) -> tuple[dict[str, dict], list[str]]:
        """The pending changes as ``({key: record}, [keys to delete])``; clears them."""
        puts = {PREFIX + p: r for p, r in self.pending.items() if r is not None}
        deletes = [PREFIX + p for p, r in self.pending.items() if r is None]
        self.pending = {}
        return puts, deletes

    def _drop(self, player: str) -> None:
        self.index.pop(player, None)
        self.pending[player] = None


__all__ = ["ParkingLot", "PARK_TTL", "MAX_PARKED", "PREFIX"]

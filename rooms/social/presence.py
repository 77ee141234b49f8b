"""Who is in a system: the ``presence`` message and the pilots docked there.

``Presence`` decides when a system sends its pilot list: on join (``full``) and whenever the
list changed, at most once per ``interval`` (1 s; ``due``). ``DockedIndex`` keeps the pilots
whose ships are docked at the system's station (offline, listed with status ``"docked"``),
written behind under ``docked:<player>`` like ``rooms.ships.parking.ParkingLot``.

A pilot entry is ``{"player": id, "name": str, "ship": int or None, "status": "online" |
"held" | "docked", "combat": bool}``; a payload is ``{"system": id, "pilots": [entries]}``,
sorted by name (case-insensitively, then by player id), at most ``MAX_PILOTS`` (200).
"""

from __future__ import annotations

__all__ = ["Presence", "DockedIndex", "STATUSES", "MAX_PILOTS", "PRESENCE_INTERVAL", "MAX_DOCKED", "PREFIX"]

STATUSES = ("online", "held", "docked")
"""A pilot's status, by precedence: a player listed twice keeps the first of these."""
MAX_PILOTS = 200
"""Most pilots in a ``presence`` payload (the first by name)."""
PRESENCE_INTERVAL = 1.0
"""Least seconds between two ``presence`` broadcasts of a system."""
MAX_DOCKED = 10_000
"""Most docked pilots a system keeps; docking one more drops the oldest."""
PREFIX = "docked:"
"""Storage key prefix of docked pilots: ``docked:<player>`` -> ``{"name", "since"}``."""


def _pilots(entries: list[dict]) -> list[dict]:
    """Normalised entries (one per player, by status precedence), sorted and capped."""
    best: dict[str, dict] = {}
    for e in entries:
        if e["status"] not in STATUSES:
            raise ValueError(f"unknown pilot status {e['status']!r}")
        pilot = {"player": str(e["player"]), "name": str(e["name"]), "ship": e.get("ship"),
                 "status": e["status"], "combat": bool(e.get("combat", False))}
        old = best.get(pilot["player"])
        if old is None or STATUSES.index(pilot["status"]) < STATUSES.index(old["status"]):
            best[pilot["player"]] = pilot
    return sorted(best.values(), key=lambda p: (p["name"].casefold(), p["name"], p["player"]))[:MAX_PILOTS]


class Presence:
    """The presence throttle of one system. ``system``: the system id put in payloads;
    ``interval``: least seconds between two sends (>= 0). Times are clock seconds passed in.

    Entries: pilot entry dicts (module docstring); ``player``, ``name`` and ``status`` are
    required (``KeyError`` without them), ``ship`` defaults to None and ``combat`` to False; a
    ``status`` outside ``STATUSES`` raises ``ValueError``.
    """

    def __init__(self, system: str, interval: float = PRESENCE_INTERVAL):
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.system, self.interval = system, float(interval)
        self.sent: list[dict] | None = None
        """The pilots of the last payload ``due`` returned (None before the first)."""
        self.sent_at: float | None = None
        self.waiting = False
        """Whether the last ``due`` saw a change it could not send yet (see ``deadline``)."""

    def full(self, entries: list[dict]) -> dict:
        """The payload for ``entries`` now (a joining player's); the throttle is unchanged."""
        return {"system": self.system, "pilots": _pilots(entries)}

    def due(self, entries: list[dict], now: float) -> dict | None:
        """The payload to broadcast at clock time ``now``: when the pilot list (sorted, capped)
        differs from the last one sent (or none was) and ``interval`` seconds passed since that
        send (or it is the first); else None. A change held back sets ``deadline()``."""
        pilots = _pilots(entries)
        if pilots == self.sent:
            self.waiting = False
            return None
        if self.sent_at is not None and now - self.sent_at < self.interval:
            self.waiting = True
            return None
        self.sent, self.sent_at, self.waiting = pilots, now, False
        return {"system": self.system, "pilots": [dict(p) for p in pilots]}

    def deadline(self) -> float | None:
        """Clock time to call ``due`` again when a change is held back by the interval, else
        None (e.g. for ``ticker.wake_at``)."""
        return self.sent_at + self.interval if self.waiting and self.sent_at is not None else None


class DockedIndex:
    """The pilots docked in one system: player -> ``{"name", "since"}`` (``since``: clock
    seconds), oldest first, at most ``limit`` (>= 1, else ``ValueError``). Changes are kept
    until ``take_writes`` (write-behind)."""

    def __init__(self, limit: int = MAX_DOCKED):
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = int(limit)
        self.docked: dict[str, dict] = {}
        self.pending: dict[str, dict | None] = {}

    def __len__(self) -> int:
        return len(self.docked)

    def __contains__(self, player: str) -> bool:
        return player in self.docked

    def dock(self, player: str, name: str, now: float) -> None:
        """``player`` (shown as ``name``) docked at clock time ``now``: added as the newest
        (replacing an older record), then the oldest beyond ``limit`` are dropped."""
        self.docked.pop(player, None)
        self.docked[player] = self.pending[player] = {"name": name, "since": float(now)}
        while len(self.docked) > self.limit:
            self.undock(next(iter(self.docked)))

    def undock(self, player: str) -> bool:
        """``player`` left the station (undocked, or flies elsewhere); False if not docked."""
        if self.docked.pop(player, None) is None:
            return False
        self.pending[player] = None
        return True

    def entries(self) -> list[dict]:
        """Presence entries of the docked pilots, oldest first: ``{"player", "name", "ship":
        None, "status": "docked", "combat": False}``."""
        return [{"player": p, "name": r["name"], "ship": None, "status": "docked", "combat": False}
                for p, r in self.docked.items()]

    def load(self, stored: dict[str, dict]) -> None:
        """Replace the index by the records read from storage (``{"docked:<player>": {"name",
        "since"}}``); keys without the prefix are ignored, the oldest beyond ``limit`` dropped."""
        records = sorted(((k[len(PREFIX):], r) for k, r in stored.items() if k.startswith(PREFIX)),
                         key=lambda item: float(item[1].get("since", 0.0)))
        self.docked = {p: {"name": r.get("name", p), "since": float(r.get("since", 0.0))} for p, r in records}
        self.pending = {}
        while len(self.docked) > self.limit:
            self.undock(next(iter(self.docked)))

    def take_writes(self) -> tuple[dict[str, dict], list[str]]:
        """The pending changes as ``({key: record}, [keys to delete])``; clears them."""
        puts = {PREFIX + p: dict(r) for p, r in self.pending.items() if r is not None}
        deletes = [PREFIX + p for p, r in self.pending.items() if r is None]
        self.pending = {}
        return puts, deletes

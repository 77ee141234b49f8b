"""A pilot's direct messages (``tell``), kept in that pilot's own room until read and then a while.

``Inbox`` is sans-I/O with write-behind like ``rooms.ships.parking.ParkingLot``: the room
``load``s what ``storage.list(prefix=PREFIX)`` returned when it starts, changes the inbox in
memory, and puts/deletes what ``take_writes`` gives with its flush. Messages are numbered in
the inbox (ids 1, 2, ...; the counter is stored under ``NEXT_KEY`` so that ids are never
reused, even after every message expired), stored under ``dm:<id zero-padded to 12 digits>``.

Bounds: a message expires ``DM_TTL`` seconds (7 days) after it was added, delivered or not,
and at most ``DM_LIMIT`` (100) are kept: adding one more drops the oldest.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["Inbox", "chat_payload", "key_of", "DM_TTL", "DM_LIMIT", "PREFIX", "NEXT_KEY"]

DM_TTL = 7 * 24 * 3600.0
"""Seconds a direct message is kept (7 days)."""
DM_LIMIT = 100
"""Most direct messages a pilot keeps; one more drops the oldest."""
PREFIX = "dm:"
"""Storage key prefix of the inbox: messages and the id counter."""
NEXT_KEY = PREFIX + "next"
"""Storage key of the next message id (an int); sorts after every message key."""
FIELDS = ("id", "from", "name", "to", "text", "time", "delivered")
"""The keys of a message dict."""


def key_of(message_id: int) -> str:
    """The storage key of message ``message_id`` (int >= 0): ``dm:000000000042``."""
    return f"{PREFIX}{message_id:012d}"


def chat_payload(message: dict, history: bool = False) -> dict:
    """The ``chat`` payload (docs/protocol.md) of a direct ``message``: ``{"id", "channel":
    "dm", "from", "name", "to", "text", "time", "history"}``."""
    return {"id": message["id"], "channel": "dm", "from": message["from"], "name": message["name"],
            "to": message["to"], "text": message["text"], "time": message["time"], "history": bool(history)}


class Inbox:
    """One pilot's direct messages, oldest (lowest id) first.

    A message is ``{"id": int, "from": player id, "name": sender's name, "to": player id,
    "text": str, "time": game time s, "delivered": bool}``. ``ttl``: seconds a message is kept
    (> 0); ``limit``: most messages kept (>= 1); else ``ValueError``. ``now`` arguments are
    clock seconds (``Room.clock.now()``): expiry counts from the clock time of ``add``.
    """

    def __init__(self, ttl: float = DM_TTL, limit: int = DM_LIMIT):
        if not ttl > 0 or limit < 1:
            raise ValueError("ttl must be > 0 and limit >= 1")
        self.ttl, self.limit = float(ttl), int(limit)
        self.messages: dict[int, dict] = {}  # id -> message, increasing ids
        self.added_at: dict[int, float] = {}  # id -> clock seconds of add
        self.next_id = 1
        self.pending: dict[int, bool] = {}  # id -> True to put, False to delete
        self._next_dirty = False

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, message: dict, now: float) -> dict:
        """Store ``message`` (``from``, ``to``, ``text`` and ``time`` required, ``name``
        defaults to ``from``; other keys ignored) at clock time ``now`` with the next id,
        undelivered; expired messages and the oldest beyond ``limit`` are dropped. Returns the
        stored message (a copy). Raises ``ValueError`` when a required key is missing."""
        missing = [k for k in ("from", "to", "text", "time") if k not in message]
        if missing:
            raise ValueError(f"a direct message needs {', '.join(missing)}")
        stored = {"id": self.next_id, "from": message["from"], "name": message.get("name", message["from"]),
                  "to": message["to"], "text": message["text"], "time": message["time"], "delivered": False}
        self.messages[self.next_id], self.added_at[self.next_id] = stored, float(now)
        self.pending[self.next_id] = True
        self.next_id += 1
        self._next_dirty = True
        self.expire(now)
        return dict(stored)

    def undelivered(self) -> list[dict]:
        """Copies of the messages not yet delivered, oldest first (call ``expire`` first to
        leave out the ones that expired since the last change)."""
        return [dict(m) for m in self.messages.values() if not m["delivered"]]

    def all(self) -> list[dict]:
        """Copies of every kept message, oldest first."""
        return [dict(m) for m in self.messages.values()]

    def mark_delivered(self, ids: Iterable[int]) -> int:
        """Mark the messages ``ids`` delivered (unknown or already delivered ids are skipped);
        returns how many changed."""
        changed = 0
        for message_id in ids:
            message = self.messages.get(message_id)
            if message is not None and not message["delivered"]:
                message["delivered"] = True
                self.pending[message_id] = True
                changed += 1
        return changed

    def expire(self, now: float) -> int:
        """Drop the messages added ``ttl`` or more seconds before clock time ``now``, and the
        oldest beyond ``limit``; returns how many were dropped."""
        doomed = [i for i, at in self.added_at.items() if at + self.ttl <= now]
        for message_id in doomed:
            self._drop(message_id)
        while len(self.messages) > self.limit:
            self._drop(next(iter(self.messages)))
            doomed.append(None)
        return len(doomed)

    def _drop(self, message_id: int) -> None:
        del self.messages[message_id], self.added_at[message_id]
        self.pending[message_id] = False

    def load(self, stored: dict[str, object], now: float) -> None:
        """Replace the inbox by what storage held (``{key: value}`` under ``PREFIX``: message
        records with their ``at``, and ``NEXT_KEY``), then ``expire(now)``. Values that are
        not message records are ignored."""
        records = sorted((r for k, r in stored.items() if k != NEXT_KEY and isinstance(r, dict)
                          and isinstance(r.get("id"), int)), key=lambda r: r["id"])
        self.messages = {r["id"]: {k: r.get(k) for k in FIELDS} for r in records}
        for message in self.messages.values():
            message["delivered"] = bool(message["delivered"])
        self.added_at = {r["id"]: float(r.get("at", now)) for r in records}
        stored_next = stored.get(NEXT_KEY)
        self.next_id = max([stored_next if isinstance(stored_next, int) else 1, *(i + 1 for i in self.messages)])
        self.pending, self._next_dirty = {}, False
        self.expire(now)

    def take_writes(self) -> tuple[dict[str, object], list[str]]:
        """The pending changes as ``({key: value}, [keys to delete])``: message records (the
        message plus ``at``, its clock time of add) and ``NEXT_KEY``; clears them."""
        puts: dict[str, object] = {key_of(i): {**self.messages[i], "at": self.added_at[i]}
                                   for i, put in self.pending.items() if put and i in self.messages}
        deletes = [key_of(i) for i, put in self.pending.items() if not put or i not in self.messages]
        if self._next_dirty:
            puts[NEXT_KEY] = self.next_id
        self.pending, self._next_dirty = {}, False
        return puts, deletes

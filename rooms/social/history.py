"""A system's recent chat: the last system-channel messages, replayed to a joining player.

``ChatHistory`` keeps the ``chat`` payloads of the last ``limit`` (20) ``say`` messages in a
ring, numbers them (``next_id``) and gives them back marked ``history: true`` for a joiner.
It can also be written behind into the room's storage (``chat:<id>``, 12 digits) so that the
history survives the room's sleep: ``load`` what ``storage.list(prefix=PREFIX)`` returned,
and put/delete what ``take_writes`` gives with the room's flush (like ``ParkingLot``).
"""

from __future__ import annotations

from collections import deque

__all__ = ["ChatHistory", "key_of", "HISTORY_LIMIT", "PREFIX"]

HISTORY_LIMIT = 20
"""System messages replayed on join."""
PREFIX = "chat:"
"""Storage key prefix of stored system messages: ``chat:<id zero-padded to 12 digits>``."""


def key_of(message_id: int) -> str:
    """The storage key of system message ``message_id`` (an int >= 0)."""
    return f"{PREFIX}{message_id:012d}"


class ChatHistory:
    """The last ``limit`` (int >= 1) system chat payloads, oldest first.

    A payload is the ``chat`` message's payload dict (docs/protocol.md): ``{"id": int,
    "channel": "system", "from", "name", "to": None, "text", "time": game time s, "history":
    False}``; only ``id`` is required here. Raises ``ValueError`` for ``limit`` < 1.
    """

    def __init__(self, limit: int = HISTORY_LIMIT):
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = int(limit)
        self.messages: deque[dict] = deque(maxlen=self.limit)
        self.next_id = 1
        """The id the next system message should get: one more than the largest id seen."""
        self._puts: dict[str, dict] = {}
        self._deletes: set[str] = set()

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, payload: dict) -> None:
        """Append ``payload`` (a dict with an int ``id``; copied, so later changes to it are
        not seen), dropping the oldest beyond ``limit``. ``next_id`` moves past its id.
        Raises ``ValueError`` when ``id`` is missing, not an int >= 0, or already kept."""
        message_id = payload.get("id")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 0:
            raise ValueError("a chat payload needs an int id >= 0")
        if any(m["id"] == message_id for m in self.messages):
            raise ValueError(f"chat message {message_id} is already in the history")
        if len(self.messages) == self.limit:
            self._forget(self.messages[0]["id"])
        record = dict(payload)
        self.messages.append(record)
        key = key_of(message_id)
        self._deletes.discard(key)
        self._puts[key] = record
        self.next_id = max(self.next_id, message_id + 1)

    def recent(self) -> list[dict]:
        """The kept payloads, oldest first, as copies with ``"history": True`` (ready to send
        to a joining player)."""
        return [{**m, "history": True} for m in self.messages]

    def load(self, stored: dict[str, dict]) -> None:
        """Replace the ring by the payloads read from storage (``{key: payload}``, e.g.
        ``storage.list(prefix=PREFIX)``): the newest ``limit`` by id are kept, the others are
        deleted at the next ``take_writes``. Values without an int ``id`` are ignored."""
        valid = sorted((p for p in stored.values() if isinstance(p, dict) and isinstance(p.get("id"), int)),
                       key=lambda p: p["id"])
        self.messages = deque((dict(p) for p in valid[-self.limit:]), maxlen=self.limit)
        kept = {key_of(p["id"]) for p in self.messages}
        self._puts = {}
        self._deletes = {k for k in stored if k not in kept}
        self.next_id = max([self.next_id, *(p["id"] + 1 for p in valid)])

    def take_writes(self) -> tuple[dict[str, dict], list[str]]:
        """The pending changes as ``({key: payload}, [keys to delete])``; clears them."""
        puts, deletes = self._puts, sorted(self._deletes)
        self._puts, self._deletes = {}, set()
        return puts, deletes

    def _forget(self, message_id: int) -> None:
        key = key_of(message_id)
        self._puts.pop(key, None)
        self._deletes.add(key)

"""Room kinds: which ``Room`` class serves each kind of room.

Hosts in other processes (Ray actors) receive the kind and import the class from here, so
only plain data crosses process boundaries.
"""

from __future__ import annotations

import importlib

from ..room import Room

ROOM_KINDS: dict[str, str] = {
    "system": "starhold.rooms.system.room:SolarSystemRoom",
    "session": "starhold.rooms.session.room:SessionRoom",
    "counter": "starhold.rooms.examples:CounterRoom",
    "reminder": "starhold.rooms.examples:ReminderRoom",
    "accounts": "starhold.rooms.accounts.room:AccountsRoom",
}
"""kind -> "module:Class"."""


def room_class(kind: str) -> type[Room]:
    """The ``Room`` subclass registered for ``kind``. Raises ``KeyError`` for an unknown kind."""
    module, _, cls = ROOM_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


def room_db_path(data_dir, kind: str, room_id: str):
    """Where a room's SQLite file lives: ``<data_dir>/rooms/<kind>/<room_id>.sqlite``."""
    from pathlib import Path

    if not room_id or "/" in room_id or room_id.startswith("."):
        raise ValueError(f"invalid room id {room_id!r}")
    return Path(data_dir) / "rooms" / kind / f"{room_id}.sqlite"

"""Where a room's files live under a server's data directory."""

from __future__ import annotations

from pathlib import Path


def room_db_path(data_dir, kind: str, room_id: str) -> Path:
    """Where a room's SQLite file lives: ``<data_dir>/rooms/<kind>/<room_id>.sqlite``. Raises
    ``ValueError`` for an empty id, one with a ``/`` or one starting with a dot."""
    if not room_id or "/" in room_id or room_id.startswith("."):
        raise ValueError(f"invalid room id {room_id!r}")
    return Path(data_dir) / "rooms" / kind / f"{room_id}.sqlite"

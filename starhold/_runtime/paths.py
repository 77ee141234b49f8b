"""Where a room's files live under a server's data directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_NODE_DATA_DIR = "STARHOLD_NODE_DATA_DIR"
"""Environment variable of a Ray node (set where ``ray start`` runs): the directory under which
the room actors of that node keep their SQLite files instead of the server's ``--data-dir``."""
NODE_ID_CHARS = 12
"""Hex characters of the Ray node id that name a node's cache directory."""


def room_db_path(data_dir, kind: str, room_id: str) -> Path:
    """Where a room's SQLite file lives: ``<data_dir>/rooms/<kind>/<room_id>.sqlite``. Raises
    ``ValueError`` for an empty id, one with a ``/`` or one starting with a dot."""
    if not room_id or "/" in room_id or room_id.startswith("."):
        raise ValueError(f"invalid room id {room_id!r}")
    return Path(data_dir) / "rooms" / kind / f"{room_id}.sqlite"


def node_data_dir(data_dir, node_id: str, *, s3_snapshots: bool,
                  environ: Mapping[str, str] = os.environ) -> Path:
    """The directory whose ``rooms/`` holds the SQLite files of the rooms running on a Ray
    node (pass it to ``room_db_path``):

    - ``$STARHOLD_NODE_DATA_DIR`` of the node, when set (made absolute);
    - else, with S3 snapshots, ``<data_dir>/nodes/<first 12 hex of node_id>``: the room's file
      is then a per-node cache of what S3 holds (a room waking on a node restores from S3 when
      its copy there is missing or older), so nodes sharing a ``--data-dir`` (one NFS mount, or
      the same path on every machine) never open each other's files, and a restarted node
      (a new Ray node id) starts from an empty cache; stale node directories are harmless and
      may be deleted once no live Ray node has that id;
    - else ``data_dir`` itself: with local snapshots the room's file is its source of truth.

    Raises ``ValueError`` for a ``node_id`` without 12 hex characters."""
    override = environ.get(ENV_NODE_DATA_DIR)
    if override:
        return Path(override).absolute()
    if not s3_snapshots:
        return Path(data_dir)
    short = str(node_id or "")[:NODE_ID_CHARS].lower()
    if len(short) != NODE_ID_CHARS or any(c not in "0123456789abcdef" for c in short):
        raise ValueError(f"not a Ray node id: {node_id!r}")
    return Path(data_dir) / "nodes" / short

"""Snapshot stores: where a hibernating room leaves a consistent copy of its database.

``SnapshotStore`` is the interface; ``LocalDirSnapshotStore`` (the embedded default) keeps
``<root>/<room key>/snapshot-<version>.sqlite`` files and a ``manifest.json`` holding the
latest version and the epoch of the activation that wrote it. Blocking file work runs in a
thread (``asyncio.to_thread``) so the room's event loop never blocks.

**Epoch fencing**: ``save`` refuses with ``StaleEpochError`` when the room's manifest was
written by a newer activation (a greater epoch): a zombie or duplicate activation never
replaces a newer activation's snapshot. ``S3SnapshotStore`` (``storage/s3_snapshots.py``) is the
object-store implementation.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import StaleEpochError

KEEP_SNAPSHOTS = 3
"""Snapshots kept per room (older ones are deleted after a new one lands)."""


@dataclass(frozen=True)
class Manifest:
    """The latest snapshot of a room: ``version`` (1, 2, ...), ``epoch`` of the activation
    that wrote it, ``created`` (Unix seconds), ``size`` (bytes)."""

    room: str
    version: int
    epoch: int
    created: float
    size: int


class SnapshotStore(abc.ABC):
    """Where snapshots of room databases go. ``room`` keys look like ``system/sol``."""

    @abc.abstractmethod
    async def save(self, room: str, source: Path, epoch: int) -> Manifest:
        """Store the database file ``source`` as the room's next snapshot, written by the
        activation ``epoch``. Raises ``StaleEpochError`` (nothing replaced) when the room's
        current manifest has a greater epoch."""

    @abc.abstractmethod
    async def latest(self, room: str) -> Manifest | None:
        """The room's manifest, or None if it has no snapshot."""

    @abc.abstractmethod
    async def restore(self, room: str, dest: Path) -> Manifest | None:
        """Copy the latest snapshot to ``dest``; returns its manifest, or None if none exists."""


class LocalDirSnapshotStore(SnapshotStore):
    """Snapshots in a local directory ``root``.

    ``save`` holds an exclusive ``flock`` on ``<room dir>/.lock`` while it reads the manifest,
    checks the epoch, writes the snapshot and replaces the manifest, so concurrent saves on one
    machine (threads or processes) are serialised and the epoch check cannot be raced; each
    file lands with ``os.replace`` (snapshot first, then the manifest that names it), so a
    reader never sees a manifest whose snapshot is missing or half written. ``restore`` holds a
    shared lock so pruning cannot delete the snapshot it copies. ``flock`` does not work across
    machines (e.g. on most network file systems): use ``S3SnapshotStore`` there.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _dir(self, room: str) -> Path:
        return self.root / room

    async def save(self, room: str, source: Path, epoch: int) -> Manifest:
        return await asyncio.to_thread(self._save, room, Path(source), epoch)

    @contextlib.contextmanager
    def _locked(self, room: str, exclusive: bool):
        folder = self._dir(room)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield folder
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _save(self, room: str, source: Path, epoch: int) -> Manifest:
        with self._locked(room, exclusive=True) as folder:
            previous = self._latest(room)
            if previous is not None and previous.epoch > epoch:
                raise StaleEpochError(
                    f"snapshot of room {room!r} refused: epoch {epoch} is older than the "
                    f"manifest's epoch {previous.epoch} (version {previous.version})"
                )
            version = (previous.version if previous else 0) + 1
            target = folder / f"snapshot-{version:08d}.sqlite"
            shutil.copyfile(source, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)
            manifest = Manifest(room, version, epoch, time.time(), target.stat().st_size)
            tmp = folder / "manifest.json.tmp"
            tmp.write_text(json.dumps(asdict(manifest)))
            os.replace(tmp, folder / "manifest.json")
            for old in sorted(folder.glob("snapshot-*.sqlite"))[:-KEEP_SNAPSHOTS]:
                old.unlink(missing_ok=True)
            return manifest

    async def latest(self, room: str) -> Manifest | None:
        return await asyncio.to_thread(self._latest, room)

    def _latest(self, room: str) -> Manifest | None:
        path = self._dir(room) / "manifest.json"
        try:
            return Manifest(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    async def restore(self, room: str, dest: Path) -> Manifest | None:
        return await asyncio.to_thread(self._restore, room, Path(dest))

    def _restore(self, room: str, dest: Path) -> Manifest | None:
        if not (self._dir(room) / "manifest.json").exists():
            return None
        with self._locked(room, exclusive=False) as folder:
            manifest = self._latest(room)
            if manifest is None:
                return None
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".restoring")
            shutil.copyfile(folder / f"snapshot-{manifest.version:08d}.sqlite", tmp)
            os.replace(tmp, dest)
            return manifest

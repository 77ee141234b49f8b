"""Snapshot stores: where a hibernating room leaves a consistent copy of its database.

``SnapshotStore`` is the interface; ``LocalDirSnapshotStore`` (the embedded default) keeps
``<root>/<room key>/snapshot-<version>.sqlite`` files and a ``manifest.json`` holding the
latest version and the epoch of the activation that wrote it. Blocking file work runs in a
thread (``asyncio.to_thread``) so the room's event loop never blocks.

**Epoch fencing and the activation lease.** The manifest is also the room's ownership record:
every activation *claims* it before it serves anything (``claim``: an atomic compare-and-swap of
the manifest that raises its epoch to ``max(manifest epoch, local epoch) + 1`` and records the
claimant as ``holder`` with a lease ``lease_until``), so two activations can never hold the same
epoch, whichever node they run on and whether a manifest existed or not. ``save`` refuses with
``StaleEpochError`` when the manifest's epoch is greater than the writer's (a zombie or duplicate
activation never replaces a newer activation's snapshot); ``renew`` extends the lease and
refuses in the same way once the epoch moved on. A claim that finds a live lease of another
holder (a different node or data file) still takes the manifest at once, but tells the new
activation to serve only after that lease has run out plus ``CLOCK_SKEW`` (``Claim.serve_at``):
the old activation stops acknowledging writes when its lease runs out (``starhold._runtime.lease``), so at
no instant can two activations on different files acknowledge writes. ``S3SnapshotStore``
(``storage/s3_snapshots.py``) is the object-store implementation.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .base import StaleEpochError
from .replication_log import LocalLog

__all__ = ["check_epoch", "Claim", "claimed", "CLOCK_SKEW", "KEEP_SNAPSHOTS",
           "LocalDirSnapshotStore", "Manifest", "manifest_from", "renewed", "saved_manifest",
           "SnapshotStore", "with_log"]

KEEP_SNAPSHOTS = 3
"""Snapshots kept per room (older ones are deleted after a new one lands)."""


@dataclass(frozen=True)
class Manifest:
    """The latest snapshot of a room and its owner: ``version`` (1, 2, ...; 0 when the room was
    claimed but never snapshotted), ``epoch`` of the newest activation (the one that claimed
    or wrote it), ``created`` (Unix seconds of the snapshot), ``size`` (bytes), ``holder`` (who
    holds the activation lease: host, boot and database path; "" when unclaimed) and
    ``lease_until`` (seconds on the rooms' clocks, wall-clock time in production; 0 when the
    lease was released, at hibernation).

    With a replicating store (``SnapshotStore.replicates``; ``storage.replication_log``):
    ``position`` is the statement-log position ``(epoch, seq)`` of the last commit the
    snapshot holds, and ``log`` the ranges of log segments to replay on top of it, in order:
    ``(epoch, after, through)`` = the commits ``after + 1 .. through`` of log ``epoch``;
    ``through`` is -1 for the open log of the activation holding the lease (every segment of it
    that exists, contiguously)."""

    room: str
    version: int
    epoch: int
    created: float
    size: int
    holder: str = ""
    lease_until: float = 0.0
    position: tuple = (0, 0)
    log: tuple = ()


CLOCK_SKEW = 1.0
"""Seconds of clock difference between nodes that the activation lease tolerates: a new
activation serves only this long after the previous holder's ``lease_until``."""


@dataclass(frozen=True)
class Claim:
    """The outcome of ``SnapshotStore.claim``: the claimed ``manifest`` (its ``epoch`` is the
    new activation's) and ``serve_at``, the time (seconds, the caller's clock) before which the
    new activation must not serve: the end of another holder's live lease plus
    ``CLOCK_SKEW``, or the claim's own ``now``."""

    manifest: Manifest
    serve_at: float
    previous_holder: str = ""
    """Who held the room before this claim ("" when nobody did)."""


def claimed(current: Manifest | None, room: str, at_least: int, holder: str, now: float,
            lease: float, open_log: bool = False) -> Claim:
    """The manifest a claim writes over ``current`` (None: no manifest yet): epoch
    ``max(current epoch, at_least) + 1``, ``holder``, and a lease that runs ``lease`` seconds
    past ``serve_at`` (see ``Claim``); version, size, created, position and log are kept,
    except that with ``open_log`` a manifest with no log ranges (a clean hibernation, or a new
    room) gets the new epoch's open log ``((epoch, 0, -1),)`` at once."""
    epoch = max(current.epoch if current else 0, int(at_least)) + 1
    serve_at = now
    if current is not None and current.holder and current.holder != holder:
        serve_at = max(now, current.lease_until + CLOCK_SKEW) if current.lease_until else now
    if current is None:
        manifest = Manifest(room, 0, epoch, 0.0, 0, holder, serve_at + lease)
    else:
        manifest = replace(current, epoch=epoch, holder=holder, lease_until=serve_at + lease)
    if open_log and not manifest.log:
        manifest = replace(manifest, log=((epoch, 0, -1),))
    return Claim(manifest, serve_at, current.holder if current is not None else "")


def with_log(current: Manifest | None, room: str, epoch: int, holder: str, log: tuple) -> Manifest:
    """``current`` with its log ranges replaced by ``log``. Raises ``StaleEpochError`` when
    ``current`` is missing or belongs to another epoch or holder."""
    if current is None or current.epoch != epoch or current.holder != holder:
        found = "no manifest" if current is None else f"epoch {current.epoch} held by {current.holder!r}"
        raise StaleEpochError(f"room {room!r}: epoch {epoch} no longer holds the room ({found})")
    return replace(current, log=tuple(tuple(int(x) for x in r) for r in log))


def renewed(current: Manifest | None, room: str, epoch: int, holder: str, lease_until: float) -> Manifest:
    """``current`` with its lease moved to ``lease_until``. Raises ``StaleEpochError`` when
    ``current`` is missing or belongs to another epoch or holder (the lease was lost), or was
    released (``lease_until`` 0: the activation hibernated; a renewal that raced with it must
    not hold the room for a whole lease after it)."""
    if current is None or current.epoch != epoch or current.holder != holder or not current.lease_until:
        found = "no manifest" if current is None else f"epoch {current.epoch} held by {current.holder!r}"
        raise StaleEpochError(f"room {room!r}: the lease of epoch {epoch} is lost ({found})")
    return replace(current, lease_until=float(lease_until))


def saved_manifest(current: Manifest | None, room: str, version: int, epoch: int, size: int,
                   lease_until: float | None, position: tuple | None = None, log: tuple | None = None) -> Manifest:
    """The manifest a ``save`` by ``epoch`` writes: it keeps the holder (and, unless
    ``lease_until`` is given, the lease) of ``current`` when that is the same epoch, and
    records the snapshot's log ``position`` and the ``log`` ranges after it (None: none)."""
    holder, until = "", 0.0
    if current is not None and current.epoch == epoch:
        holder, until = current.holder, current.lease_until
    if lease_until is not None:
        until = float(lease_until)
    return Manifest(room, version, epoch, time.time(), size, holder, until,
                    tuple(int(x) for x in position) if position else (0, 0),
                    tuple(tuple(int(x) for x in r) for r in log) if log else ())


def check_epoch(room: str, epoch: int, current: Manifest | None, where: str = "") -> None:
    """Raise ``StaleEpochError`` when ``current`` was written by a newer activation."""
    if current is not None and current.epoch > epoch:
        raise StaleEpochError(
            f"snapshot of room {room!r} refused: epoch {epoch} is older than the manifest's "
            f"epoch {current.epoch} (version {current.version}){where}"
        )


def manifest_from(data: dict) -> Manifest:
    """A ``Manifest`` from its JSON object (manifests written before the lease existed lack
    ``holder`` and ``lease_until``). Raises ``KeyError``/``TypeError`` when fields are missing."""
    values = {f.name: data[f.name] for f in fields(Manifest) if f.name in data or f.default is dataclasses.MISSING}
    if "position" in values:
        values["position"] = tuple(int(x) for x in values["position"])
    if "log" in values:
        values["log"] = tuple(tuple(int(x) for x in r) for r in values["log"])
    return Manifest(**values)


class SnapshotStore(abc.ABC):
    """Where snapshots of room databases go. ``room`` keys look like ``system/sol``.

    ``replicates``: whether rooms stored here also replicate every commit to the store's
    statement log before acknowledging it (``storage.replication_log``), so that an
    acknowledged write survives the loss of the room's node."""

    replicates = False

    @abc.abstractmethod
    async def save(self, room: str, source: Path, epoch: int, *, lease_until: float | None = None,
                   position: tuple | None = None, log: tuple | None = None) -> Manifest:
        """Store the database file ``source`` as the room's next snapshot, written by the
        activation ``epoch``; ``lease_until`` (seconds) renews that activation's lease (0
        releases it; None keeps it); ``position`` and ``log`` go to the manifest (see
        ``Manifest``). Raises ``StaleEpochError`` (nothing replaced) when the room's current
        manifest has a greater epoch."""

    @abc.abstractmethod
    async def claim(self, room: str, *, at_least: int, holder: str, now: float, lease: float,
                    open_log: bool = False) -> Claim:
        """Atomically take the room's next epoch (``max(manifest epoch, at_least) + 1``) and
        its activation lease for ``holder`` (see ``claimed``); a racing claim or save makes
        this one read the manifest again and retry, so no two claims get the same epoch."""

    @abc.abstractmethod
    async def renew(self, room: str, epoch: int, holder: str, lease_until: float) -> Manifest:
        """Move the lease of activation ``epoch`` to ``lease_until`` (seconds). Raises
        ``StaleEpochError`` when a newer activation claimed the room."""

    @abc.abstractmethod
    async def latest(self, room: str) -> Manifest | None:
        """The room's manifest (version 0 when it was claimed but never snapshotted), or None
        if no activation ever claimed it."""

    @abc.abstractmethod
    async def restore(self, room: str, dest: Path) -> Manifest | None:
        """Copy the latest snapshot to ``dest``; returns its manifest, or None if none exists
        (no manifest, or a manifest of version 0: claimed, never snapshotted)."""


class LocalDirSnapshotStore(LocalLog, SnapshotStore):
    """Snapshots in a local directory ``root``.

    ``save`` holds an exclusive ``flock`` on ``<room dir>/.lock`` while it reads the manifest,
    checks the epoch, writes the snapshot and replaces the manifest, so concurrent saves on one
    machine (threads or processes) are serialised and the epoch check cannot be raced; each
    file lands with ``os.replace`` (snapshot first, then the manifest that names it), so a
    reader never sees a manifest whose snapshot is missing or half written. ``restore`` holds a
    shared lock so pruning cannot delete the snapshot it copies. ``flock`` does not work across
    machines (e.g. on most network file systems): use ``S3SnapshotStore`` there.
    """

    def __init__(self, root: str | os.PathLike, *, replicate: bool = False):
        self.root = Path(root)
        self.replicates = bool(replicate)

    def _dir(self, room: str) -> Path:
        return self.root / room

    async def save(self, room: str, source: Path, epoch: int, *, lease_until: float | None = None,
                   position: tuple | None = None, log: tuple | None = None) -> Manifest:
        return await asyncio.to_thread(self._save, room, Path(source), epoch, lease_until, position, log)

    async def claim(self, room: str, *, at_least: int, holder: str, now: float, lease: float,
                    open_log: bool = False) -> Claim:
        def run() -> Claim:
            with self._locked(room, exclusive=True) as folder:
                claim = claimed(self._latest(room), room, at_least, holder, now, lease, open_log)
                self._write_manifest(folder, claim.manifest)
                return claim
        return await asyncio.to_thread(run)

    async def set_log(self, room: str, epoch: int, holder: str, log: tuple) -> Manifest:
        def run() -> Manifest:
            with self._locked(room, exclusive=True) as folder:
                manifest = with_log(self._latest(room), room, epoch, holder, log)
                self._write_manifest(folder, manifest)
                return manifest
        return await asyncio.to_thread(run)

    async def renew(self, room: str, epoch: int, holder: str, lease_until: float) -> Manifest:
        def run() -> Manifest:
            with self._locked(room, exclusive=True) as folder:
                manifest = renewed(self._latest(room), room, epoch, holder, lease_until)
                self._write_manifest(folder, manifest)
                return manifest
        return await asyncio.to_thread(run)

    @staticmethod
    def _write_manifest(folder: Path, manifest: Manifest) -> None:
        tmp = folder / "manifest.json.tmp"
        tmp.write_text(json.dumps(asdict(manifest)))
        os.replace(tmp, folder / "manifest.json")

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

    def _save(self, room: str, source: Path, epoch: int, lease_until: float | None, position=None,
              log=None) -> Manifest:
        with self._locked(room, exclusive=True) as folder:
            previous = self._latest(room)
            check_epoch(room, epoch, previous)
            version = (previous.version if previous else 0) + 1
            target = folder / f"snapshot-{version:08d}.sqlite"
            shutil.copyfile(source, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)
            manifest = saved_manifest(previous, room, version, epoch, target.stat().st_size, lease_until,
                                      position, log)
            self._write_manifest(folder, manifest)
            for old in sorted(folder.glob("snapshot-*.sqlite"))[:-KEEP_SNAPSHOTS]:
                old.unlink(missing_ok=True)
            return manifest

    async def latest(self, room: str) -> Manifest | None:
        return await asyncio.to_thread(self._latest, room)

    def _latest(self, room: str) -> Manifest | None:
        path = self._dir(room) / "manifest.json"
        try:
            return manifest_from(json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    async def restore(self, room: str, dest: Path) -> Manifest | None:
        return await asyncio.to_thread(self._restore, room, Path(dest))

    def _restore(self, room: str, dest: Path) -> Manifest | None:
        if not (self._dir(room) / "manifest.json").exists():
            return None
        with self._locked(room, exclusive=False) as folder:
            manifest = self._latest(room)
            if manifest is None or manifest.version == 0:
                return None
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".restoring")
            shutil.copyfile(folder / f"snapshot-{manifest.version:08d}.sqlite", tmp)
            os.replace(tmp, dest)
            return manifest

"""A room's statement log in its snapshot store: how an acknowledged write survives its node.

A snapshot is a copy at one moment; alone, it loses everything a room did since (a lost node
lost all of it). So a room whose store ``replicates`` (S3 by default) also appends each commit's
statements (``storage.sqlite_store``: the statement log) to the store as a **segment** before
the output that acknowledges the commit is released (``starhold._runtime.replication``).
Recovery on any node is then: the manifest's snapshot, plus the segments its ``log`` ranges
name, replayed in order (``Manifest.position``, ``Manifest.log``).

Layout (both stores), per room key::

    <room>/log/<epoch:010d>/<last:012d>    one segment: the commits first..last of log
                                           ``epoch`` (an activation's epoch), msgpack

A segment object is written once (S3: ``If-None-Match: *``) and never changed; a segment's
body is ``{"epoch": e, "first": f, "last": l, "commits": [[seq, statements], ...]}``, where
``statements`` are ``[query, params, many]`` lists. Segments are deleted once a snapshot
holds them (``prune_log``).

``LocalLog`` is the local-directory implementation (a mixin of ``LocalDirSnapshotStore``; it
replicates only when asked, ``replicate=True``: on one machine the SQLite file is as durable
as a local copy, so the default store does not log; tests use it to exercise the protocol).
``S3Log`` (``storage.s3_log``) is the S3 one.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import msgpack

__all__ = ["decode_segment", "encode_segment", "LocalLog", "segment_name"]

_SEGMENT_RE = re.compile(r"^(\d{10})/(\d{12})$")


def segment_name(epoch: int, last: int) -> str:
    """The name of a segment under ``<room>/log/``: ``<epoch:010d>/<last:012d>``."""
    return f"{int(epoch):010d}/{int(last):012d}"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    """``(epoch, last)`` of a segment name, or None for anything else."""
    match = _SEGMENT_RE.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def encode_segment(epoch: int, commits: list[tuple[int, list]]) -> bytes:
    """The body of the segment holding ``commits`` (``(seq, statements)``, consecutive)."""
    return msgpack.packb({"epoch": int(epoch), "first": int(commits[0][0]), "last": int(commits[-1][0]),
                          "commits": [[int(seq), statements] for seq, statements in commits]}, use_bin_type=True)


def decode_segment(body: bytes) -> tuple[int, int, int, list[tuple[int, list]]]:
    """``(epoch, first, last, commits)`` of a segment body. Raises ``ValueError`` for a body
    that is not one."""
    try:
        data = msgpack.unpackb(body, raw=False)
        commits = [(int(seq), statements) for seq, statements in data["commits"]]
        return int(data["epoch"]), int(data["first"]), int(data["last"]), commits
    except Exception as exc:
        raise ValueError(f"not a log segment: {exc}") from exc


class LocalLog:
    """The statement log in a local directory (``<root>/<room>/log/...``); blocking file work
    runs in a thread. Files land with ``os.replace``; an existing segment is never replaced."""

    root: Path

    def _log_dir(self, room: str) -> Path:
        return self.root / room / "log"

    async def append_log(self, room: str, epoch: int, last: int, body: bytes) -> None:
        """Store one segment (see the module docstring). Writing the same segment again is a
        no-op; a different body under an existing name raises ``FileExistsError``."""
        def run() -> None:
            path = self._log_dir(room) / segment_name(epoch, last)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                if path.read_bytes() != body:
                    raise FileExistsError(f"log segment {path} exists with other contents")
                return
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, path)
        await asyncio.to_thread(run)

    async def list_log(self, room: str, epoch: int, after: int) -> list[int]:
        """The ``last`` of every segment of log ``epoch`` ending after ``after``, ascending."""
        def run() -> list[int]:
            folder = self._log_dir(room) / f"{int(epoch):010d}"
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return []
            return sorted(int(n) for n in names if n.isdigit() and len(n) == 12 and int(n) > after)
        return await asyncio.to_thread(run)

    async def read_log(self, room: str, epoch: int, last: int) -> bytes:
        """The body of one segment. Raises ``FileNotFoundError`` when it does not exist."""
        return await asyncio.to_thread((self._log_dir(room) / segment_name(epoch, last)).read_bytes)

    async def prune_log(self, room: str, through: tuple[int, int]) -> int:
        """Delete the segments at or before position ``through`` (every older epoch's, and
        ``through``'s epoch's up to its seq); returns how many."""
        def run() -> int:
            removed = 0
            base = self._log_dir(room)
            try:
                epochs = os.listdir(base)
            except FileNotFoundError:
                return 0
            for name in epochs:
                if not name.isdigit():
                    continue
                for seg in os.listdir(base / name):
                    parsed = parse_segment_name(f"{name}/{seg}")
                    if parsed is not None and parsed <= tuple(through):
                        (base / name / seg).unlink(missing_ok=True)
                        removed += 1
            return removed
        return await asyncio.to_thread(run)

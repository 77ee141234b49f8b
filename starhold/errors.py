"""Every exception a room's tests may need to catch, importable from one place.

::

    from starhold.errors import ActivationKilled, RoomGone, StaleEpochError, StorageError
    # or: import starhold; starhold.StorageError

=========================  ==============================================================
``ActivationKilled``       ``h.faults.kill(...)`` killed the activation inside a storage
                           operation (a ``BaseException``: a hook's ``except Exception``
                           does not swallow it). The harness has crashed the activation when
                           the test sees it; the next call starts a new one.
``ConnectionClosed``       ``await conn.next_message()`` on a harness connection the room
                           closed, with no unread message left (``.code``, ``.reason``).
``RoomGone``               a handle's activation has hibernated, exited, died or been
                           superseded; resolve the room again (the harness retries).
``RoomUnavailable``        ``await self.rooms.call(...)`` got no answer from the other room
                           in time (its host down, its hook raised, or a call cycle).
``StorageError``           a storage operation or a commit failed (a failed commit made
                           ``conn.send`` / ``h.request`` raise it, after the room was reset
                           to its committed state and its held output dropped).
``StaleEpochError``        a ``StorageError``: a newer activation of the room exists, this
                           one may not commit or publish a snapshot.
``S3StorageError``         a ``StorageError`` from an S3 snapshot store; subclasses
                           ``S3BucketNotFoundError``, ``S3AccessDeniedError``,
                           ``S3ConnectionError``, ``SnapshotConflictError``.
``ForbiddenSqlError``      a ``ValueError``: ``storage.sql()`` was given a statement a room
                           may not run (reserved tables, ``ATTACH``, PRAGMAs...).
``ProtocolError``          a ``ValueError``: a wire frame that does not follow
                           docs/protocol.md.
=========================  ==============================================================

The classes are the ones the runtime raises (re-exported, not copies): ``except
starhold.errors.StorageError`` catches what ``starhold.storage.base`` raises. The S3 errors
and ``ProtocolError`` are imported on first use (the S3 module loads botocore).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ActivationKilled",
    "ConnectionClosed",
    "ForbiddenSqlError",
    "ProtocolError",
    "RoomGone",
    "RoomUnavailable",
    "S3AccessDeniedError",
    "S3BucketNotFoundError",
    "S3ConnectionError",
    "S3StorageError",
    "SnapshotConflictError",
    "StaleEpochError",
    "StorageError",
]


class ActivationKilled(BaseException):
    """Raised inside a hook by ``faults.kill``: the activation dies there, as in a crash."""


class ConnectionClosed(Exception):
    """The room closed this harness connection (``code``: int, ``reason``: str) and no
    message sent before the close is left to read."""

    def __init__(self, conn_id: str, code: int, reason: str):
        super().__init__(f"connection {conn_id} was closed by the room ({code} {reason!r})")
        self.conn_id = conn_id
        self.code = code
        self.reason = reason


class RoomUnavailable(Exception):
    """``self.rooms.call(kind, id, ...)`` got no answer in time (``starhold.calls``)."""


_ELSEWHERE = {
    "RoomGone": "starhold._runtime.handle",
    "StorageError": "starhold.storage.base",
    "StaleEpochError": "starhold.storage.base",
    "ForbiddenSqlError": "starhold.storage.base",
    "S3StorageError": "starhold.storage.s3_snapshots",
    "S3BucketNotFoundError": "starhold.storage.s3_snapshots",
    "S3AccessDeniedError": "starhold.storage.s3_snapshots",
    "S3ConnectionError": "starhold.storage.s3_snapshots",
    "SnapshotConflictError": "starhold.storage.s3_snapshots",
    "ProtocolError": "starhold.protocol",
}


def __getattr__(name: str) -> Any:
    """The re-exported classes, imported from their modules on first access."""
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

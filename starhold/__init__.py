"""Starhold: a Durable Object style room server for real-time multiplayer games, on Ray.

The exceptions of ``starhold.errors`` are also attributes of this package
(``starhold.StorageError``...), loaded on first access.
"""

from __future__ import annotations

from typing import Any

_ERRORS = frozenset({
    "ActivationKilled", "ConnectionClosed", "ProtocolError", "RoomGone", "S3AccessDeniedError",
    "S3BucketNotFoundError", "S3ConnectionError", "S3StorageError", "SnapshotConflictError",
    "StaleEpochError", "StorageError",
})


def __getattr__(name: str) -> Any:
    """``starhold.<Error>``: the classes of ``starhold.errors``, imported on first access (so
    ``import starhold.rooms`` does not load them)."""
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

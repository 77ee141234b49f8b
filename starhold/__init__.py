"""Starhold: a Durable Object style room server for real-time multiplayer games, on Ray.

The exceptions of ``starhold.errors`` are also attributes of this package
(``starhold.StorageError``...), loaded on first access.
"""

from __future__ import annotations

from typing import Any

from . import errors as _errors  # light: it imports the classes' modules on first access


def __getattr__(name: str) -> Any:
    """``starhold.<Error>``: the classes of ``starhold.errors`` (``errors.__all__``), imported
    on first access (so ``import starhold.rooms`` does not load them)."""
    if name in _errors.__all__:
        return getattr(_errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

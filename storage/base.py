"""The storage interface a room sees as ``self.storage`` (DESIGN §3, §5).

Durable Object semantics: each room has its own transactional key-value store and SQL
database. Writes made during one hook are committed together when the hook returns (the
runtime calls ``commit()``), and messages the hook sent are released only after that commit
(the output gate).
"""

from __future__ import annotations

import abc
from typing import Any, Iterable

__all__ = ["ForbiddenSqlError", "MAX_KEY_BYTES", "MAX_VALUE_BYTES", "RoomStorage",
           "StaleEpochError", "StorageError"]

MAX_KEY_BYTES = 2048
"""Largest key, UTF-8 bytes (as Durable Objects)."""
MAX_VALUE_BYTES = 128 * 1024
"""Largest value, msgpack bytes (as Durable Objects' KV API)."""


class StorageError(Exception):
    """A storage operation failed (closed store, commit failure, fenced epoch...)."""


class StaleEpochError(StorageError):
    """A write or snapshot from an activation whose epoch has been superseded (a zombie or a
    duplicate activation): refused, nothing written."""


class ForbiddenSqlError(ValueError):
    """A statement given to ``RoomStorage.sql`` does something a room may not do: touch a
    ``_starhold*`` table, attach or detach a database (``ATTACH``, ``DETACH``, ``VACUUM``),
    load an extension, control the transaction (``BEGIN``, ``COMMIT``, ``SAVEPOINT``...), or
    run a PRAGMA outside the allowed ones. Raised before any of the statement runs; the hook's
    earlier writes are kept. A ``ValueError`` (the query is a bad argument), not a
    ``StorageError``: the room's code is at fault, not the storage."""


class RoomStorage(abc.ABC):
    """Key-value + SQL + alarm storage of one room. Keys are str; values msgpack-serialisable.

    Raises ``ValueError`` for keys over ``MAX_KEY_BYTES``, values over ``MAX_VALUE_BYTES``
    (serialised) or holding an integer outside ``[-2**63, 2**64)``, and ``TypeError`` for
    values of a type msgpack cannot encode (at the call, before anything is written).
    """

    @abc.abstractmethod
    async def get(self, key: str | Iterable[str]) -> Any:
        """Value of ``key`` (None if absent), or a dict of the present keys for a list of keys."""

    @abc.abstractmethod
    async def put(self, key: str | dict, value: Any = None) -> None:
        """Store ``value`` under ``key``, or every item of a dict."""

    @abc.abstractmethod
    async def delete(self, key: str | Iterable[str]) -> bool | int:
        """Delete one key (returns whether it existed) or many (returns how many existed)."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> dict:
        """Keys in order (by code point), ``start`` inclusive, ``end`` exclusive, only those
        starting with ``prefix`` (every one of them), at most ``limit`` -> values."""

    @abc.abstractmethod
    async def sql(self, query: str, *params: Any) -> list[tuple]:
        """Run one SQL statement on the room's database; returns the rows."""

    @abc.abstractmethod
    async def set_alarm(self, at: float) -> None:
        """Set the room's one alarm to fire at ``at`` (seconds on the room's clock)."""

    @abc.abstractmethod
    async def get_alarm(self) -> float | None:
        """The alarm time in seconds, or None."""

    @abc.abstractmethod
    async def delete_alarm(self) -> None:
        """Remove the alarm."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make every write since the last commit durable (called by the runtime)."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Discard every write since the last commit (called by the runtime)."""

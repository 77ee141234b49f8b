"""``RoomStorage`` on the room's own SQLite file, through aiosqlite (DESIGN §5).

The database runs in WAL mode with ``synchronous=NORMAL``. Writes open a transaction that the
runtime commits when the hook returns, so all writes of one hook commit atomically.
Tables: ``kv`` (key TEXT PRIMARY KEY, value BLOB msgpack), ``meta`` (alarm, epoch), plus any
table the room creates through ``sql()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import aiosqlite
import msgpack

from .base import MAX_KEY_BYTES, MAX_VALUE_BYTES, RoomStorage, StorageError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID",
)


def _check_key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, not {type(key).__name__}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key longer than {MAX_KEY_BYTES} bytes")
    return key


def _pack(value: Any) -> bytes:
    data = msgpack.packb(value, use_bin_type=True)
    if len(data) > MAX_VALUE_BYTES:
        raise ValueError(f"value is {len(data)} bytes serialised; the limit is {MAX_VALUE_BYTES}")
    return data


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class SqliteRoomStorage(RoomStorage):
    """SQLite-backed room storage at ``path`` (created if missing). Use ``await open()`` first."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._in_txn = False
        self.commits = 0
        """Number of commits that wrote something (for metrics and benchmarks)."""

    async def open(self) -> "SqliteRoomStorage":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        for stmt in _SCHEMA:
            await self._db.execute(stmt)
        return self

    async def close(self) -> None:
        if self._db is not None:
            if self._in_txn:
                await self.rollback()
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._db.close()
            self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("storage is closed")
        return self._db

    async def _write(self, query: str, params: Iterable = ()) -> aiosqlite.Cursor:
        db = self._conn()
        if not self._in_txn:
            await db.execute("BEGIN IMMEDIATE")
            self._in_txn = True
        return await db.execute(query, tuple(params))

    # ---- key-value -------------------------------------------------------------------------
    async def get(self, key):
        db = self._conn()
        if isinstance(key, str):
            async with db.execute("SELECT value FROM kv WHERE key = ?", (_check_key(key),)) as cur:
                row = await cur.fetchone()
            return None if row is None else _unpack(row[0])
        keys = [_check_key(k) for k in key]
        out = {}
        for k in keys:
            async with db.execute("SELECT value FROM kv WHERE key = ?", (k,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                out[k] = _unpack(row[0])
        return out

    async def put(self, key, value=None):
        items = key.items() if isinstance(key, dict) else [(key, value)]
        rows = [(_check_key(k), _pack(v)) for k, v in items]
        for row in rows:
            await self._write("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", row)

    async def delete(self, key):
        if isinstance(key, str):
            cur = await self._write("DELETE FROM kv WHERE key = ?", (_check_key(key),))
            return cur.rowcount > 0
        count = 0
        for k in key:
            cur = await self._write("DELETE FROM kv WHERE key = ?", (_check_key(k),))
            count += cur.rowcount
        return count

    async def delete_all(self) -> None:
        """Delete every key and the alarm."""
        await self._write("DELETE FROM kv")
        await self._write("DELETE FROM meta WHERE key = 'alarm'")

    async def list(self, prefix=None, start=None, end=None, limit=None, reverse=False):
        clauses, params = [], []
        if prefix:
            # Keys in [prefix, prefix + U+10FFFF): every key that starts with prefix.
            clauses.append("key >= ? AND key < ?")
            params += [prefix, prefix + "\U0010ffff"]
        if start is not None:
            clauses.append("key >= ?")
            params.append(start)
        if end is not None:
            clauses.append("key < ?")
            params.append(end)
        query = "SELECT key, value FROM kv"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY key " + ("DESC" if reverse else "ASC")
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        async with self._conn().execute(query, params) as cur:
            return {k: _unpack(v) async for k, v in cur}

    async def sql(self, query: str, *params):
        head = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        if head in ("SELECT", "PRAGMA", "EXPLAIN", "WITH") and "INSERT" not in query.upper():
            async with self._conn().execute(query, params) as cur:
                return list(await cur.fetchall())
        cur = await self._write(query, params)
        return list(await cur.fetchall())

    # ---- meta: alarm and epoch --------------------------------------------------------------
    async def _meta_get(self, key: str):
        async with self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else _unpack(row[0])

    async def _meta_put(self, key: str, value) -> None:
        await self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _pack(value)))

    async def set_alarm(self, at: float) -> None:
        await self._meta_put("alarm", float(at))

    async def get_alarm(self) -> float | None:
        return await self._meta_get("alarm")

    async def delete_alarm(self) -> None:
        await self._write("DELETE FROM meta WHERE key = 'alarm'")

    async def next_epoch(self) -> int:
        """Increment and return the activation epoch (committed by the caller)."""
        epoch = int(await self._meta_get("epoch") or 0) + 1
        await self._meta_put("epoch", epoch)
        return epoch

    # ---- transactions ----------------------------------------------------------------------
    async def commit(self) -> None:
        if self._in_txn:
            try:
                await self._conn().execute("COMMIT")
            except Exception as exc:
                raise StorageError(f"commit failed: {exc}") from exc
            self._in_txn = False
            self.commits += 1

    async def rollback(self) -> None:
        if self._in_txn:
            self._in_txn = False
            await self._conn().execute("ROLLBACK")

    async def backup_to(self, dest: str | os.PathLike) -> None:
        """Write a consistent copy of the committed database to ``dest`` (``VACUUM INTO``)."""
        dest = Path(dest)
        dest.unlink(missing_ok=True)
        await self._conn().execute("VACUUM INTO ?", (str(dest),))

"""``RoomStorage`` on the room's own SQLite file, through aiosqlite (DESIGN §5).

The database runs in WAL mode with ``synchronous=NORMAL``. Writes join a transaction that the
runtime commits when the hook returns, so all writes of one hook commit atomically (and with
no intervening await, a fortiori).

**Write buffer.** Like a Durable Object's storage, writes are buffered in memory and reach the
database together: ``put``, ``meta_put``, ``set_alarm``, ``delete_alarm`` and the connection
table only queue their statements, and ``commit()`` runs ``BEGIN IMMEDIATE``, the queued
statements, the fencing check and ``COMMIT`` in one call on the database thread. Anything that
must see the database (a read, ``delete`` which reports what existed, ``sql``, a savepoint)
first applies the queue inside the open transaction, so reads always see the hook's own
writes. Why: every aiosqlite call is a round trip to its thread (two thread switches); a
ticking room commits its alarm ten times a second, which took seven round trips per tick and
~0.5 ms of CPU, and takes one now.

**Inline commits.** When nothing is queued or running on the database thread, ``commit()``
runs on the event loop's thread instead: no round trip at all. Its ``BEGIN IMMEDIATE`` does not
wait for a write lock held by another connection (a duplicate activation on the same file):
then the commit goes to the database thread as before. After every ``CHECKPOINT_EVERY``-th
commit a ``PASSIVE`` WAL checkpoint is queued there, not awaited: the commit (a ship room's
tick, before its frame) returns first, and the commits queued behind the checkpoint run on that
thread after it; when it copied the whole WAL, the same job restarts the WAL (``restart_wal``),
so that the WAL header's fsync, which SQLite does at the first commit into a restarted WAL, is
not paid by the next inline commit on the loop's thread. Why: a tick's commit of a 100-player
session (a ~10 KB journal entry) costs SQLite ~0.1-0.3 ms, and the round trip (two thread
switches, the aiosqlite future, the loop's wake-up) about as much again, more on a busy host
with a database thread per room. ``benchmarks/room_tick.py --ticks 600 --batches 3
--channel``, 7 alternating pairs: lower in 6 (-1 to -11 %, median -4 %); in
``benchmarks/realtime.py`` at 1,000 players the room hosts' CPU went from 48 to 43 % of a
core and a host's context switches from ~1,800 to ~1,150 a second (one run each).
``inline_commits = False`` turns it off.

Tables: ``_starhold_kv`` (key TEXT PRIMARY KEY, value BLOB msgpack), ``_starhold_meta`` (alarm,
epoch, params), ``_starhold_connections`` (sockets held through hibernation, with their
attachments), plus any table the room creates through ``sql()`` (names starting with
``_starhold`` are reserved: the room's statements run under the authorizer of ``sql_guard``).

**Statement log (replication).** With ``start_log(epoch)`` the store records every statement
that changes the database inside a transaction (the buffered writes, ``delete``, the room's
writing ``sql()``, savepoints and their rollbacks), in order. A commit that recorded any gets
the next log position ``(epoch, seq)``, written in the same transaction under the meta key
``log_pos``, and its statements are kept in ``unshipped`` as ``(seq, statements)`` for the
runtime to replicate (``starhold._runtime.replication``); ``apply_log`` replays them on a copy.
Writes of node-local bookkeeping (``LOCAL_META``: the epoch, the snapshot version, the log
position) are never recorded. Replay reproduces the database exactly when the statements are
deterministic: the room's own SQL must not use ``random()``, ``randomblob()`` or the clock
(``'now'``); the KV and runtime statements always are.

**Fencing**: once ``fence(epoch)`` is called, every commit first checks, inside the write
transaction, that the stored epoch is still ``epoch``; an activation whose epoch was superseded
by a newer one (a zombie or a duplicate) gets ``StaleEpochError`` and its writes are rolled
back. SQLite serialises write transactions, so the check and the commit are atomic.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Iterable

import aiosqlite

import contextlib
import logging

from . import sql_guard
from .runtime_records import LOCAL_META, RuntimeRecords
from .values import check_key, pack, prefix_successor, unpack
from .base import ForbiddenSqlError, RoomStorage, StaleEpochError, StorageError

__all__ = ["daemon_connection", "SqliteRoomStorage"]

log = logging.getLogger(__name__)
_UNKNOWN = object()
"""The cached alarm is not known (read it from the database)."""
_LOCKED = object()
"""An inline commit found the write lock taken (nothing ran): commit on the database thread."""
BUSY_TIMEOUT_MS = 5000
"""How long a statement on the database thread waits for another connection's write lock
(Python's ``sqlite3.connect`` default, 5 s)."""
CHECKPOINT_EVERY = 100
"""After every this many commits a ``PASSIVE`` WAL checkpoint is queued on the database thread
(the commit does not wait for it), so that inline commits seldom pay a checkpoint's writes and
fsyncs (SQLite's automatic checkpoint, at 1,000 pages of WAL, stays as a backstop for rooms that
write more than that in this many commits)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS _starhold_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _starhold_meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _starhold_connections (conn_id TEXT PRIMARY KEY, gateway_id TEXT NOT NULL, "
    "attachment BLOB, tags BLOB) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _starhold_outbox (seq INTEGER PRIMARY KEY, item BLOB NOT NULL)",
)


def restart_wal(conn: sqlite3.Connection) -> None:
    """After a checkpoint that copied the whole WAL: run a write transaction that changes
    nothing (``PRAGMA user_version`` set to its own value), so that SQLite restarts the WAL
    from its start here, on the calling (database) thread. The first commit into a restarted
    WAL writes a new WAL header and, with ``synchronous=NORMAL``, fsyncs it (SQLite's
    ``sqlite3WalFrames``); without this that fsync (~10 ms on this VM) fell on the next inline
    commit, on the event loop's thread, every ``CHECKPOINT_EVERY`` commits. Does nothing when
    a transaction is open on ``conn``; raises ``sqlite3.Error`` like any statement (e.g. when
    another connection holds the write lock beyond the busy timeout)."""
    if conn.in_transaction:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _checkpoint_done(task: "asyncio.Future") -> None:
    """A queued checkpoint ended: consume its exception (the store was closed before it ran)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("checkpoint not run (%s)", task.exception())


def _authorized(conn, query: str, params: tuple, auth) -> list[tuple]:
    """Run ``query`` with ``auth`` as the connection's authorizer; its rows."""
    conn.set_authorizer(auth)
    try:
        cur = conn.execute(query, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()
    finally:
        conn.set_authorizer(None)


def daemon_connection(path, **kwargs) -> aiosqlite.Connection:
    """``aiosqlite.connect(path, **kwargs)`` whose worker thread is a daemon: a connection left
    open must not keep the process from exiting (aiosqlite >= 0.20 keeps the thread in
    ``_thread``; older versions are the thread)."""
    connection = aiosqlite.connect(path, **kwargs)
    getattr(connection, "_thread", connection).daemon = True
    return connection


class SqliteRoomStorage(RuntimeRecords, RoomStorage):
    """SQLite-backed room storage at ``path`` (created if missing). Use ``await open()`` first."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._in_txn = False  # BEGIN IMMEDIATE ran and the transaction is open in SQLite
        self._ops: list[tuple[str, tuple, bool]] = []  # queued writes (query, params, local), applied in order (write buffer)
        self._savepoints = 0
        self.fenced_epoch: int | None = None
        self._alarm: float | None | object = _UNKNOWN
        self.commits = 0
        """Number of commits that wrote something (for metrics and benchmarks)."""
        self.log_epoch: int | None = None
        """The epoch whose log this store records (None: no statement log)."""
        self.log_seq = 0
        """The log position of the last recorded commit (``log_epoch``'s sequence)."""
        self._recorded: list[list] = []  # statements of the open transaction: [query, params, many]
        self.unshipped: list[tuple[int, list]] = []
        """Recorded commits not yet replicated: ``(seq, statements)``, oldest first (the runtime
        takes them)."""
        self.inline_commits = True
        """Commit on the event loop's thread when the database thread is idle (module docstring)."""
        self._queued = 0  # calls handed to the database thread (counted on the loop's thread)
        self._done = 0  # calls it has finished (counted on the database thread)
        self._since_checkpoint = 0  # commits since the last checkpoint

    async def open(self) -> "SqliteRoomStorage":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await daemon_connection(self.path, isolation_level=None, check_same_thread=False)
        self._track(self._db)

        def prepare(conn):  # one round trip to the database thread (a room's wake waits for it)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for stmt in _SCHEMA:
                conn.execute(stmt)

        try:
            await self._run(prepare)
        except BaseException:
            db, self._db = self._db, None
            await db.close()
            raise
        return self

    async def close(self, checkpoint: bool = True) -> None:
        """Close the connection, rolling back what is uncommitted. From the moment this is
        called every other operation of this store raises ``StorageError`` ("storage is
        closed"), so a hook still running when its activation is killed (``RoomRuntime.crash``)
        cannot commit half of itself after the rollback. ``checkpoint``: fold the WAL into the
        database file first (best effort: it fails while a statement of such a hook still runs,
        "database table is locked"). An activation that is abandoned passes False: a TRUNCATE
        checkpoint waits for the readers of the activation that replaces it, which wait for it.
        The connection is closed (its locks released) whatever fails."""
        db, self._db = self._db, None
        if db is None:
            return
        self._ops.clear()
        self._recorded = []
        self._alarm = _UNKNOWN
        try:
            if self._in_txn:
                self._in_txn = False
                try:
                    await db.execute("ROLLBACK")
                except sqlite3.Error:  # no transaction left (SQLite rolled back on its own)
                    pass
            if checkpoint:
                try:
                    await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    log.debug("%s: checkpoint at close failed (%s)", self.path, exc)
        finally:
            await db.close()

    def _track(self, db: aiosqlite.Connection) -> None:
        """Count the calls handed to ``db``'s thread (every aiosqlite call, its cursors' too,
        goes through ``Connection._execute``) and those it finished: the database thread is
        idle when the two are equal. Each count is written by one thread only."""
        execute = db._execute

        def tracked(fn, *args, **kwargs):
            def run():
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._done += 1
            self._queued += 1
            return execute(run)

        db._execute = tracked

    def _begin_now(self, conn: sqlite3.Connection) -> bool:
        """On the loop's thread: ``BEGIN IMMEDIATE`` unless a transaction is open, without
        waiting for another connection's write lock. False when it is taken (nothing ran)."""
        if self._in_txn:
            return True
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # SQLITE_BUSY: another connection writes
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._in_txn = True
        return True

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("storage is closed")
        return self._db

    def _queue(self, query: str, params: tuple = (), local: bool = False) -> None:
        """Buffer one write statement (applied at commit, or before anything that reads);
        ``local``: node bookkeeping, never recorded in the statement log."""
        self._conn()
        self._ops.append((query, params, local))

    def _apply(self, conn, ops: list[tuple[str, tuple, bool]]) -> None:
        """On the database thread: open the transaction if needed and run ``ops``."""
        if not self._in_txn:
            conn.execute("BEGIN IMMEDIATE")
            self._in_txn = True
        record = self.log_epoch is not None
        for query, params, local in ops:
            conn.execute(query, params)
            if record and not local:
                self._recorded.append([query, params, False])

    def _record(self, query: str, params, many: bool = False) -> None:
        """Note a statement that ran inside the transaction (for the statement log)."""
        if self.log_epoch is not None:
            self._recorded.append([query, params, many])

    @property
    def has_writes(self) -> bool:
        """Whether writes are buffered or recorded that the next commit will make durable."""
        if self.log_epoch is None:
            return bool(self._ops) or self._in_txn
        return bool(self._recorded) or any(not local for _, _, local in self._ops)

    async def _run(self, fn, *args):
        """Run ``fn(sqlite3_connection, *args)`` on the connection's thread: one round trip
        (aiosqlite's ``_execute``, through which all of its own methods go)."""
        db = self._conn()
        return await db._execute(fn, db._conn, *args)

    async def _flush_ops(self) -> None:
        """Apply the buffered writes inside the open transaction (reads then see them)."""
        if self._ops:
            ops, self._ops = self._ops, []
            await self._run(self._apply, ops)

    async def _write(self, query: str, params: Iterable = (), *, many: bool = False,
                     fetch: bool = False) -> tuple[int, list]:
        """Run a write statement now, after the buffered ones, in the transaction; returns
        ``(rowcount, rows)`` (rows only with ``fetch``). ``many``: ``params`` is a list of rows."""
        ops, self._ops = self._ops, []
        params = list(params) if many else tuple(params)

        def run(conn):
            self._apply(conn, ops)
            cur = conn.executemany(query, params) if many else conn.execute(query, params)
            self._record(query, params, many)
            try:
                return cur.rowcount, (cur.fetchall() if fetch else [])
            finally:
                cur.close()

        return await self._run(run)

    # ---- key-value -------------------------------------------------------------------------
    async def get(self, key):
        await self._flush_ops()
        db = self._conn()
        if isinstance(key, str):
            async with db.execute("SELECT value FROM _starhold_kv WHERE key = ?", (check_key(key),)) as cur:
                row = await cur.fetchone()
            return None if row is None else unpack(row[0])
        keys = [check_key(k) for k in key]
        out = {}
        for k in keys:
            async with db.execute("SELECT value FROM _starhold_kv WHERE key = ?", (k,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                out[k] = unpack(row[0])
        return out

    async def put(self, key, value=None):
        items = key.items() if isinstance(key, dict) else [(key, value)]
        rows = [(check_key(k), pack(v)) for k, v in items]
        for row in rows:
            self._queue("INSERT OR REPLACE INTO _starhold_kv (key, value) VALUES (?, ?)", row)

    async def delete(self, key):
        if isinstance(key, str):
            count, _ = await self._write("DELETE FROM _starhold_kv WHERE key = ?", (check_key(key),))
            return count > 0
        keys = [(check_key(k),) for k in key]
        if not keys:
            return 0
        count, _ = await self._write("DELETE FROM _starhold_kv WHERE key = ?", keys, many=True)
        return count

    async def delete_all(self) -> None:
        """Delete every key and the alarm."""
        self._queue("DELETE FROM _starhold_kv")
        self._queue("DELETE FROM _starhold_meta WHERE key = 'alarm'")
        self._alarm = None

    async def list(self, prefix=None, start=None, end=None, limit=None, reverse=False):
        clauses, params = [], []
        if prefix:
            # Keys in [prefix, successor): exactly the keys that start with prefix.
            clauses.append("key >= ?")
            params.append(prefix)
            bound = prefix_successor(prefix)
            if bound is not None:
                clauses.append("key < ?")
                params.append(bound)
        if start is not None:
            clauses.append("key >= ?")
            params.append(start)
        if end is not None:
            clauses.append("key < ?")
            params.append(end)
        query = "SELECT key, value FROM _starhold_kv"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY key " + ("DESC" if reverse else "ASC")
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        await self._flush_ops()
        async with self._conn().execute(query, params) as cur:
            return {k: unpack(v) async for k, v in cur}

    async def sql(self, query: str, *params):
        """Run one statement of the room's own SQL; returns its rows (a list of tuples).

        SQLite's authorizer decides, before anything runs (see ``sql_guard``): a statement
        that only reads runs at once (outside any transaction when none is open); one that
        writes (any INSERT/UPDATE/DELETE/DDL, whatever its first keyword, e.g. ``WITH ...
        DELETE``) runs inside the hook's write transaction, after the buffered writes, so it
        rolls back with the hook and is checked by the epoch fence at commit. Raises
        ``ForbiddenSqlError`` for what a room may not do (nothing of the statement ran, or,
        for an ``ALTER TABLE ... RENAME`` to a reserved name, it was undone), and
        ``sqlite3.Error`` for SQL errors.
        """
        ops, self._ops = self._ops, []
        return await self._run(self._room_sql, ops, query, tuple(params))

    def _room_sql(self, conn, ops, query: str, params: tuple) -> list[tuple]:
        """On the database thread: compile ``query`` under the room authorizer in the lowest
        mode that lets it run (READ, WRITE, CHECKED; see ``sql_guard``) and run it."""
        mode = sql_guard.WRITE if (ops or self._in_txn) else sql_guard.READ
        while True:
            if mode >= sql_guard.WRITE:
                self._apply(conn, ops)
                ops = []
            auth = sql_guard.RoomSqlAuthorizer(mode)
            try:
                if mode == sql_guard.CHECKED:
                    rows = self._room_sql_checked(conn, query, params, auth)
                else:
                    rows = _authorized(conn, query, params, auth)
                if mode >= sql_guard.WRITE:
                    self._record(query, params)
                return rows
            except sqlite3.DatabaseError as exc:
                if auth.refused is not None:
                    raise ForbiddenSqlError(f"{auth.refused}: {query!r}") from exc
                if auth.needs > mode:
                    mode = auth.needs
                    continue
                raise

    @staticmethod
    def _room_sql_checked(conn, query: str, params: tuple, auth) -> list[tuple]:
        """Run ``query`` (an ALTER TABLE) in a savepoint; undo it and raise
        ``ForbiddenSqlError`` when it gave a schema object a reserved name."""
        before = sql_guard.reserved_names(conn)
        conn.execute("SAVEPOINT starhold_sql_check")
        try:
            rows = _authorized(conn, query, params, auth)
            created = sql_guard.reserved_names(conn) - before
            if created:
                conn.execute("ROLLBACK TO starhold_sql_check")
                raise ForbiddenSqlError(f"tables named {sql_guard.RESERVED_PREFIX}* are reserved for the "
                                        f"runtime (the statement was undone): {query!r}")
            return rows
        finally:
            if conn.in_transaction:
                conn.execute("RELEASE starhold_sql_check")

    # ---- the alarm -----------------------------------------------------------------------
    async def set_alarm(self, at: float) -> None:
        if self._alarm is not _UNKNOWN and self._alarm == float(at):
            return
        await self.meta_put("alarm", float(at))
        self._alarm = float(at)

    async def get_alarm(self) -> float | None:
        # Cached: the runtime asks after every event. A rollback forgets the cache.
        if self._alarm is _UNKNOWN:
            self._alarm = await self.meta_get("alarm")
        return self._alarm

    async def delete_alarm(self) -> None:
        if self._alarm is None:
            return
        self._queue("DELETE FROM _starhold_meta WHERE key = 'alarm'")
        self._alarm = None

    # ---- transactions ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def transaction(self):
        """``async with storage.transaction():`` -- the writes inside commit together with the
        hook's, or, when the block raises, are rolled back (a SAVEPOINT) and the error
        propagates; writes made before the block are kept."""
        self._savepoints += 1
        name = f"starhold_sp{self._savepoints}"
        await self._write(f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            self._alarm = _UNKNOWN
            self._ops.clear()  # queued after the savepoint (it applied everything before it)
            await self._conn().execute(f"ROLLBACK TO {name}")
            await self._conn().execute(f"RELEASE {name}")
            self._record(f"ROLLBACK TO {name}", ())
            self._record(f"RELEASE {name}", ())
            raise
        else:
            await self._write(f"RELEASE {name}")

    async def sync(self) -> None:
        """Make every write so far durable now, without waiting for the hook to return."""
        await self.commit()

    # ---- transactions ----------------------------------------------------------------------
    async def commit(self) -> None:
        """Apply the buffered writes and commit, in one round trip to the database thread.
        Raises ``StaleEpochError`` (everything rolled back) when the fenced epoch was
        superseded, ``StorageError`` when SQLite fails (rolled back too)."""
        if not self._in_txn and not self._ops:
            return
        ops, self._ops = self._ops, []
        fenced = self.fenced_epoch
        seq = None
        checkpoint = self._since_checkpoint + 1 >= CHECKPOINT_EVERY

        def run(conn):
            nonlocal seq
            try:
                self._apply(conn, ops)
                if self._recorded:
                    seq = self.log_seq + 1
                    conn.execute("INSERT OR REPLACE INTO _starhold_meta (key, value) VALUES ('log_pos', ?)",
                                 (pack([self.log_epoch, seq]),))
                if fenced is not None:
                    row = conn.execute("SELECT value FROM _starhold_meta WHERE key = 'epoch'").fetchone()
                    stored = unpack(row[0]) if row else None
                    if stored != fenced:
                        conn.execute("ROLLBACK")
                        return stored
                conn.execute("COMMIT")
                return fenced
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._in_txn = conn.in_transaction

        try:
            stored = _LOCKED
            if self.inline_commits and self._queued == self._done:
                conn = self._conn()._conn  # aiosqlite's sqlite3 connection (ValueError: closed)
                if self._begin_now(conn):
                    stored = run(conn)
            if stored is _LOCKED:
                stored = await self._run(run)
        except StorageError:  # the store is closed
            self._recorded = []
            raise
        except Exception as exc:
            self._alarm = _UNKNOWN
            self._recorded = []
            raise StorageError(f"commit failed: {exc}") from exc
        recorded, self._recorded = self._recorded, []
        if stored != fenced:
            self._alarm = _UNKNOWN
            raise StaleEpochError(f"activation epoch {fenced} was superseded by epoch {stored}; writes dropped")
        self.commits += 1
        if seq is not None:
            self.log_seq = seq
            self.unshipped.append((seq, recorded))
        self._since_checkpoint = 0 if checkpoint else self._since_checkpoint + 1
        if checkpoint:
            self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Queue a ``PASSIVE`` WAL checkpoint on the database thread without waiting for it (best
        effort: a failure is logged at debug level). Until it has run, commits go to that
        thread too (behind it), since it is not idle. When the checkpoint copied the whole WAL,
        the same job also restarts the WAL (``restart_wal``)."""
        def run(conn):
            try:
                busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if not busy and frames > 0 and copied == frames:
                    restart_wal(conn)
            except sqlite3.Error as exc:
                log.debug("%s: checkpoint failed (%s)", self.path, exc)

        asyncio.ensure_future(self._run(run)).add_done_callback(_checkpoint_done)

    async def rollback(self) -> None:
        """Drop the buffered writes and roll back the open transaction."""
        self._alarm = _UNKNOWN
        self._ops.clear()
        self._recorded = []
        if self._in_txn:
            self._in_txn = False
            try:
                await self._conn().execute("ROLLBACK")
            except Exception:  # no transaction left (SQLite rolled back on its own)
                pass

    # ---- the statement log ---------------------------------------------------------------------
    async def start_log(self, epoch: int) -> None:
        """Record the statements of every commit from now on as log ``epoch`` (positions
        ``(epoch, 1)``, ``(epoch, 2)``...). Call with no transaction open."""
        if self._in_txn or self._ops:
            raise StorageError("start_log with a transaction open")
        self.log_epoch, self.log_seq, self.unshipped = int(epoch), 0, []

    async def log_position(self) -> tuple[int, int]:
        """The log position ``(epoch, seq)`` of the last recorded commit in this file, or
        ``(0, 0)`` when none was ever recorded."""
        pos = await self.meta_get("log_pos")
        return (int(pos[0]), int(pos[1])) if pos else (0, 0)

    async def apply_log(self, epoch: int, commits: list[tuple[int, list]]) -> None:
        """Replay recorded commits of log ``epoch`` (``(seq, statements)``, in order) in one
        transaction, leaving ``log_pos`` at the last one. Raises ``StorageError`` when a
        statement fails (nothing applied). Not recorded itself."""
        if not commits:
            return
        if self._in_txn or self._ops:
            raise StorageError("apply_log with a transaction open")
        last = commits[-1][0]

        def run(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for _, statements in commits:
                    for query, params, many in statements:
                        if many:
                            conn.executemany(query, [tuple(p) for p in params])
                        else:
                            conn.execute(query, tuple(params))
                conn.execute("INSERT OR REPLACE INTO _starhold_meta (key, value) VALUES ('log_pos', ?)",
                             (pack([int(epoch), int(last)]),))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            await self._run(run)
        except Exception as exc:
            raise StorageError(f"replaying log {epoch} up to {last} failed: {exc}") from exc
        self._alarm = _UNKNOWN

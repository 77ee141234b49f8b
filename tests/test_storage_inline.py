"""SqliteRoomStorage's inline commits (``storage/sqlite_store.py``): a commit runs on the event
loop's thread when the database thread is idle, never waits there for another connection's
write lock, and every ``CHECKPOINT_EVERY``-th commit is followed by a WAL checkpoint on the
database thread, which the commit does not wait for."""

import asyncio
import sqlite3
import threading

from starhold.storage import sqlite_store
from starhold.storage.sqlite_store import SqliteRoomStorage


def commit_threads(store: SqliteRoomStorage) -> list[int]:
    """The threads (idents) that run each ``COMMIT`` statement of ``store`` from now on."""
    threads: list[int] = []
    store._db._conn.set_trace_callback(
        lambda statement: threads.append(threading.get_ident()) if statement == "COMMIT" else None)
    return threads


async def test_a_commit_with_the_database_thread_idle_runs_on_the_loop_s_thread(tmp_path):
    store = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    try:
        commits = commit_threads(store)
        await store.put("a", 1)
        await store.commit()
        assert commits == [threading.get_ident()]
        store.inline_commits = False
        await store.put("b", 2)
        await store.commit()
        assert len(commits) == 2 and commits[1] != threading.get_ident()  # the database thread
        assert await store.get(["a", "b"]) == {"a": 1, "b": 2}
    finally:
        await store.close()


async def test_a_commit_waits_for_another_connection_s_write_lock_on_the_database_thread(tmp_path):
    path = tmp_path / "room.sqlite"
    store = await SqliteRoomStorage(path).open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        commits = commit_threads(store)
        other.execute("BEGIN IMMEDIATE")  # another writer (a duplicate activation) holds the lock
        await store.put("k", "v")
        commit = asyncio.ensure_future(store.commit())
        for _ in range(20):  # the loop runs on while the commit waits for the lock
            await asyncio.sleep(0)
        assert not commit.done() and commits == []
        other.execute("ROLLBACK")
        await asyncio.wait_for(commit, 30)
        assert len(commits) == 1 and commits[0] != threading.get_ident()
        assert await store.get("k") == "v"
    finally:
        other.close()
        await store.close()


async def test_the_wal_is_checkpointed_every_checkpoint_every_commits(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3)
    path = tmp_path / "room.sqlite"
    store = await SqliteRoomStorage(path).open()
    try:
        def in_database_file() -> set[str]:  # the main file only: immutable=1 ignores the WAL
            db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            try:
                return {k for (k,) in db.execute("SELECT key FROM _starhold_kv")}
            except sqlite3.OperationalError:  # not even the schema yet
                return set()
            finally:
                db.close()

        for i in range(2):
            await store.put(f"k{i}", i)
            await store.commit()
        await store.get("k0")
        assert in_database_file() == set()  # still in the WAL only
        await store.put("k2", 2)
        commits = commit_threads(store)
        await store.commit()  # the third: inline too, then a checkpoint queued on the database thread
        assert commits == [threading.get_ident()]
        await asyncio.sleep(0)  # the checkpoint's task queues it on the database thread
        await store._run(lambda conn: None)  # a round trip behind it: when it returns, the checkpoint ran
        assert in_database_file() == {"k0", "k1", "k2"}
        for i in range(3, 6):
            await store.put(f"k{i}", i)
            await store.commit()  # the sixth queues a checkpoint...
        await store.close()  # ...still queued at close, which does not fail it
        store = await SqliteRoomStorage(path).open()
        assert [await store.get(f"k{i}") for i in range(6)] == list(range(6))
    finally:
        await store.close()


def wal_restarts(path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time a writer restarts
    the WAL from its start (https://www.sqlite.org/fileformat.html#wal_file_format)."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def test_a_complete_checkpoint_restarts_the_wal_on_the_database_thread(tmp_path, monkeypatch):
    # The first commit into a restarted WAL writes its header and fsyncs it: that must not be
    # the next inline commit, on the loop's thread, but the checkpoint's job.
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3)
    path = tmp_path / "room.sqlite"
    store = await SqliteRoomStorage(path).open()
    try:
        await store.sql("PRAGMA user_version = 7")
        await store.commit()
        restarts = wal_restarts(path)
        threads: list[tuple[str, int]] = []
        store._db._conn.set_trace_callback(lambda statement: threads.append((statement, threading.get_ident())))
        for i in range(2):  # with the commit above, the third queues the checkpoint
            await store.put(f"k{i}", i)
            await store.commit()
        await asyncio.sleep(0)
        await store._run(lambda conn: None)  # behind the checkpoint's job
        assert wal_restarts(path) == restarts + 1
        restarted = [ident for statement, ident in threads if statement == "PRAGMA user_version = 7"]
        assert len(restarted) == 1 and restarted[0] != threading.get_ident()
        threads.clear()
        await store.put("k2", 2)
        await store.commit()  # inline, into the WAL restarted already
        assert [ident for statement, ident in threads if statement == "COMMIT"] == [threading.get_ident()]
        assert wal_restarts(path) == restarts + 1
        assert await store.sql("PRAGMA user_version") == [(7,)]
        assert await store.get(["k0", "k1", "k2"]) == {"k0": 0, "k1": 1, "k2": 2}
    finally:
        await store.close()


def test_restart_wal_leaves_an_open_transaction_alone(tmp_path):
    db = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (v)")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (1)")
        sqlite_store.restart_wal(db)
        assert db.in_transaction  # neither committed nor rolled back
        db.execute("ROLLBACK")
        assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        db.close()

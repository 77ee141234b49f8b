"""A room's ``sql()`` stays inside its hook's transaction, behind the epoch fence, away from the
runtime's ``_starhold*`` tables and inside its own database file (issue 12, item 2)."""

import sqlite3

import pytest

from starhold.storage.base import ForbiddenSqlError, StaleEpochError
from starhold.storage.sqlite_store import SqliteRoomStorage


@pytest.fixture
async def store(tmp_path):
    s = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    await s.sql("CREATE TABLE t (x INTEGER)")
    await s.sql("INSERT INTO t VALUES (1), (2)")
    await s.put("k", {"v": 1})
    await s.commit()
    yield s
    await s.close()


def committed(path, query="SELECT x FROM t ORDER BY x"):
    """What another connection sees in the file (only committed data)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def schema(path):
    return committed(path, "SELECT type, name FROM sqlite_schema ORDER BY type, name")


# ---- every statement that writes runs in the hook's transaction and behind the fence ------
@pytest.mark.parametrize("query", [
    "WITH d AS (SELECT 1) DELETE FROM t",
    "WITH d AS (SELECT 2 AS y) UPDATE t SET x = 9 WHERE x IN (SELECT y FROM d)",
    "WITH d AS (SELECT 7) INSERT INTO t SELECT * FROM d",
    "  /* comment */ WITH d AS (SELECT 1) DELETE FROM t",
    "CREATE TABLE u (y)",
])
async def test_a_write_is_rolled_back_with_its_hook_whatever_its_first_keyword(store, tmp_path, query):
    await store.sql(query)
    await store.rollback()  # the hook was killed / raised
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,)]
    assert ("table", "u") not in schema(tmp_path / "room.sqlite")
    assert await store.sql("SELECT x FROM t ORDER BY x") == [(1,), (2,)]


async def test_a_write_behind_with_is_seen_by_the_hook_and_commits_with_it(store, tmp_path):
    await store.sql("WITH d AS (SELECT 1 AS y) DELETE FROM t WHERE x IN (SELECT y FROM d)")
    assert await store.sql("SELECT x FROM t") == [(2,)]
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,)]  # not before the hook's commit
    await store.commit()
    assert committed(tmp_path / "room.sqlite") == [(2,)]


async def test_a_fenced_duplicates_with_update_never_reaches_the_newer_activation(store, tmp_path):
    await store.claim_epoch(0)
    await store.commit()
    newer = await SqliteRoomStorage(tmp_path / "room.sqlite").open()
    await newer.claim_epoch(0)
    await newer.commit()
    await store.sql("WITH d AS (SELECT 99 AS y) UPDATE t SET x = (SELECT y FROM d)")
    with pytest.raises(StaleEpochError):
        await store.commit()
    assert await newer.sql("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    await newer.close()


async def test_a_read_only_statement_opens_no_transaction(store):
    commits = store.commits
    assert await store.sql("WITH d AS (SELECT 3) SELECT x FROM t UNION ALL SELECT * FROM d") == [(1,), (2,), (3,)]
    await store.commit()
    assert store.commits == commits


# ---- reserved tables -----------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    "CREATE TABLE _starhold_mine (x)",
    "CREATE TABLE _STARHOLD_Mine (x)",
    "CREATE TEMP TABLE _starhold_tmp (x)",
    "CREATE VIEW _Starhold_view AS SELECT 1",
    "CREATE INDEX _starhold_idx ON t(x)",
    "CREATE TRIGGER _starhold_tr AFTER INSERT ON t BEGIN SELECT 1; END",
    "CREATE VIRTUAL TABLE _starhold_fts USING fts5(body)",
    "ALTER TABLE t RENAME TO _starhold_mine",
    "ALTER TABLE t RENAME TO _STARHOLD_MINE",
    "SELECT key, value FROM _starhold_kv",
    "SELECT count(*) FROM _Starhold_KV",
    "SELECT * FROM main._starhold_meta",
    "SELECT * FROM t WHERE x IN (SELECT length(key) FROM _starhold_kv)",
    "UPDATE _starhold_kv SET value = x'00'",
    "DELETE FROM _starhold_kv",
    "INSERT INTO _starhold_kv VALUES ('big', zeroblob(1048576))",
    "INSERT OR REPLACE INTO _starhold_meta VALUES ('epoch', x'01')",
    "DELETE FROM _starhold_connections",
    "CREATE TRIGGER tr AFTER INSERT ON _starhold_kv BEGIN SELECT 1; END",
    "CREATE TEMP TRIGGER tr AFTER DELETE ON main._starhold_kv BEGIN SELECT 1; END",
    "CREATE INDEX i ON _starhold_kv(value)",
    "DROP TABLE _starhold_meta",
    "ALTER TABLE _starhold_kv ADD COLUMN y",
    "ALTER TABLE _starhold_kv RENAME TO mine",
    "PRAGMA table_info(_starhold_kv)",
    "SELECT * FROM pragma_table_info('_starhold_kv')",
    "ANALYZE _starhold_kv",
])
async def test_reserved_tables_are_refused_before_anything_runs(store, tmp_path, query):
    before = schema(tmp_path / "room.sqlite")
    with pytest.raises(ForbiddenSqlError, match="_starhold"):
        await store.sql(query)
    await store.commit()
    assert schema(tmp_path / "room.sqlite") == before
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,)]
    assert await store.get("k") == {"v": 1}
    assert await store.sql("SELECT name FROM sqlite_temp_schema") == []


async def test_the_runtimes_own_statement_text_is_refused_to_the_room(store):
    # The same text as the runtime's cached statement must still be checked.
    assert await store.get("k") == {"v": 1}
    with pytest.raises(ForbiddenSqlError):
        await store.sql("SELECT value FROM _starhold_kv WHERE key = ?", "k")


async def test_views_and_trigger_bodies_cannot_reach_reserved_tables(store, tmp_path):
    await store.sql("CREATE VIEW v AS SELECT key FROM _starhold_kv")
    with pytest.raises(ForbiddenSqlError):
        await store.sql("SELECT * FROM v")
    await store.sql("CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM _starhold_kv; END")
    with pytest.raises(ForbiddenSqlError):
        await store.sql("INSERT INTO t VALUES (3)")
    await store.commit()
    assert await store.get("k") == {"v": 1}
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,)]


async def test_a_refused_statement_leaves_the_hooks_earlier_writes_alone(store, tmp_path):
    await store.sql("INSERT INTO t VALUES (3)")
    with pytest.raises(ForbiddenSqlError):
        await store.sql("DELETE FROM _starhold_kv")
    await store.commit()
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,), (3,)]


# ---- one room cannot reach another's file -------------------------------------------------
async def test_a_room_cannot_reach_a_sibling_rooms_file(tmp_path):
    a = await SqliteRoomStorage(tmp_path / "rooms" / "a.sqlite").open()
    b = await SqliteRoomStorage(tmp_path / "rooms" / "b.sqlite").open()
    await b.put("gold", 100)
    await b.commit()
    sibling = str(tmp_path / "rooms" / "b.sqlite")
    stolen = str(tmp_path / "rooms" / "stolen.sqlite")
    # VACUUM attaches a database when it runs (SQLite's authorizer sees only that); inside a
    # transaction SQLite refuses it first, with its own error. Either way nothing is written.
    for query, params in [("VACUUM", ()), ("VACUUM INTO ?", (stolen,))]:
        with pytest.raises(ForbiddenSqlError):
            await a.sql(query, *params)
        await a.sql("CREATE TABLE IF NOT EXISTS w (x)")
        with pytest.raises(sqlite3.OperationalError, match="cannot VACUUM from within a transaction"):
            await a.sql(query, *params)
        await a.rollback()
    for query, params in [
        ("PRAGMA database_list", ()),
        ("SELECT file FROM pragma_database_list", ()),
        ("ATTACH ? AS v", (sibling,)),
        ("ATTACH 'file:' || ? || '?mode=ro' AS v", (sibling,)),
        ("DETACH main", ()),
        ("SELECT load_extension('libm')", ()),
        ("SELECT fts3_tokenizer('simple')", ()),
        ("SELECT * FROM dbstat", ()),
    ]:
        with pytest.raises(ForbiddenSqlError):
            await a.sql(query, *params)
    with pytest.raises(sqlite3.OperationalError):  # never attached
        await a.sql("DELETE FROM v._starhold_kv")
    await a.commit()
    assert not (tmp_path / "rooms" / "stolen.sqlite").exists()
    assert await b.get("gold") == 100
    await a.close()
    await b.close()


# ---- pragmas and transaction control --------------------------------------------------------
@pytest.mark.parametrize("query", [
    "PRAGMA journal_mode=DELETE", "PRAGMA journal_mode", "PRAGMA synchronous=OFF", "PRAGMA synchronous",
    "PRAGMA locking_mode=EXCLUSIVE", "PRAGMA writable_schema=ON", "PRAGMA temp_store_directory='/tmp'",
    "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA schema_version=1", "PRAGMA page_size=512",
    "PRAGMA mmap_size=1000000", "PRAGMA query_only=ON", "PRAGMA cache_size=1", "PRAGMA ignore_check_constraints=ON",
    "SELECT * FROM pragma_journal_mode", "PRAGMA main.database_list",
    "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "END", "SAVEPOINT s", "RELEASE s", "ROLLBACK TO s",
])
async def test_pragmas_that_change_durability_or_reveal_paths_and_transaction_control_are_refused(store, tmp_path, query):
    await store.sql("INSERT INTO t VALUES (3)")
    with pytest.raises(ForbiddenSqlError):
        await store.sql(query)
    await store.rollback()
    assert committed(tmp_path / "room.sqlite") == [(1,), (2,)]
    db = store._conn()
    assert await (await db.execute("PRAGMA journal_mode")).fetchall() == [("wal",)]
    assert await (await db.execute("PRAGMA synchronous")).fetchall() == [(1,)]


async def test_harmless_sql_still_works(store, tmp_path):
    await store.sql("CREATE INDEX t_x ON t(x)")
    assert [row[1] for row in await store.sql("PRAGMA table_info(t)")] == ["x"]
    assert [row[1] for row in await store.sql("SELECT * FROM pragma_index_list('t')")] == ["t_x"]
    assert await store.sql("PRAGMA user_version") == [(0,)]
    await store.sql("PRAGMA user_version = 4")
    await store.sql("CREATE TABLE log (x)")
    await store.sql("CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END")
    assert await store.sql("INSERT INTO t VALUES (?) RETURNING x", 5) == [(5,)]
    await store.sql("CREATE VIRTUAL TABLE notes USING fts5(body)")
    await store.sql("INSERT INTO notes VALUES ('hello world')")
    assert await store.sql("SELECT body FROM notes WHERE notes MATCH 'hello'") == [("hello world",)]
    await store.sql("ALTER TABLE log RENAME TO history")
    await store.sql("ALTER TABLE history ADD COLUMN at REAL")
    assert await store.sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT sum(i) FROM n") == [(6,)]
    await store.commit()
    assert committed(tmp_path / "room.sqlite", "SELECT x FROM history") == [(5,)]
    assert committed(tmp_path / "room.sqlite", "PRAGMA user_version") == [(4,)]
    await store.sql("PRAGMA user_version = 5")
    await store.rollback()
    assert await store.sql("PRAGMA user_version") == [(4,)]

"""What a room's own SQL (``RoomStorage.sql``) may do, decided by SQLite itself.

SQLite calls an authorizer (``sqlite3.Connection.set_authorizer``) for every action while it
compiles a statement, before any of it runs; refusing one makes the compile fail. The store
installs a ``RoomSqlAuthorizer`` on the database thread around each room statement (and only
then: the runtime's own statements on the ``_starhold*`` tables run without it). Installing an
authorizer expires every prepared statement, so a statement the runtime left in the
connection's cache is compiled, and checked, again.

Refused (``ForbiddenSqlError``, nothing runs):

* any table, index, trigger or view whose name starts with ``_starhold`` (case-insensitively):
  reading, writing, creating, dropping, altering, indexing or triggering on it; a view or
  trigger body that reaches one is refused when it is used;
* ``ATTACH`` and ``DETACH`` (and so ``VACUUM`` and ``VACUUM INTO``, which attach a database);
* the functions ``load_extension`` and ``fts3_tokenizer`` and the ``dbstat`` /
  ``sqlite_dbpage`` tables;
* transaction control (``BEGIN``, ``COMMIT``, ``ROLLBACK``, ``SAVEPOINT``, ``RELEASE``): the
  runtime owns the transaction (rooms use ``storage.transaction()``);
* every PRAGMA (statement or ``pragma_*`` table function) but the introspection ones in
  ``PRAGMA_ARGUMENT``/``PRAGMA_READ`` and ``user_version`` (read or set).

Modes: a statement first compiles in ``READ`` mode, where any write action is refused and
marks the statement as needing ``WRITE`` (run inside the hook's transaction). ``ALTER TABLE``
needs ``CHECKED``: its new name is not shown to the authorizer, so it runs in a savepoint and is
undone when it created a reserved name.
"""

from __future__ import annotations

import sqlite3

RESERVED_PREFIX = "_starhold"
"""Names of the runtime's tables; compared case-insensitively."""

READ, WRITE, CHECKED = 0, 1, 2
"""Modes, in escalation order: autocommit read / in the hook's transaction / in a savepoint
with a check of the schema's names afterwards."""

PRAGMA_ARGUMENT = frozenset({
    "table_info", "table_xinfo", "table_list", "index_info", "index_xinfo", "index_list",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
})
"""Introspection PRAGMAs allowed with or without an argument (a table or index name, which
must not be reserved, or a count)."""

PRAGMA_READ = frozenset({
    "collation_list", "function_list", "module_list", "pragma_list", "encoding", "page_size",
    "page_count", "freelist_count", "data_version", "schema_version", "application_id",
})
"""PRAGMAs allowed only without a value (reading)."""

PRAGMA_SET = frozenset({"user_version"})
"""PRAGMAs allowed to read and to set (a write: in the hook's transaction)."""

DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
DENIED_TABLES = frozenset({"dbstat", "sqlite_dbpage"})

_A = sqlite3
_WRITES = frozenset({
    _A.SQLITE_INSERT, _A.SQLITE_UPDATE, _A.SQLITE_DELETE, _A.SQLITE_CREATE_INDEX,
    _A.SQLITE_CREATE_TABLE, _A.SQLITE_CREATE_TEMP_INDEX, _A.SQLITE_CREATE_TEMP_TABLE,
    _A.SQLITE_CREATE_TEMP_TRIGGER, _A.SQLITE_CREATE_TEMP_VIEW, _A.SQLITE_CREATE_TRIGGER,
    _A.SQLITE_CREATE_VIEW, _A.SQLITE_DROP_INDEX, _A.SQLITE_DROP_TABLE, _A.SQLITE_DROP_TEMP_INDEX,
    _A.SQLITE_DROP_TEMP_TABLE, _A.SQLITE_DROP_TEMP_TRIGGER, _A.SQLITE_DROP_TEMP_VIEW,
    _A.SQLITE_DROP_TRIGGER, _A.SQLITE_DROP_VIEW, _A.SQLITE_ALTER_TABLE, _A.SQLITE_REINDEX,
    _A.SQLITE_ANALYZE, _A.SQLITE_CREATE_VTABLE, _A.SQLITE_DROP_VTABLE,
})
# Actions whose first argument is a table, index, trigger or view name.
_NAMED_FIRST = _WRITES - {_A.SQLITE_ALTER_TABLE} | {_A.SQLITE_READ}
# Actions whose second argument is the table an index or trigger is on.
_NAMED_SECOND = frozenset({
    _A.SQLITE_CREATE_INDEX, _A.SQLITE_CREATE_TEMP_INDEX, _A.SQLITE_DROP_INDEX, _A.SQLITE_DROP_TEMP_INDEX,
    _A.SQLITE_CREATE_TRIGGER, _A.SQLITE_CREATE_TEMP_TRIGGER, _A.SQLITE_DROP_TRIGGER,
    _A.SQLITE_DROP_TEMP_TRIGGER, _A.SQLITE_ALTER_TABLE,
})


def is_reserved(name: str | None) -> bool:
    """Whether ``name`` starts with ``_starhold``, ignoring case."""
    return bool(name) and name.lower().startswith(RESERVED_PREFIX)


def refusal(action: int, arg1: str | None, arg2: str | None) -> str | None:
    """Why a room may not do the authorizer action ``action`` (``sqlite3.SQLITE_*``) with
    arguments ``arg1``, ``arg2``, or None when it may."""
    if action in (_A.SQLITE_ATTACH, _A.SQLITE_DETACH):
        return "ATTACH, DETACH and VACUUM are not allowed: a room has only its own database"
    if action in (_A.SQLITE_TRANSACTION, _A.SQLITE_SAVEPOINT):
        return ("transaction control is not allowed: the runtime commits each hook's writes "
                "(use storage.transaction() for a block that rolls back)")
    if action == _A.SQLITE_FUNCTION:
        return f"function {arg2}() is not allowed" if (arg2 or "").lower() in DENIED_FUNCTIONS else None
    if action == _A.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in PRAGMA_ARGUMENT or name in PRAGMA_SET or (name in PRAGMA_READ and arg2 is None):
            if name in PRAGMA_ARGUMENT and is_reserved(arg2):
                return f"tables named {RESERVED_PREFIX}* are reserved for the runtime"
            return None
        return f"PRAGMA {name} is not allowed (only introspection PRAGMAs and user_version are)"
    if action in _NAMED_FIRST and (arg1 or "").lower() in DENIED_TABLES:
        return f"table {arg1} is not allowed"
    if (action in _NAMED_FIRST and is_reserved(arg1)) or (action in _NAMED_SECOND and is_reserved(arg2)):
        return f"tables named {RESERVED_PREFIX}* are reserved for the runtime"
    return None


class RoomSqlAuthorizer:
    """An authorizer (``conn.set_authorizer(auth)``) for one room statement compiled in ``mode``.

    After a failed compile, ``refused`` (str) says why the statement is forbidden, or else
    ``needs`` (> ``mode``) is the mode it must be run in.
    """

    def __init__(self, mode: int):
        self.mode = mode
        self.needs = mode
        self.refused: str | None = None

    def __call__(self, action: int, arg1, arg2, db_name, trigger) -> int:
        reason = refusal(action, arg1, arg2)
        if reason is not None:
            self.refused = self.refused or reason
            return sqlite3.SQLITE_DENY
        if action == _A.SQLITE_ALTER_TABLE and self.mode < CHECKED:
            self.needs = CHECKED
            return sqlite3.SQLITE_DENY
        writes = action in _WRITES or (action == _A.SQLITE_PRAGMA and arg2 is not None
                                       and (arg1 or "").lower() in PRAGMA_SET)
        if writes and self.mode < WRITE:
            self.needs = max(self.needs, WRITE)
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def reserved_names(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    """``(schema, name)`` of every schema object in ``main`` and ``temp`` whose name is reserved."""
    rows = conn.execute("SELECT 'main', name FROM sqlite_schema UNION ALL "
                        "SELECT 'temp', name FROM sqlite_temp_schema").fetchall()
    return {(schema, name) for schema, name in rows if is_reserved(name)}

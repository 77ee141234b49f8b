"""What the runtime keeps in a room's database besides the room's own data: meta values
(``epoch``, ``params``, ``snapshot_version``, the alarm's retry count), the connections held
through hibernation, the outbox of room-to-room posts (``starhold.calls``), and consistent
copies for snapshots. The rooms never call these.

``RuntimeRecords`` is a mixin of ``SqliteRoomStorage`` (``storage.sqlite_store``): it uses the
store's write queue (``_queue``, ``_flush_ops``), its connection (``_conn``) and
``fenced_epoch``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .values import pack, unpack

LOCAL_META = frozenset({"epoch", "snapshot_version", "log_pos"})
"""Meta keys that describe this node's file, not the room: never recorded in the statement log
(``storage.sqlite_store``)."""


class RuntimeRecords:
    """The runtime's records in a room's database (see the module docstring)."""

    # ---- meta: epoch, params... --------------------------------------------------------------
    async def meta_get(self, key: str):
        """A runtime value (``epoch``, ``params``...) from the ``meta`` table, or None."""
        await self._flush_ops()
        async with self._conn().execute("SELECT value FROM _starhold_meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else unpack(row[0])

    async def meta_put(self, key: str, value) -> None:
        """Write a runtime value to the ``meta`` table (in the current transaction)."""
        self._queue("INSERT OR REPLACE INTO _starhold_meta (key, value) VALUES (?, ?)", (key, pack(value)),
                    local=key in LOCAL_META)

    async def next_epoch(self) -> int:
        """Increment and return the activation epoch (committed by the caller)."""
        return await self.claim_epoch(0)

    async def claim_epoch(self, at_least: int) -> int:
        """Take the activation epoch ``max(stored, at_least) + 1`` and fence on it (committed
        by the caller). ``at_least`` is the epoch of the newest snapshot manifest, so that an
        activation on a node with an old local file still outranks every earlier one."""
        epoch = max(int(await self.meta_get("epoch") or 0), int(at_least)) + 1
        await self.meta_put("epoch", epoch)
        self.fenced_epoch = epoch
        return epoch

    # ---- connections held through hibernation -----------------------------------------------
    async def save_connections(self, rows: list[tuple[str, str, dict | None, list[str]]]) -> None:
        """Replace the held connections: rows of (conn_id, gateway_id, attachment, tags)."""
        self._queue("DELETE FROM _starhold_connections")
        for conn_id, gateway_id, attachment, tags in rows:
            self._queue("INSERT INTO _starhold_connections VALUES (?, ?, ?, ?)",
                        (conn_id, gateway_id, pack(attachment), pack(sorted(tags))))

    async def take_connections(self) -> list[tuple[str, str, dict | None, list[str]]]:
        """The held connections (see ``save_connections``), removed from the table."""
        await self._flush_ops()
        async with self._conn().execute("SELECT conn_id, gateway_id, attachment, tags FROM _starhold_connections") as cur:
            rows = [(c, g, unpack(a), unpack(t)) async for c, g, a, t in cur]
        if rows:
            self._queue("DELETE FROM _starhold_connections")
        return rows

    # ---- the outbox of room-to-room posts (starhold.calls) -------------------------------------
    def outbox_add(self, seq: int, item: dict) -> None:
        """Queue post ``seq`` (an int, increasing) in the current transaction."""
        self._queue("INSERT OR REPLACE INTO _starhold_outbox (seq, item) VALUES (?, ?)", (seq, pack(item)))

    async def outbox_load(self) -> list[tuple[int, dict]]:
        """Every undelivered post as ``(seq, item)``, oldest first."""
        await self._flush_ops()
        async with self._conn().execute("SELECT seq, item FROM _starhold_outbox ORDER BY seq") as cur:
            return [(seq, unpack(item)) async for seq, item in cur]

    def outbox_delete(self, seqs: list[int]) -> None:
        """Delete delivered posts (in the current transaction)."""
        for seq in seqs:
            self._queue("DELETE FROM _starhold_outbox WHERE seq = ?", (seq,))

    async def backup_to(self, dest: str | os.PathLike) -> None:
        """Write a consistent copy of the committed database to ``dest`` (``VACUUM INTO``)."""
        dest = Path(dest)
        dest.unlink(missing_ok=True)
        await self._conn().execute("VACUUM INTO ?", (str(dest),))

"""A room's tick journal: the writes of one group commit as one stored record.

A ship room's tick that applied inputs changes a ship key (the new leg) and a seat key (the
ack) per player, and must commit them before the frame acknowledges the inputs. Written as
keys that is a row per key per tick (200 rows for 100 players, ~0.56 ms of CPU with the commit
on this machine); written as one record it is one row (~0.16 ms). So a tick's writes go to a
journal entry ``journal:<seq, 12 digits>`` = ``[{key: value}, [deleted keys]]``, plus
``{key: {field: value}}`` for dicts of which only those fields changed (patches), stored as
the msgpack bytes of that list, encoded by msgspec (values must be msgpack's types, as for any
stored value; a set or tuple would come back as a list, and is refused at the next fold). A
tick's moves and acks take a compact form: an entry ``{"v": 2, "puts": ..., "deletes": ...,
"patches": ..., "legs": bytes, "acks": {key: ack}}`` (the last three when present), where
``legs`` packs the new leg of each moved ship (``kernels.motion.pack_legs``: id and ``x0, y0,
tx, ty, t0``, 48 bytes a ship instead of its whole dict) and ``acks`` the seats whose ``ack``
alone changed (the int instead of ``{"ack": ...}``): a 100-player tick's entry is 5.8 KB instead
of 10.8 KB (``benchmarks/room_tick.py``), a page less for SQLite to write. An entry's parts
apply in that order (puts, deletes, patches, legs, acks). A format a version does not know
stops the room's start rather than being misread: this one raises ``ValueError``
(``read_entry``) for a version other than 2, and versions before it fail on the map (they
index a list). Entries are
**folded** into their keys (the latest value of each, the entries deleted, in one commit) at
most every ``FOLD_INTERVAL`` seconds, before any write of those keys made without the journal,
and when the room starts (``load``: the entries an earlier activation left, in order). The
entries that exist are therefore always newer than the keys, and folding them in order gives
the state the last commit left, whatever crashed in between (write-ahead logging with a
checkpoint, as SQLite's own WAL does below it).

A fold also writes ``FOLDED_KEY``, the number of the last entry it covers, and ``load`` drops
the entries at or below it unread: a fold whose transaction was rolled back (a hook that
raised after it) leaves its entries in storage, and without the mark a later start would replay
them over newer writes of the same keys.

Between folds the keys lag the room's memory: code that reads those keys from storage during an
activation must read ``latest(key)`` first. Legs journaled packed (``append(packed_legs=...)``,
a fleet's ``take_changes``) are not kept as dicts: their keys' latest value is the ship's
current dict, asked of the ``resolve`` callable at ``latest`` and at the fold. An entry whose
msgpack would exceed the storage's value limit (``MAX_VALUE_BYTES``) is split into several.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from starhold.kernels.motion import pack_legs, unpack_legs
from .fleet import PREFIX as SHIP_PREFIX

PREFIX = "journal:"
FOLDED_KEY = "journal_folded"
"""Storage key of the number of the last entry folded (entries up to it are superseded)."""
FOLD_INTERVAL = 2.0
"""Seconds (room clock) between folds while entries are appended."""
_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder().decode
"""An entry is stored as the msgpack bytes of ``[puts, deletes]`` (``[puts, deletes, patches]``
with patches), encoded by msgspec (about
3x faster than the storage's own ``msgpack.packb`` for a tick's 200 dicts: 51 against 176 µs
on this machine); older entries stored as the list itself are read too."""


def read_entry(value: Any) -> tuple[dict[str, Any], list[str], dict[str, dict], bytes, dict[str, int]]:
    """``(puts, deletes, patches, legs, acks)`` of a stored entry's value (bytes, or the list
    an older version stored; each part empty in an entry without it). Raises ``ValueError``
    for an entry of a newer format than this version reads."""
    entry = _DECODE(value) if isinstance(value, bytes) else value
    if isinstance(entry, dict):
        if entry.get("v") != 2:
            raise ValueError(f"journal entry of an unknown format {entry.get('v')!r}")
        return (entry.get("puts", {}), entry.get("deletes", []), entry.get("patches", {}), entry.get("legs", b""),
                entry.get("acks", {}))
    return entry[0], entry[1], entry[2] if len(entry) > 2 else {}, b"", {}


DELETED = object()
"""``latest(key)``'s answer for a key whose last journaled change deleted it."""
MISSING = object()
"""``latest(key)``'s answer for a key the journal holds no change of."""


class Journal:
    """The tick journal of one activation over ``storage`` (the room's ``Room.storage``).
    ``resolve(ship_id)``: the current dict of a ship in the room, or None when it is gone (it
    is asked for ships whose legs were appended packed; required to append those)."""

    def __init__(self, storage: Any, resolve: Callable[[int], dict | None] | None = None):
        self.storage = storage
        self.resolve = resolve
        self.seq = 1  # the next entry's number
        self.entries: list[str] = []  # keys of the entries not folded yet
        self._latest: dict[str, Any] = {}  # key -> its newest journaled value, or DELETED
        self._leg_keys: dict[int, str] = {}  # ship id -> "ship:<id>", until the next fold
        self._current: set[int] = set()  # ships whose latest value is their current dict (packed legs)
        self.folded_at = float("-inf")  # room clock time of the last fold

    async def load(self, now: float) -> int:
        """Fold the entries an earlier activation left into their keys (queued in the caller's
        transaction; call before reading those keys) and delete those an earlier fold already
        covered (``FOLDED_KEY``). Returns how many entries were folded."""
        stored = await self.storage.list(prefix=PREFIX)
        folded = int(await self.storage.get(FOLDED_KEY) or 0)
        self.seq = folded + 1
        superseded = []
        for key, entry in stored.items():  # in key order: oldest first
            seq = int(key[len(PREFIX):])
            if seq <= folded:
                superseded.append(key)
                continue
            puts, deletes, patches, legs, acks = read_entry(entry)
            self._note(puts, deletes)
            for patched, fields in patches.items():
                await self._patch(patched, fields)
            for ship_id, x0, y0, tx, ty, t0 in unpack_legs(legs):
                await self._patch(f"{SHIP_PREFIX}{ship_id}", {"x0": x0, "y0": y0, "tx": tx, "ty": ty, "t0": t0})
            for patched, ack in acks.items():
                await self._patch(patched, {"ack": ack})
            self.entries.append(key)
            self.seq = max(self.seq, seq + 1)
        if superseded:
            await self.storage.delete(superseded)
        await self.fold(now)
        return len(stored) - len(superseded)

    async def _patch(self, key: str, fields: dict) -> None:
        """Replay a patch of ``key`` (``load``): its fields on the newest value of the key."""
        base = self._latest.get(key, MISSING)
        if base is MISSING:
            base = await self.storage.get(key)
        if isinstance(base, dict):  # (a patch of a deleted key cannot be written; ignored)
            self._latest[key] = {**base, **fields}

    def _note(self, puts: dict, deletes: list) -> None:
        self._latest.update(puts)
        for key in deletes:
            self._latest[key] = DELETED
        if self._current:
            self._supersede(puts)
            self._supersede(deletes)

    def _supersede(self, keys) -> None:
        """Values of ``keys`` were journaled: ships among them no longer take their current dict."""
        for key in keys:
            ship_id = _ship_id(key)
            if ship_id is not None:
                self._current.discard(ship_id)

    async def append(self, puts: dict[str, Any], deletes: list[str], patches: dict[str, dict] | None = None,
                     values: dict[str, dict] | None = None, *, legs: list[dict] | None = None,
                     packed_legs: tuple[bytes, list[int]] | None = None, acks: dict[str, int] | None = None) -> None:
        """Journal one group commit's writes as one entry, split into several when it would
        exceed ``MAX_VALUE_BYTES``: ``puts`` (``{key: value}``), ``deletes`` (keys), then

        - ``patches``: ``{key: fields}`` for the dicts ``values[key]`` of which only ``fields``
          changed since they were last written, stored as those fields alone;
        - ``legs``: ship dicts (``rooms.ships.fleet``, key ``ship:<id>``) of which only the leg
          changed (``x0, y0, tx, ty, t0``), stored packed (``kernels.motion.pack_legs``, 48
          bytes a ship); the dicts must not be changed in place afterwards (the fold writes them);
        - ``packed_legs``: ``(packed, ship ids)``, legs already packed as ``pack_legs`` packs
          them (a fleet's ``take_changes``), stored after ``legs``; the ships' latest values are
          then their current dicts (``resolve``), read at the fold;
        - ``acks``: ``{key: ack}`` for the dicts ``values[key]`` of which only ``"ack"`` changed
          (the patch ``{"ack": ack}``, stored as the int).

        ``values`` must hold every key of ``patches`` and ``acks``. Raises
        ``ValueError``/``TypeError`` for a value the storage could not store either,
        ``KeyError`` for a patch or ack without its value."""
        packed, packed_ids = packed_legs if packed_legs is not None and packed_legs[1] else (b"", ())
        if packed_ids and self.resolve is None:
            raise ValueError("packed legs need a journal with resolve")
        if not puts and not deletes and not patches and not legs and not packed_ids and not acks:
            return
        patched = (patches or {}).keys() | (acks or {}).keys()
        if patched and (values is None or not values.keys() >= patched):
            missing = patched - (values or {}).keys()
            raise KeyError(f"patches without their values: {sorted(missing)[:3]}")
        key = f"{PREFIX}{self.seq:012d}"
        if legs or packed_ids or acks:  # (a format older versions fail on rather than misread: the module docstring)
            entry: Any = {"v": 2, "puts": puts, "deletes": deletes}
            if patches:
                entry["patches"] = patches
            if legs or packed_ids:
                entry["legs"] = pack_legs(legs) + packed if legs else packed
            if acks:
                entry["acks"] = acks
        else:
            entry = [puts, deletes, patches] if patches else [puts, deletes]
        try:
            entry = _ENCODE(entry)
        except Exception:  # a value msgspec cannot encode: the storage's own check says why
            pass
        try:
            await self.storage.put(key, entry)
        except ValueError:
            if patches or legs or packed_ids or acks:  # split as whole values
                current = {self._leg_key(i): self.resolve(i) for i in packed_ids}
                puts = {**puts, **{k: values[k] for k in patched}, **{self._leg_key(s["id"]): s for s in legs or ()},
                        **{k: v for k, v in current.items() if v is not None}}
                patches = legs = acks = None
                packed_ids = ()
            if len(puts) + len(deletes) <= 1:
                raise
            items = list(puts.items())
            half = len(items) // 2
            await self.append(dict(items[:half]), [])
            await self.append(dict(items[half:]), deletes)
            return
        self.seq += 1
        self.entries.append(key)
        self._note(puts, deletes)
        latest = self._latest
        if patched:
            if len(values) == len(patched):
                latest.update(values)
            else:
                for k in patched:
                    latest[k] = values[k]
            if self._current:
                self._supersede(patched)
        if legs:
            leg_key = self._leg_key
            for ship in legs:
                latest[leg_key(ship["id"])] = ship
                self._current.discard(ship["id"])
        if packed_ids:
            self._current.update(packed_ids)

    def _leg_key(self, ship_id: int) -> str:
        """``ship:<id>`` (kept until the next fold: a tick's moves are mostly the same ships)."""
        key = self._leg_keys.get(ship_id)
        if key is None:
            key = self._leg_keys[ship_id] = f"{SHIP_PREFIX}{ship_id}"
        return key

    def latest(self, key: str) -> Any:
        """The newest journaled value of ``key`` not yet folded: a value, ``DELETED`` or
        ``MISSING`` (the key in storage is current)."""
        if self._current:
            ship_id = _ship_id(key)
            if ship_id in self._current:
                ship = self.resolve(ship_id)
                return DELETED if ship is None else ship
        return self._latest.get(key, MISSING)

    def due(self, now: float) -> bool:
        """Whether entries wait and the last fold is ``FOLD_INTERVAL`` old at clock time ``now``."""
        return bool(self.entries) and now - self.folded_at >= FOLD_INTERVAL

    async def fold(self, now: float) -> None:
        """Queue the newest value of every journaled key (or its delete), the deletion of the
        entries and ``FOLDED_KEY``, in the caller's transaction; the journal is then empty.
        Writes nothing in a room that never journaled."""
        self.folded_at = now
        if self.seq == 1:  # nothing was ever journaled in this room
            return
        latest = self._latest
        for ship_id in self._current:
            ship = self.resolve(ship_id)
            latest[self._leg_key(ship_id)] = DELETED if ship is None else ship
        puts = {k: v for k, v in latest.items() if v is not DELETED}
        puts[FOLDED_KEY] = self.seq - 1  # again at every fold: an earlier one may have been rolled back
        deletes = [k for k, v in latest.items() if v is DELETED] + self.entries
        await self.storage.put(puts)
        if deletes:
            await self.storage.delete(deletes)
        self.entries = []
        self._latest = {}
        self._leg_keys = {}
        self._current = set()


def _ship_id(key: str) -> int | None:
    """The ship id of a key ``ship:<id>``, else None."""
    if key.startswith(SHIP_PREFIX):
        try:
            return int(key[len(SHIP_PREFIX):])
        except ValueError:
            return None
    return None


__all__ = ["DELETED", "FOLDED_KEY", "FOLD_INTERVAL", "Journal", "MISSING", "PREFIX", "read_entry"]

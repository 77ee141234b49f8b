"""The ships of a ship room: dicts by id, a struct-of-arrays cache for the kernels, write-behind.

A ship is a dict stored under ``ship:<id>``: ``id``, ``player`` (owner), ``name`` and the
current straight-line leg ``x0, y0 -> tx, ty`` started at clock time ``t0`` (seconds), plus
what the room keeps (a system: hp, waypoints, combat state). Its position is a closed-form
function of time (``starhold.kernels.motion``), so a tick writes nothing.

``Fleet`` is sans-I/O: it never touches storage; the room writes ``take_writes()`` behind.

Moves applied by ``steer_moves`` (a room's run of ``move_to`` inputs) are written into the
arrays only (``kernels.motion.steer_rows``): the row is then the ship's leg and its dict lags
until something reads ``ships`` (which first copies those legs into new dicts, ``sync_legs``),
the arrays are rebuilt, or the changes are taken. A tick of 100 moves thus allocates no dict,
and the journal packs the moved legs straight from the rows (``take_changes``).
Listeners (public, set at construction) let the room's simulation follow the arrays:
``on_rebuild(ids)`` after the arrays were rebuilt (a ship added or removed), ``on_remove(ship_id)``
when a ship leaves (also for an id that was not there).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import protocol
from starhold.kernels.motion import positions_at, set_legs, ship_position, steer_rows, sync_rows, take_rows

__all__ = ["Fleet", "PREFIX"]

PREFIX = "ship:"
"""Storage key prefix of ships: ``ship:<id>``."""
NEXT_ID_KEY = "next_ship_id"
"""Storage key of the next ship id (int)."""
MOVED = 1
"""Row flag: the row's leg changed (``steer_moves``) since the changes were last taken."""
STALE = 2
"""Row flag: the row's leg is newer than the ship's dict (``sync_legs`` copies it there)."""


class Fleet:
    """``ships``: id -> ship dict (as stored); ``next_id``: the next ship id. ``order()``
    gives the ship ids in array order (default: insertion order)."""

    def __init__(self, ships: dict[int, dict], next_id: int, *, order: Callable[[], list[int]] | None = None,
                 on_rebuild: Callable[[list[int]], None] | None = None,
                 on_remove: Callable[[int], None] | None = None):
        self._ships = ships
        self.next_id = next_id
        self.order = order or (lambda: list(self._ships))
        self.on_rebuild = on_rebuild
        self.on_remove = on_remove
        self._dirty: set[int] = set()
        self._next_id_dirty = False
        self._soa: tuple[list[int], np.ndarray, dict[int, int]] | None = None
        self._flags = np.zeros(0, dtype=np.uint8)  # per row: MOVED | STALE
        self._moved_rows = False  # a row may have MOVED
        self._stale_rows = False  # a row may be STALE
        self._stale: dict[int, dict] = {}  # ships whose array row waits for the next arrays()
        self._names: dict[int, str] | None = None  # names(), until a ship is added, removed or renamed

    @property
    def ships(self) -> dict[int, dict]:
        """Ship id -> ship dict (as stored), every leg current (``sync_legs`` first). Change a
        ship through ``touch``/``mark``, not in this dict."""
        if self._stale_rows:
            self.sync_legs()
        return self._ships

    def sync_legs(self) -> None:
        """Copy the legs that ``steer_moves`` left in the arrays into new ship dicts (the old
        dicts are not changed: a journal may hold them)."""
        if self._stale_rows:
            self._stale_rows = False
            ids, cols, _ = self._soa
            sync_rows(ids, cols, self._flags, STALE, self._ships)

    def _moved_to_dirty(self) -> None:
        """The ships moved since the last take are to be written whole: their legs go to their
        dicts, their ids to the dirty set, and the rows' ``MOVED`` flags are cleared."""
        if self._moved_rows:
            self.sync_legs()
            ids = self._soa[0]
            self._dirty.update(ids[r] for r in np.flatnonzero(self._flags & MOVED).tolist())
            self._flags &= ~np.uint8(MOVED)
            self._moved_rows = False

    def _invalidate(self) -> None:
        """Drop the arrays (a ship is added or removed): their legs go to the dicts first, and
        the ships moved since the last take are written whole."""
        if self._soa is not None:
            self._moved_to_dirty()
            self.sync_legs()
        self._soa = None

    def arrays(self) -> tuple[list[int], np.ndarray, dict[int, int]]:
        """``(ids, cols, index)``: ship ids in ``order()``, a (N, 5) float64 array of their
        ``x0, y0, tx, ty, t0``, and id -> row. Cached until a ship is added or removed (orders
        update the rows in place, when ``arrays()`` is next called, or at once by
        ``steer_moves``); a rebuild calls ``on_rebuild(ids)``."""
        if self._soa is not None and self._stale:  # orders since the last call: their rows at once
            _, cols, index = self._soa
            stale, self._stale = self._stale, {}
            set_legs(cols, [index[i] for i in stale], list(stale.values()))
        if self._soa is None:
            self._stale = {}
            ids = self.order()
            cols = np.array([[s["x0"], s["y0"], s["tx"], s["ty"], s["t0"]] for s in map(self._ships.__getitem__, ids)],
                            dtype=np.float64).reshape(-1, 5)
            self._soa = (ids, cols, {ship_id: i for i, ship_id in enumerate(ids)})
            self._flags = np.zeros(len(ids), dtype=np.uint8)
            if self.on_rebuild is not None:
                self.on_rebuild(ids)
        return self._soa

    def steer_moves(self, batch: list, by_conn: dict[str, str], seats: dict[str, dict], acked: set[str],
                    limit: float, t: float, speed: float) -> int:
        """Apply a run of ``move_to`` inputs as ``kernels.motion.steer`` would, one by one, to
        the arrays' rows (``kernels.motion.steer_rows``: ``batch`` ``[(connection, message)]``,
        ``by_conn`` connection id -> player, ``seats`` player -> seat dict, whose ``"ack"`` is
        raised to each input's ``seq`` and its player added to ``acked``; targets clamped to
        ``[-limit, limit]`` world units, legs started at clock time ``t`` seconds at ``speed``
        world units/s). The ships' dicts follow when next read (``ships``); the changes are
        taken as legs (``take_changes``). Returns how many inputs were applied."""
        ids, cols, index = self.arrays()
        applied = steer_rows(batch, by_conn, seats, acked, index, cols, self._flags, MOVED | STALE, limit, t, speed)
        if applied:
            self._moved_rows = self._stale_rows = True
        return applied

    def names(self) -> dict[int, str]:
        """Ship id -> name. The same dict object until a ship is added, removed or renamed
        (``touch``, or ``mark`` after a change in place; then a new one: callers may compare
        by identity, and must not change it)."""
        if self._names is None:
            self._names = {ship_id: s["name"] for ship_id, s in self._ships.items()}
        return self._names

    def position(self, ship: dict, at: float) -> tuple[float, float, bool]:
        """One ship's ``(x, y, moving)`` at clock time ``at`` (the kernel's twin, bit-identical)."""
        return ship_position(ship, protocol.SHIP_SPEED, at)

    def positions(self, at: float) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Every ship's ``(ids, x, y, moving)`` at clock time ``at``: float64, float64, bool (N,)."""
        ids, cols, _ = self.arrays()
        x, y, moving = positions_at(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4],
                                    protocol.SHIP_SPEED, at)
        return ids, x, y, moving

    def touch(self, ship: dict) -> None:
        """Store ``ship`` (new or changed; written behind) and update its array row. A ship
        already here must be a dict read from ``ships`` (its current leg) or built from one."""
        self.touch_many((ship,))

    def touch_many(self, ships) -> None:
        """``touch`` each of ``ships`` in order (a ship listed twice ends as its last dict)."""
        stored, dirty, stale, flags = self._ships, self._dirty, self._stale, self._flags
        for ship in ships:
            ship_id = ship["id"]
            index = self._soa[2] if self._soa is not None else None
            if index is not None and ship_id in index:
                stale[ship_id] = ship  # its row is updated by the next arrays()
                flags[index[ship_id]] = 0  # the dict is the leg now, written whole
            else:
                self._invalidate()  # (before the new ship is in: its leg is in no row)
            stored[ship_id] = ship
            dirty.add(ship_id)
            if self._names is not None and self._names.get(ship_id) != ship["name"]:
                self._names = None

    def mark(self, ship_id: int) -> None:
        """Ship ``ship_id`` changed in place (not its leg): write it behind."""
        self._dirty.add(ship_id)
        if self._names is not None and ship_id in self._ships and self._names.get(ship_id) != self._ships[ship_id]["name"]:
            self._names = None

    def new(self, owner: str, name: str, x: float, y: float, t0: float) -> dict:
        """A new ship of ``owner`` at rest at ``(x, y)`` from clock time ``t0``."""
        ship_id = self.next_id
        self.next_id += 1
        self._next_id_dirty = True
        ship = {"id": ship_id, "player": owner, "name": name, "x0": x, "y0": y, "tx": x, "ty": y, "t0": t0}
        self.touch(ship)
        return ship

    def take_id(self, preferred: int | None = None) -> int:
        """An id for a ship coming into the room: ``preferred`` if it was issued here before
        (below ``next_id``) and no ship has it now, else the next new id."""
        if preferred is not None and 0 < preferred < self.next_id and preferred not in self._ships:
            return preferred
        ship_id = self.next_id
        self.next_id += 1
        self._next_id_dirty = True
        return ship_id

    def peek_id(self) -> int:
        """The id the next ``new`` ship gets."""
        return self.next_id

    def remove(self, ship_id: int) -> None:
        """Take ship ``ship_id`` out (written behind); ``on_remove`` runs either way."""
        if ship_id in self._ships:
            self._invalidate()
            del self._ships[ship_id]
            self._names = None
            self._dirty.add(ship_id)
        if self.on_remove is not None:
            self.on_remove(ship_id)

    def pending(self) -> bool:
        """Whether there are writes to take."""
        return bool(self._dirty) or self._moved_rows or self._next_id_dirty

    def take_writes(self) -> tuple[dict, list[str]]:
        """The changes since the last take as ``({key: value}, [keys to delete])``."""
        self._moved_to_dirty()
        puts, deletes, _ = self.take_changes()
        return puts, deletes

    def take_changes(self) -> tuple[dict, list[str], tuple[bytes, list[int]]]:
        """Like ``take_writes``, with the ships whose leg alone changed (``steer_moves``, and
        nothing else since the last take) apart, so that a journal can store just their leg:
        ``({key: value}, [keys to delete], (packed legs, [their ship ids]))``, the legs packed
        as ``kernels.motion.pack_legs`` packs them (48 bytes a ship, row order)."""
        puts, deletes = {}, []
        if self._next_id_dirty:
            puts[NEXT_ID_KEY] = self.next_id
        dirty = self._dirty
        if dirty:
            ships = self.ships  # (their current legs)
            index = self._soa[2] if self._soa is not None else {}
            for ship_id in dirty:
                ship = ships.get(ship_id)
                if ship is None:
                    deletes.append(f"{PREFIX}{ship_id}")
                else:
                    puts[f"{PREFIX}{ship_id}"] = ship
                    row = index.get(ship_id)
                    if row is not None:
                        self._flags[row] &= ~MOVED & 0xFF  # written whole
            dirty.clear()
        moved = (b"", [])
        if self._moved_rows:
            self._moved_rows = False
            ids, cols, _ = self._soa
            moved = take_rows(ids, cols, self._flags, MOVED)
        self._next_id_dirty = False
        return puts, deletes, moved

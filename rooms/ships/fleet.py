"""The ships of a ship room: dicts by id, a struct-of-arrays cache for the kernels, write-behind.

A ship is a dict stored under ``ship:<id>``: ``id``, ``player`` (owner), ``name`` and the
current straight-line leg ``x0, y0 -> tx, ty`` started at clock time ``t0`` (seconds), plus
what the room keeps (a system: hp, waypoints, combat state). Its position is a closed-form
function of time (``starhold.kernels.motion``), so a tick writes nothing.

``Fleet`` is sans-I/O: it never touches storage; the room writes ``take_writes()`` behind.
Listeners (public, set at construction) let the room's simulation follow the arrays:
``on_rebuild(ids)`` after the arrays were rebuilt (a ship added or removed), ``on_remove(ship_id)``
when a ship leaves (also for an id that was not there).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import protocol
from starhold.kernels.motion import positions_at, set_legs, ship_position

__all__ = ["Fleet", "PREFIX"]

PREFIX = "ship:"
"""Storage key prefix of ships: ``ship:<id>``."""
NEXT_ID_KEY = "next_ship_id"
"""Storage key of the next ship id (int)."""


class Fleet:
    """``ships``: id -> ship dict (as stored); ``next_id``: the next ship id. ``order()``
    gives the ship ids in array order (default: insertion order)."""

    def __init__(self, ships: dict[int, dict], next_id: int, *, order: Callable[[], list[int]] | None = None,
                 on_rebuild: Callable[[list[int]], None] | None = None,
                 on_remove: Callable[[int], None] | None = None):
        self.ships = ships
        self.next_id = next_id
        self.order = order or (lambda: list(self.ships))
        self.on_rebuild = on_rebuild
        self.on_remove = on_remove
        self._dirty: set[int] = set()
        self._moved: set[int] = set()  # ships whose leg alone changed since the last take (touch_many)
        self._next_id_dirty = False
        self._soa: tuple[list[int], np.ndarray, dict[int, int]] | None = None
        self._stale: dict[int, dict] = {}  # ships whose array row waits for the next arrays()
        self._names: dict[int, str] | None = None  # names(), until a ship is added, removed or renamed

    def arrays(self) -> tuple[list[int], np.ndarray, dict[int, int]]:
        """``(ids, cols, index)``: ship ids in ``order()``, a (N, 5) float64 array of their
        ``x0, y0, tx, ty, t0``, and id -> row. Cached until a ship is added or removed (orders
        update the rows in place, when ``arrays()`` is next called); a rebuild calls ``on_rebuild(ids)``."""
        if self._soa is not None and self._stale:  # orders since the last call: their rows at once
            _, cols, index = self._soa
            stale, self._stale = self._stale, {}
            set_legs(cols, [index[i] for i in stale], list(stale.values()))
        if self._soa is None:
            self._stale = {}
            ids = self.order()
            cols = np.array([[s["x0"], s["y0"], s["tx"], s["ty"], s["t0"]] for s in map(self.ships.__getitem__, ids)],
                            dtype=np.float64).reshape(-1, 5)
            self._soa = (ids, cols, {ship_id: i for i, ship_id in enumerate(ids)})
            if self.on_rebuild is not None:
                self.on_rebuild(ids)
        return self._soa

    def names(self) -> dict[int, str]:
        """Ship id -> name. The same dict object until a ship is added, removed or renamed
        (``touch``, or ``mark`` after a change in place; then a new one: callers may compare
        by identity, and must not change it)."""
        if self._names is None:
            self._names = {ship_id: s["name"] for ship_id, s in self.ships.items()}
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
        """Store ``ship`` (new or changed; written behind) and update its array row."""
        self.ships[ship["id"]] = ship
        self._dirty.add(ship["id"])
        if self._names is not None and self._names.get(ship["id"]) != ship["name"]:
            self._names = None
        if self._soa is not None and ship["id"] in self._soa[2]:
            self._stale[ship["id"]] = ship  # its row is updated by the next arrays()
        else:
            self._soa = None

    def touch_many(self, ships: list[dict], legs_only: bool = False) -> None:
        """``touch`` each of ``ships`` in order (a ship listed twice ends as its last dict).
        ``legs_only``: each differs from the stored ship in its leg alone (``x0, y0, tx, ty,
        t0``: ``steer``'s copies), so that ``take_changes`` can give it as a leg."""
        stored, dirty, stale = self.ships, self._dirty, self._stale
        names, soa = self._names, self._soa
        index = soa[2] if soa is not None else None
        marked = self._moved if legs_only else dirty
        for ship in ships:
            ship_id = ship["id"]
            stored[ship_id] = ship
            marked.add(ship_id)
            if names is not None and names.get(ship_id) != ship["name"]:
                names = self._names = None
            if index is not None and ship_id in index:
                stale[ship_id] = ship  # its row is updated by the next arrays()
            else:
                index = self._soa = None

    def mark(self, ship_id: int) -> None:
        """Ship ``ship_id`` changed in place (not its leg): write it behind."""
        self._dirty.add(ship_id)
        if self._names is not None and ship_id in self.ships and self._names.get(ship_id) != self.ships[ship_id]["name"]:
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
        if preferred is not None and 0 < preferred < self.next_id and preferred not in self.ships:
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
        if self.ships.pop(ship_id, None) is not None:
            self._soa = None
            self._names = None
            self._dirty.add(ship_id)
        if self.on_remove is not None:
            self.on_remove(ship_id)

    def pending(self) -> bool:
        """Whether there are writes to take."""
        return bool(self._dirty) or bool(self._moved) or self._next_id_dirty

    def take_writes(self) -> tuple[dict, list[str]]:
        """The changes since the last take as ``({key: value}, [keys to delete])``."""
        if self._moved:
            self._dirty |= self._moved
            self._moved.clear()
        puts, deletes, _ = self.take_changes()
        return puts, deletes

    def take_changes(self) -> tuple[dict, list[str], list[dict]]:
        """Like ``take_writes``, with the ships whose leg alone changed (``touch_many(...,
        legs_only=True)`` and nothing else since the last take) apart, so that a journal can
        store just their leg: ``({key: value}, [keys to delete], [ship dicts])``."""
        puts, deletes = {}, []
        if self._next_id_dirty:
            puts[NEXT_ID_KEY] = self.next_id
        ships, dirty = self.ships, self._dirty
        for ship_id in dirty:
            ship = ships.get(ship_id)
            if ship is None:
                deletes.append(f"{PREFIX}{ship_id}")
            else:
                puts[f"{PREFIX}{ship_id}"] = ship
        moved = [ships[i] for i in self._moved if i not in dirty and i in ships] if self._moved else []
        dirty.clear()
        self._moved.clear()
        self._next_id_dirty = False
        return puts, deletes, moved

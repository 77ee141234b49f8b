"""The pilot's ledger: its credits, its cargo hold and its orders' escrow (docs/economy.md §2, §5).

The pilot room is the only ledger of a pilot's goods and credits. ``Ledger`` is sans-I/O with
write-behind like ``inbox.Inbox``: the room ``load``s what ``storage.list(prefix=PREFIX)``
returned, changes the ledger in memory through its operations, and puts/deletes what
``take_writes`` gives in the same hook (so a change and its key commit together).

Storage: ``ledger`` (``STATE_KEY``: credits, cargo, capacity, reserved, totals, version,
next order number), ``ledger:o:<order id>`` (one per order) and ``ledger:k:<key>`` (the clock
time an operation key was applied).

Every operation that comes from another room has a **key** and is applied once: a key seen
before returns None and changes nothing. Keys are kept ``KEY_KEEP`` seconds and at most
``KEY_LIMIT`` (the oldest go first). An invalid operation raises ``LedgerError`` and changes
nothing. Every change bumps ``version``.

The hold: ``free = capacity - sum(cargo) - reserved`` is never negative. ``reserved`` is the
unfilled quantity of the open orders, buys **and sells**: a buy keeps room for the goods it
will receive, and a sell's goods, which left the hold for the market, keep their room so that
they always fit back when the order ends unfilled (cancelled, expired...), whatever was mined
meanwhile. A sell's room frees up as it fills.

The order operations (``place``, ``mark_cancelling``, ``settle``, ``closed``) are in
``escrow.Escrow``, which ``Ledger`` extends.

Units: goods in units, money in credits, times in clock seconds (``Room.clock.now()``); all
integers but the times.
"""

from __future__ import annotations

from typing import Iterable

from ..economy.resources import RESOURCES
from .escrow import (CLOSE_REASONS, FILLED, MAX_OPEN_ORDERS, MAX_PRICE, MAX_QUANTITY, OPEN, Escrow, LedgerError, _add,
                     _int)

__all__ = ["Ledger", "LedgerError", "HOLD_CAPACITY", "STARTING_CREDITS", "KEY_KEEP", "KEY_LIMIT", "ORDER_KEEP",
           "ORDER_LIMIT", "MAX_PRICE", "MAX_QUANTITY", "MAX_OPEN_ORDERS", "MAX_CREDITS_OP", "PREFIX", "STATE_KEY",
           "OPEN", "FILLED", "CLOSE_REASONS", "total_goods"]

HOLD_CAPACITY = 100
"""Units the corvette's hold takes."""
STARTING_CREDITS = 1_000
"""Credits granted to a new pilot."""
KEY_KEEP = 7 * 24 * 3600.0
"""Seconds an applied operation key is remembered."""
KEY_LIMIT = 10_000
"""Most operation keys remembered (the oldest are forgotten first)."""
ORDER_KEEP = 7 * 24 * 3600.0
"""Seconds a finished order is kept (for the pilot's history and ``ref`` retries)."""
ORDER_LIMIT = 200
"""Most finished orders kept (the oldest finished first are dropped beyond it)."""
MAX_CREDITS_OP = 10**12
"""Largest credit amount one operation (a bounty) may carry."""
PREFIX = "ledger"
STATE_KEY = "ledger"
ORDER_PREFIX = "ledger:o:"
KEY_PREFIX = "ledger:k:"
SOURCES = {"mine": "mined", "loot": "looted"}
"""A stow's ``source`` -> the totals counter it adds to."""


def _goods(goods: object, what: str = "goods") -> dict[str, int]:
    """``{good: units}`` with known goods and units 0..MAX_QUANTITY, zeros dropped, in
    ``RESOURCES`` order."""
    if not isinstance(goods, dict):
        raise LedgerError("bad_goods", f"{what} must be an object of good -> units")
    for good in goods:
        if good not in RESOURCES:
            raise LedgerError("unknown_good", f"unknown good {good!r}")
    return {g: _int(goods[g], 0, MAX_QUANTITY, "bad_quantity", f"{what}.{g}") for g in RESOURCES
            if g in goods and goods[g] != 0}


class Ledger(Escrow):
    """One pilot's credits, cargo and orders (see the module docstring).

    Attributes: ``credits`` (int), ``cargo`` ``{good: units}`` (no zeros), ``capacity`` and
    ``reserved`` (units), ``totals`` ``{"granted", "bounties", "fees": credits, "mined",
    "looted", "lost": {good: units}}``, ``version`` (int, +1 per change), ``orders`` ``{id:
    order}`` (see ``place``), ``applied`` ``{key: clock s}``.
    """

    def __init__(self) -> None:
        self.credits = 0
        self.cargo: dict[str, int] = {}
        self.capacity = HOLD_CAPACITY
        self.reserved = 0
        self.totals: dict = {"granted": 0, "bounties": 0, "fees": 0, "mined": {}, "looted": {}, "lost": {}}
        self.version = 0
        self.next_order = 1
        self.orders: dict[str, dict] = {}
        self.applied: dict[str, float] = {}
        self._state_dirty = False
        self._orders_dirty: set[str] = set()
        self._keys_dirty: set[str] = set()

    # ---- persistence ----------------------------------------------------------------------------
    @classmethod
    def create(cls, now: float) -> "Ledger":
        """A new ledger granted ``STARTING_CREDITS`` (``totals.granted``) at clock time ``now``."""
        ledger = cls()
        ledger.credits = ledger.totals["granted"] = STARTING_CREDITS
        ledger._changed()
        return ledger

    @classmethod
    def load(cls, stored: dict[str, object], now: float) -> "Ledger | None":
        """The ledger in ``stored`` (what ``storage.list(prefix=PREFIX)`` gave), expired keys
        and orders dropped (as pending deletes); None when it holds no ``STATE_KEY``."""
        state = stored.get(STATE_KEY)
        if not isinstance(state, dict):
            return None
        ledger = cls()
        for name in ("credits", "cargo", "capacity", "reserved", "totals", "version", "next_order"):
            setattr(ledger, name, state[name])
        orders = [v for k, v in stored.items() if k.startswith(ORDER_PREFIX) and isinstance(v, dict)]
        ledger.orders = {o["id"]: o for o in sorted(orders, key=lambda o: o["number"])}
        keys = [(v, k[len(KEY_PREFIX):]) for k, v in stored.items() if k.startswith(KEY_PREFIX)]
        ledger.applied = {key: at for at, key in sorted(keys)}
        ledger.expire(now)
        return ledger

    def take_writes(self) -> tuple[dict[str, object], list[str]]:
        """The pending changes as ``({storage key: value}, [storage keys to delete])``; clears them."""
        puts: dict[str, object] = {}
        deletes: list[str] = []
        if self._state_dirty:
            puts[STATE_KEY] = {"credits": self.credits, "cargo": self.cargo, "capacity": self.capacity,
                               "reserved": self.reserved, "totals": self.totals, "version": self.version,
                               "next_order": self.next_order}
        for order_id in self._orders_dirty:
            if order_id in self.orders:
                puts[ORDER_PREFIX + order_id] = self.orders[order_id]
            else:
                deletes.append(ORDER_PREFIX + order_id)
        for key in self._keys_dirty:
            if key in self.applied:
                puts[KEY_PREFIX + key] = self.applied[key]
            else:
                deletes.append(KEY_PREFIX + key)
        self._state_dirty, self._orders_dirty, self._keys_dirty = False, set(), set()
        return puts, deletes

    def expire(self, now: float) -> None:
        """Forget keys older than ``KEY_KEEP`` or beyond ``KEY_LIMIT``, and finished orders
        older than ``ORDER_KEEP`` or beyond ``ORDER_LIMIT`` (oldest first)."""
        while self.applied:  # oldest first (applied in clock order)
            key, at = next(iter(self.applied.items()))
            if at + KEY_KEEP > now and len(self.applied) <= KEY_LIMIT:
                break
            del self.applied[key]
            self._keys_dirty.add(key)
        finished = sorted((o["finished"], o["number"], o["id"]) for o in self.orders.values() if o["status"] != OPEN)
        doomed = [i for at, _, i in finished if at + ORDER_KEEP <= now]
        doomed += [i for _, _, i in finished[len(doomed):max(len(doomed), len(finished) - ORDER_LIMIT)]]
        for order_id in doomed:
            del self.orders[order_id]
            self._orders_dirty.add(order_id)

    # ---- views ----------------------------------------------------------------------------------
    @property
    def free(self) -> int:
        """Free units in the hold: ``capacity - sum(cargo) - reserved``."""
        return self.capacity - sum(self.cargo.values()) - self.reserved

    def view(self) -> dict:
        """``{"version", "credits", "cargo", "capacity", "reserved"}`` (copies)."""
        return {"version": self.version, "credits": self.credits, "cargo": dict(self.cargo),
                "capacity": self.capacity, "reserved": self.reserved}

    # ---- keyed operations from other rooms ------------------------------------------------------
    def _seen(self, key: str) -> bool:
        if not isinstance(key, str) or not key:
            raise LedgerError("bad_key", "an operation needs a key")
        return key in self.applied

    def _changed(self, key: str | None = None, now: float = 0.0) -> None:
        self.version += 1
        self._state_dirty = True
        if key is not None:
            self.applied[key] = now
            self._keys_dirty.add(key)
            self.expire(now)

    def stow(self, key: str, goods: object, source: str, now: float) -> dict[str, int] | None:
        """Add ``goods`` ``{good: units}`` to the hold, what fits in ``RESOURCES`` order;
        ``source`` ``"mine"`` or ``"loot"`` counts the added goods in ``totals.mined`` or
        ``totals.looted``. Returns the surplus ``{good: units}`` (what did not fit; ``{}`` when
        all did), None for a key applied before. Raises ``LedgerError`` for unknown goods,
        units that are not integers 0..MAX_QUANTITY, or another source."""
        goods = _goods(goods)
        if source not in SOURCES:
            raise LedgerError("bad_source", "source must be 'mine' or 'loot'")
        if self._seen(key):
            return None
        free, added, surplus = self.free, {}, {}
        for good, units in goods.items():
            take = min(units, free)
            free -= take
            if take:
                added[good] = take
            if units - take:
                surplus[good] = units - take
        _add(self.cargo, added)
        _add(self.totals[SOURCES[source]], added)
        self._changed(key, now)
        return surplus

    def bounty(self, key: str, credits: object, now: float) -> bool:
        """Credit a bounty of ``credits`` (1..MAX_CREDITS_OP) to ``credits`` and
        ``totals.bounties``. Returns False for a key applied before."""
        credits = _int(credits, 1, MAX_CREDITS_OP, "bad_credits", "credits")
        if self._seen(key):
            return False
        self.credits += credits
        self.totals["bounties"] += credits
        self._changed(key, now)
        return True

    def destroyed(self, key: str, now: float) -> dict[str, int] | None:
        """The ship was destroyed: remove half (rounded down) of each good in the hold (the
        escrow of sell orders is not in the hold and is kept) and count it in ``totals.lost``.
        Returns the goods removed ``{good: units}`` (may be ``{}``), None for a key applied
        before."""
        if self._seen(key):
            return None
        lost = {g: u // 2 for g, u in self.cargo.items() if u // 2}
        _add(self.cargo, {g: -u for g, u in lost.items()})
        _add(self.totals["lost"], lost)
        self._changed(key, now)
        return lost


def total_goods(ledgers: Iterable[Ledger]) -> dict[str, int]:
    """The goods of ``ledgers`` in holds and in sell escrow, per good (for audits and tests)."""
    out: dict[str, int] = {}
    for ledger in ledgers:
        _add(out, ledger.cargo)
        _add(out, ledger.escrow()[1])
    return out

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

Units: goods in units, money in credits, times in clock seconds (``Room.clock.now()``); all
integers but the times.
"""

from __future__ import annotations

from typing import Iterable

from ..economy.resources import REGIONS, RESOURCES
from ..market.book import BUY, LIMIT, MARKET, SELL

__all__ = ["Ledger", "LedgerError", "HOLD_CAPACITY", "STARTING_CREDITS", "KEY_KEEP", "KEY_LIMIT", "ORDER_KEEP",
           "ORDER_LIMIT", "MAX_PRICE", "MAX_QUANTITY", "MAX_OPEN_ORDERS", "MAX_CREDITS_OP", "PREFIX", "STATE_KEY"]

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
MAX_PRICE = 1_000_000
"""Highest price, credits per unit."""
MAX_QUANTITY = 10_000
"""Largest order, units."""
MAX_OPEN_ORDERS = 50
"""Most open orders per pilot."""
MAX_CREDITS_OP = 10**12
"""Largest credit amount one operation (a bounty) may carry."""
PREFIX = "ledger"
STATE_KEY = "ledger"
ORDER_PREFIX = "ledger:o:"
KEY_PREFIX = "ledger:k:"
OPEN = "open"
FILLED = "filled"
CLOSE_REASONS = ("cancelled", "expired", "unfilled", "rejected")
"""The ``reason``s of a ``closed`` post: also the final ``status`` of such an order."""
SOURCES = {"mine": "mined", "loot": "looted"}
"""A stow's ``source`` -> the totals counter it adds to."""


class LedgerError(ValueError):
    """An operation refused: ``code`` (a short stable string), ``message`` (for people) and
    ``status`` (the HTTP status to answer: 400 invalid input, 404 unknown order, 409 not
    possible in the ledger's state)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _int(value: object, low: int, high: int, code: str, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise LedgerError(code, f"{what} must be an integer from {low} to {high}")
    return value


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


def _add(counter: dict[str, int], goods: dict[str, int]) -> None:
    for good, units in goods.items():
        counter[good] = counter.get(good, 0) + units
        if counter[good] == 0:
            del counter[good]


class Ledger:
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

    def open_orders(self) -> list[dict]:
        """The open orders, oldest first."""
        return [o for o in self.orders.values() if o["status"] == OPEN]

    def find_ref(self, ref: str) -> dict | None:
        """The kept order placed with client reference ``ref``, or None."""
        return next((o for o in self.orders.values() if o.get("ref") == ref), None)

    def escrow(self) -> tuple[int, dict[str, int]]:
        """``(credits, {good: units})`` held in the open orders' escrow."""
        credits, goods = 0, {}
        for order in self.open_orders():
            if order["side"] == BUY:
                credits += order["escrow"]
            else:
                _add(goods, {order["good"]: order["escrow"]})
        return credits, goods

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

    # ---- orders ---------------------------------------------------------------------------------
    def place(self, *, market: object, good: object, side: object, kind: object, price: object, quantity: object,
              expires: float, now: float, region: str | None, ref: str | None = None, owner: str = "") -> dict:
        """Validate and escrow a new order; returns it (the stored dict: ``id`` ``"<owner>:<n>"``,
        ``number``, ``ref``, ``market``, ``good``, ``side``, ``kind``, ``price`` (None only for
        a market sell), ``quantity``, ``remaining``, ``escrow`` (credits for a buy: price x
        remaining; units for a sell: remaining), ``filled`` (units), ``value`` (credits paid
        for a buy's fills, received before fees for a sell's), ``fees``, ``status`` ``"open"``,
        ``created``, ``expires``, ``finished`` (clock s or None)).

        A buy escrows ``price x quantity`` credits and reserves ``quantity`` units; a sell
        moves ``quantity`` of the good out of the hold and reserves their room. ``region``: the
        market the ship may trade on (None in transit). Raises ``LedgerError``: 400
        ``bad_market``, ``unknown_good``, ``bad_side``, ``bad_kind``, ``bad_price``,
        ``price_required`` (limit orders and market buys), ``bad_quantity``; 409
        ``in_transit``, ``wrong_region``, ``too_many_orders``, ``credits``, ``goods``,
        ``hold_full``."""
        if market not in REGIONS:
            raise LedgerError("bad_market", f"market must be one of {', '.join(REGIONS)}")
        if good not in RESOURCES:
            raise LedgerError("unknown_good", f"unknown good {good!r}")
        if side not in (BUY, SELL):
            raise LedgerError("bad_side", "side must be 'buy' or 'sell'")
        if kind not in (LIMIT, MARKET):
            raise LedgerError("bad_kind", "kind must be 'limit' or 'market'")
        if price is None and (kind == LIMIT or side == BUY):
            raise LedgerError("price_required", "a limit order and a market buy need a price")
        if price is not None:
            _int(price, 1, MAX_PRICE, "bad_price", "price")
        _int(quantity, 1, MAX_QUANTITY, "bad_quantity", "quantity")
        if region is None:
            raise LedgerError("in_transit", "the ship is in transit: no market", 409)
        if market != region:
            raise LedgerError("wrong_region", f"the ship is in the {region} region: trade on market {region}", 409)
        if len(self.open_orders()) >= MAX_OPEN_ORDERS:
            raise LedgerError("too_many_orders", f"at most {MAX_OPEN_ORDERS} open orders", 409)
        if side == BUY:
            if price * quantity > self.credits:
                raise LedgerError("credits", f"needs {price * quantity} credits, has {self.credits}", 409)
            if quantity > self.free:
                raise LedgerError("hold_full", f"needs {quantity} free units in the hold, has {self.free}", 409)
        elif self.cargo.get(good, 0) < quantity:
            raise LedgerError("goods", f"needs {quantity} {good}, has {self.cargo.get(good, 0)}", 409)
        number = self.next_order
        self.next_order += 1
        order = {"id": f"{owner}:{number}", "number": number, "ref": ref, "market": market, "good": good,
                 "side": side, "kind": kind, "price": price, "quantity": quantity, "remaining": quantity,
                 "escrow": price * quantity if side == BUY else quantity, "filled": 0, "value": 0, "fees": 0,
                 "status": OPEN, "cancelling": False, "created": now, "expires": expires, "finished": None}
        if side == BUY:
            self.credits -= order["escrow"]
        else:
            _add(self.cargo, {good: -quantity})
        self.reserved += quantity
        self.orders[order["id"]] = order
        self._orders_dirty.add(order["id"])
        self._changed()
        return order

    def _open(self, order_id: object) -> dict:
        order = self.orders.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            raise LedgerError("unknown_order", f"no order {order_id!r}", 404)
        if order["status"] != OPEN:
            raise LedgerError("not_open", f"order {order_id} is {order['status']}", 409)
        return order

    def mark_cancelling(self, order_id: object) -> bool:
        """Note that a cancel of the open order ``order_id`` was sent; returns False when one
        was sent before. Raises ``LedgerError`` 404 ``unknown_order``, 409 ``not_open``."""
        order = self._open(order_id)
        if order["cancelling"]:
            return False
        order["cancelling"] = True
        self._orders_dirty.add(order["id"])
        self._changed()
        return True

    def settle(self, key: str, *, market: str, order: object, side: object, good: object, price: object,
               quantity: object, fee: object, now: float) -> dict | None:
        """A fill of ``quantity`` units at ``price`` of the open order ``order`` on ``market``.
        A buy receives the goods (their room was reserved) and gets back ``(limit - price) x
        quantity`` of its escrow; a sell's room is freed and it is paid ``price x quantity -
        fee`` (``totals.fees`` += ``fee``). The order is ``"filled"`` when nothing remains.
        Returns the order, None for a key applied before. Raises ``LedgerError`` (nothing
        changes) for an unknown or finished order, another market, side or good, a quantity
        beyond the remaining one, a price above a buy's limit or below a sell's, or a fee
        outside 0..price x quantity."""
        if self._seen(key):
            return None
        o = self._open(order)
        if (o["market"], o["side"], o["good"]) != (market, side, good):
            raise LedgerError("mismatch", f"order {o['id']} is a {o['side']} of {o['good']} on {o['market']}", 409)
        quantity = _int(quantity, 1, o["remaining"], "bad_quantity", "quantity")
        price = _int(price, 1, MAX_PRICE, "bad_price", "price")
        if o["price"] is not None and (price > o["price"] if side == BUY else price < o["price"]):
            raise LedgerError("bad_price", f"price {price} is beyond the order's limit {o['price']}", 409)
        fee = _int(fee, 0, price * quantity, "bad_fee", "fee")
        o["remaining"] -= quantity
        o["filled"] += quantity
        o["value"] += price * quantity
        self.reserved -= quantity
        if side == BUY:
            o["escrow"] -= o["price"] * quantity
            self.credits += (o["price"] - price) * quantity
            _add(self.cargo, {good: quantity})
        else:
            o["escrow"] -= quantity
            o["fees"] += fee
            self.credits += price * quantity - fee
            self.totals["fees"] += fee
        if o["remaining"] == 0:
            o["status"], o["finished"] = FILLED, now
        self._orders_dirty.add(o["id"])
        self._changed(key, now)
        return o

    def closed(self, key: str, *, market: str, order: object, remaining: object, reason: object,
               now: float) -> dict | None:
        """The open order ``order`` ended on ``market`` with ``remaining`` units unfilled
        (which must be the ledger's own count), for ``reason`` (``CLOSE_REASONS``, its new
        status): a buy's remaining escrow goes back to ``credits`` and its room is released; a
        sell's remaining goods go back into the hold, into the room they kept. Returns the
        order, None for a key applied before. Raises ``LedgerError`` for an unknown or
        finished order, another market, another remaining count or an unknown reason."""
        if reason not in CLOSE_REASONS:
            raise LedgerError("bad_reason", f"reason must be one of {', '.join(CLOSE_REASONS)}")
        if self._seen(key):
            return None
        o = self._open(order)
        if o["market"] != market or remaining != o["remaining"]:
            raise LedgerError("mismatch", f"order {o['id']} has {o['remaining']} remaining on {o['market']}", 409)
        self.reserved -= o["remaining"]
        if o["side"] == BUY:
            self.credits += o["escrow"]
        else:
            _add(self.cargo, {o["good"]: o["escrow"]})
        o["escrow"], o["status"], o["finished"] = 0, reason, now
        self._orders_dirty.add(o["id"])
        self._changed(key, now)
        return o


def total_goods(ledgers: Iterable[Ledger]) -> dict[str, int]:
    """The goods of ``ledgers`` in holds and in sell escrow, per good (for audits and tests)."""
    out: dict[str, int] = {}
    for ledger in ledgers:
        _add(out, ledger.cargo)
        _add(out, ledger.escrow()[1])
    return out

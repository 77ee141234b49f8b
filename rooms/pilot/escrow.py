"""The orders' escrow in a pilot's ledger (docs/economy.md §5, §6): ``Escrow``, the part of
``ledger.Ledger`` that places orders and applies their fills and ends.

A buy escrows ``price x quantity`` credits and reserves ``quantity`` hold units; a sell moves
``quantity`` units of its good out of the hold and reserves their room, so that they always fit
back (see ``ledger``'s docstring). Each fill releases its share; the end of an order releases
the rest. Also the errors of every ledger operation (``LedgerError``).
"""

from __future__ import annotations

from ..economy.resources import REGIONS, RESOURCES
from ..market.book import BUY, LIMIT, MARKET, SELL

__all__ = ["Escrow", "LedgerError", "MAX_PRICE", "MAX_QUANTITY", "MAX_OPEN_ORDERS", "OPEN", "FILLED", "CLOSE_REASONS"]

MAX_PRICE = 1_000_000
"""Highest price, credits per unit."""
MAX_QUANTITY = 10_000
"""Largest order, units."""
MAX_OPEN_ORDERS = 50
"""Most open orders per pilot."""
OPEN = "open"
FILLED = "filled"
CLOSE_REASONS = ("cancelled", "expired", "unfilled", "rejected")
"""The ``reason``s of a ``closed`` post: also the final ``status`` of such an order."""


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


def _add(counter: dict[str, int], goods: dict[str, int]) -> None:
    for good, units in goods.items():
        counter[good] = counter.get(good, 0) + units
        if counter[good] == 0:
            del counter[good]


class Escrow:
    """The order operations of ``ledger.Ledger`` (a mixin: it uses the ledger's ``credits``,
    ``cargo``, ``reserved``, ``free``, ``orders``, ``next_order``, ``_seen``, ``_changed`` and
    ``_orders_dirty``)."""

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

"""A limit order book with price-time priority: the matching engine of the market room.

Orders are on one good. Prices are integers (credits per unit), quantities integers (units):
no float rounding anywhere. A book keeps two sides of price levels (``sortedcontainers.SortedDict``
price -> FIFO of resting orders): the best bid is the highest buy price, the best ask the lowest
sell price.

- ``submit(order)`` matches an incoming order against the other side, best price first and,
  at one price, oldest first (price-time priority, as exchanges and EVE Online's regional
  markets do). Each match is a ``Fill`` at the **resting** (maker) order's price, for the
  smaller remaining quantity (partial fills). A **limit** order's unfilled rest then rests in
  the book at its price; a **market** order's rest is dropped (it never rests). Orders of the
  same owner do not match each other: the incoming order stops at its own resting order's
  level (self-trade prevention, "cancel newest": its rest is dropped, like a market order's).
- ``cancel(order_id)`` removes a resting order; ``expire(now)`` removes the resting orders
  whose ``expires`` time (seconds) has passed, oldest expiry first.
- ``fee(notional)``: the market's fee on a fill, ``FEE_PERCENT`` % of its notional (price x
  quantity), rounded up to a whole credit, paid by the seller (a money sink).

The book holds no credits or goods: escrow is the market room's (what an order may still
spend is ``Order.remaining`` x its price for a buy, ``remaining`` units for a sell).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterator

from sortedcontainers import SortedDict

BUY = "buy"
SELL = "sell"
LIMIT = "limit"
MARKET = "market"
FEE_PERCENT = 2
"""The fee on each fill, percent of its notional (seed 001's market)."""


def fee(notional: int) -> int:
    """The fee on a fill of ``notional`` credits: ``FEE_PERCENT`` % rounded up (integers)."""
    return -(-int(notional) * FEE_PERCENT // 100)


@dataclasses.dataclass(slots=True, eq=False)
class Order:
    """One order. ``side``: ``BUY``/``SELL``; ``kind``: ``LIMIT``/``MARKET``; ``price``:
    credits per unit (a market order's is its limit of protection: None for none); ``quantity``
    and ``remaining``: units; ``seq``: arrival order (time priority); ``expires``: seconds, or
    None for good-till-cancelled. Orders compare by identity."""

    id: str
    owner: str
    side: str
    kind: str
    price: int | None
    quantity: int
    seq: int = 0
    expires: float | None = None
    remaining: int = -1

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.quantity


@dataclasses.dataclass(frozen=True, slots=True)
class Fill:
    """A match: ``quantity`` units at ``price`` between the resting ``maker`` order and the
    incoming ``taker`` order; ``buyer``/``seller`` are their owners."""

    maker: str
    taker: str
    buyer: str
    seller: str
    price: int
    quantity: int

    @property
    def notional(self) -> int:
        return self.price * self.quantity


class OrderBook:
    """The resting orders of one good (see the module docstring)."""

    def __init__(self) -> None:
        self._sides = {BUY: SortedDict(), SELL: SortedDict()}  # price -> deque of orders
        self._orders: dict[str, Order] = {}
        self._seq = 0
        self._stopped_by_self = False  # the last match stopped at the owner's own order

    # ---- queries -----------------------------------------------------------------------------
    def __contains__(self, order_id: str) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: str) -> Order | None:
        """The resting order ``order_id``, or None."""
        return self._orders.get(order_id)

    def best(self, side: str) -> int | None:
        """The best price of ``side`` (highest bid, lowest ask), or None when it is empty."""
        levels = self._sides[side]
        if not levels:
            return None
        return levels.peekitem(-1 if side == BUY else 0)[0]

    def depth(self, side: str, levels: int = 10) -> list[tuple[int, int]]:
        """The ``levels`` best price levels of ``side`` as ``(price, total remaining)``."""
        book = self._sides[side]
        prices = reversed(book.keys()) if side == BUY else iter(book.keys())
        out = []
        for price in prices:
            if len(out) >= levels:
                break
            out.append((price, sum(o.remaining for o in book[price])))
        return out

    def orders(self) -> Iterator[Order]:
        """Every resting order, in arrival order."""
        return iter(sorted(self._orders.values(), key=lambda o: o.seq))

    @property
    def seq(self) -> int:
        """The last arrival number given (``Order.seq``; 0 for a new book)."""
        return self._seq

    def restore(self, orders: list[Order], seq: int) -> None:
        """Rebuild an empty book from resting orders as persisted (their ``seq`` and
        ``remaining`` kept, no matching), then number arrivals after ``seq``: a book restored
        from its resting orders and its ``seq`` behaves exactly as the book it was saved from.
        Raises ``ValueError`` for a book that is not empty, an order that is not a limit order
        with a price and ``0 < remaining <= quantity``, a repeated id or ``seq``, an order
        ``seq`` above ``seq``, or orders whose prices cross (a bid at or above an ask)."""
        if self._orders:
            raise ValueError("restore needs an empty book")
        ordered = sorted(orders, key=lambda o: o.seq)
        seen: set[int] = set()
        for order in ordered:
            if order.kind != LIMIT or order.side not in (BUY, SELL) or order.price is None or order.price <= 0:
                raise ValueError(f"order {order.id!r} cannot rest")
            if not 0 < order.remaining <= order.quantity or not 0 < order.seq <= seq or order.seq in seen:
                raise ValueError(f"order {order.id!r}: bad remaining or seq")
            if order.id in self._orders:
                raise ValueError(f"order {order.id!r} is repeated")
            seen.add(order.seq)
            self._sides[order.side].setdefault(order.price, collections.deque()).append(order)
            self._orders[order.id] = order
        bid, ask = self.best(BUY), self.best(SELL)
        if bid is not None and ask is not None and bid >= ask:
            self._sides = {BUY: SortedDict(), SELL: SortedDict()}
            self._orders = {}
            raise ValueError(f"restored orders cross: bid {bid} >= ask {ask}")
        self._seq = int(seq)

    # ---- changes ------------------------------------------------------------------------------
    def submit(self, order: Order) -> list[Fill]:
        """Match ``order`` and rest its limit remainder (see the module docstring); returns
        the fills in order. Raises ``ValueError`` for a non-positive quantity or price, an
        unknown side or kind, a limit order without a price, or an id already resting."""
        if order.side not in (BUY, SELL) or order.kind not in (LIMIT, MARKET):
            raise ValueError(f"bad order side/kind: {order.side!r}/{order.kind!r}")
        if order.quantity <= 0 or (order.price is not None and order.price <= 0):
            raise ValueError("quantity and price must be positive")
        if order.kind == LIMIT and order.price is None:
            raise ValueError("a limit order needs a price")
        if order.id in self._orders:
            raise ValueError(f"order {order.id!r} is already in the book")
        self._seq += 1
        order.seq = self._seq
        fills = self._match(order)
        if order.remaining > 0 and order.kind == LIMIT and not self._stopped_by_self:
            self._sides[order.side].setdefault(order.price, collections.deque()).append(order)
            self._orders[order.id] = order
        return fills

    def _match(self, order: Order) -> list[Fill]:
        self._stopped_by_self = False
        other = SELL if order.side == BUY else BUY
        levels = self._sides[other]
        fills = []
        best = 0 if other == SELL else -1
        limit, buying, owner, orders = order.price, order.side == BUY, order.owner, self._orders
        while order.remaining > 0 and levels:
            price, queue = levels.peekitem(best)
            if limit is not None and (price > limit if buying else price < limit):
                break
            while queue and order.remaining > 0:  # the level, oldest first
                maker = queue[0]
                if maker.owner == owner:
                    self._stopped_by_self = True
                    return fills
                qty = min(maker.remaining, order.remaining)
                maker.remaining -= qty
                order.remaining -= qty
                fills.append(Fill(maker.id, order.id, owner, maker.owner, price, qty) if buying
                             else Fill(maker.id, order.id, maker.owner, owner, price, qty))
                if maker.remaining == 0:
                    queue.popleft()
                    del orders[maker.id]
            if not queue:
                del levels[price]
        return fills

    def cancel(self, order_id: str) -> Order | None:
        """Remove the resting order ``order_id``; returns it (with what remained), or None."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        levels = self._sides[order.side]
        queue = levels[order.price]
        queue.remove(order)
        if not queue:
            del levels[order.price]
        return order

    def expire(self, now: float) -> list[Order]:
        """Remove and return the resting orders whose ``expires`` is at or before ``now``."""
        due = sorted((o for o in self._orders.values() if o.expires is not None and o.expires <= now),
                     key=lambda o: (o.expires, o.seq))
        return [self.cancel(o.id) for o in due]

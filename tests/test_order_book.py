"""The market's matching engine (``starhold.rooms.market.book``): price-time priority, partial
fills at the maker's price, market orders that never rest, self-trade prevention, cancel and
expiry, the fee; and 3,000 random orders matched exactly as a plain reference book would."""

from __future__ import annotations

import random

import pytest

from starhold.rooms.market.book import BUY, LIMIT, MARKET, SELL, Fill, Order, OrderBook, fee


def limit(order_id, owner, side, price, qty, expires=None):
    return Order(order_id, owner, side, LIMIT, price, qty, expires=expires)


def test_price_then_time_priority_and_fills_at_the_makers_price():
    book = OrderBook()
    assert book.submit(limit("a1", "ann", SELL, 105, 5)) == []
    book.submit(limit("a2", "bob", SELL, 100, 3))
    book.submit(limit("a3", "cat", SELL, 100, 4))  # same price, later: behind a2
    fills = book.submit(limit("b1", "dan", BUY, 106, 9))
    assert fills == [Fill("a2", "b1", "dan", "bob", 100, 3), Fill("a3", "b1", "dan", "cat", 100, 4),
                     Fill("a1", "b1", "dan", "ann", 105, 2)]
    assert book.get("a1").remaining == 3 and "b1" not in book  # filled in full: nothing rests
    assert book.depth(SELL) == [(105, 3)] and book.best(BUY) is None


def test_a_limit_remainder_rests_and_a_market_remainder_is_dropped():
    book = OrderBook()
    book.submit(limit("s1", "ann", SELL, 50, 2))
    fills = book.submit(limit("b1", "bob", BUY, 55, 5))
    assert [f.quantity for f in fills] == [2] and book.get("b1").remaining == 3
    assert book.best(BUY) == 55 and book.depth(BUY) == [(55, 3)]
    fills = book.submit(Order("m1", "cat", SELL, MARKET, None, 10))
    assert fills == [Fill("b1", "m1", "bob", "cat", 55, 3)] and "m1" not in book and len(book) == 0


def test_a_limit_price_stops_matching():
    book = OrderBook()
    book.submit(limit("s1", "ann", SELL, 60, 1))
    book.submit(limit("s2", "ann", SELL, 70, 1))
    assert [f.price for f in book.submit(limit("b1", "bob", BUY, 65, 5))] == [60]
    assert book.best(BUY) == 65 and book.best(SELL) == 70


def test_own_orders_never_match():
    book = OrderBook()
    book.submit(limit("s1", "ann", SELL, 10, 5))
    assert book.submit(limit("b1", "ann", BUY, 12, 5)) == []
    assert "b1" not in book and book.get("s1").remaining == 5  # the newer one is dropped


def test_cancel_and_expiry():
    book = OrderBook()
    book.submit(limit("s1", "ann", SELL, 10, 5, expires=100.0))
    book.submit(limit("s2", "bob", SELL, 10, 5, expires=50.0))
    book.submit(limit("s3", "cat", SELL, 11, 5))
    assert book.cancel("nope") is None
    assert book.cancel("s3").remaining == 5 and book.depth(SELL) == [(10, 10)]
    assert [o.id for o in book.expire(60.0)] == ["s2"]
    assert [o.id for o in book.expire(1000.0)] == ["s1"] and len(book) == 0 and book.best(SELL) is None


@pytest.mark.parametrize("order", [
    Order("x", "a", BUY, LIMIT, 10, 0), Order("x", "a", BUY, LIMIT, 0, 1), Order("x", "a", BUY, LIMIT, None, 1),
    Order("x", "a", "hold", LIMIT, 10, 1), Order("x", "a", BUY, "stop", 10, 1), Order("x", "a", SELL, MARKET, -1, 1),
])
def test_bad_orders_are_refused_and_change_nothing(order):
    book = OrderBook()
    book.submit(limit("s1", "b", SELL, 10, 1))
    with pytest.raises(ValueError):
        book.submit(order)
    assert book.depth(SELL) == [(10, 1)] and len(book) == 1


def test_the_same_id_twice_is_refused():
    book = OrderBook()
    book.submit(limit("s1", "b", SELL, 10, 1))
    with pytest.raises(ValueError):
        book.submit(limit("s1", "c", SELL, 11, 1))


def test_fee_is_two_percent_rounded_up():
    assert [fee(n) for n in (0, 1, 49, 50, 51, 100, 12345)] == [0, 1, 1, 1, 2, 2, 247]


class ReferenceBook:
    """A plain book: a list scanned in full for every order (the obvious, slow way)."""

    def __init__(self):
        self.resting: list[list] = []  # [id, owner, side, price, remaining, seq]
        self.seq = 0

    def submit(self, order_id, owner, side, kind, price, qty):
        self.seq += 1
        fills, remaining = [], qty
        while remaining:
            crossing = [r for r in self.resting if r[2] != side and (
                price is None or (r[3] <= price if side == BUY else r[3] >= price))]
            if not crossing:
                break
            best = min(crossing, key=lambda r: (r[3] if side == BUY else -r[3], r[5]))
            if best[1] == owner:
                return fills  # self-trade: the rest is dropped
            q = min(best[4], remaining)
            best[4] -= q
            remaining -= q
            fills.append((best[0], order_id, best[3], q))
            if not best[4]:
                self.resting.remove(best)
        if remaining and kind == LIMIT:
            self.resting.append([order_id, owner, side, price, remaining, self.seq])
        return fills


def test_three_thousand_random_orders_match_as_the_reference_book_does():
    rng = random.Random(16)
    book, ref = OrderBook(), ReferenceBook()
    for i in range(3000):
        side, owner = rng.choice((BUY, SELL)), f"p{rng.randrange(8)}"
        if rng.random() < 0.1 and len(book):
            victim = rng.choice([o.id for o in book.orders()])
            cancelled = book.cancel(victim)
            ref.resting = [r for r in ref.resting if r[0] != victim]
            assert cancelled is not None
            continue
        kind = MARKET if rng.random() < 0.15 else LIMIT
        price = None if kind == MARKET else rng.randint(90, 110)
        qty = rng.randint(1, 20)
        fills = book.submit(Order(f"o{i}", owner, side, kind, price, qty))
        assert [(f.maker, f.taker, f.price, f.quantity) for f in fills] == ref.submit(f"o{i}", owner, side, kind,
                                                                                         price, qty)
        assert sum(f.quantity for f in fills) <= qty
    assert sorted((o.id, o.remaining) for o in book.orders()) == sorted((r[0], r[4]) for r in ref.resting)

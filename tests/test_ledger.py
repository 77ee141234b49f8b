"""The pilot's ledger, pure (rooms/pilot/ledger.py): every operation, its errors (which change
nothing), keys applied once, storage round trips, bounds, and conservation of credits and goods
over random operation sequences between two pilots with duplicated keys."""

from __future__ import annotations

import copy
import random

import pytest

from starhold.rooms.economy.resources import RESOURCES
from starhold.rooms.market.book import fee
from starhold.rooms.pilot import ledger as L
from starhold.rooms.pilot.ledger import Ledger, LedgerError, total_goods

T0 = 1_800_000_000.0


def fresh(**cargo) -> Ledger:
    ledger = Ledger.create(T0)
    if cargo:
        assert ledger.stow("seed", cargo, "mine", T0) == {}
    return ledger


def state(ledger: Ledger) -> dict:
    return copy.deepcopy({k: getattr(ledger, k) for k in ("credits", "cargo", "capacity", "reserved", "totals",
                                                           "version", "next_order", "orders", "applied")})


def place(ledger: Ledger, **kw):
    args = {"market": "core", "good": "ice", "side": "buy", "kind": "limit", "price": 10, "quantity": 5,
            "expires": T0 + 3600, "now": T0, "region": "core", "owner": "u-1"}
    args.update(kw)
    return ledger.place(**args)


def roundtrip(ledger: Ledger, store: dict, now: float = T0) -> Ledger:
    puts, deletes = ledger.take_writes()
    store.update(puts)
    for key in deletes:
        store.pop(key, None)
    return Ledger.load(dict(store), now)


def test_a_new_ledger_is_granted_the_starting_credits_once():
    ledger = Ledger.create(T0)
    assert ledger.credits == L.STARTING_CREDITS == 1000 and ledger.totals["granted"] == 1000
    assert ledger.capacity == L.HOLD_CAPACITY == 100 and ledger.free == 100 and ledger.version == 1
    store = {}
    again = roundtrip(ledger, store)
    assert again.credits == 1000 and again.version == 1 and again.totals["granted"] == 1000
    assert Ledger.load({}, T0) is None


def test_stow_adds_what_fits_in_resource_order_and_returns_the_surplus():
    ledger = fresh()
    assert ledger.stow("k1", {"ice": 30, "ferrite": 50}, "mine", T0) == {}
    assert ledger.cargo == {"ferrite": 50, "ice": 30} and ledger.totals["mined"] == {"ferrite": 50, "ice": 30}
    # 20 units free: ferrite comes first in RESOURCES, then silicates, then ice
    surplus = ledger.stow("k2", {"ice": 10, "silicates": 15, "ferrite": 10}, "loot", T0)
    assert surplus == {"silicates": 5, "ice": 10}
    assert ledger.cargo == {"ferrite": 60, "silicates": 10, "ice": 30} and ledger.free == 0
    assert ledger.totals["looted"] == {"ferrite": 10, "silicates": 10}
    version = ledger.version
    assert ledger.stow("k2", {"ice": 10}, "loot", T0) is None  # a duplicate: nothing
    assert ledger.version == version and sum(ledger.cargo.values()) == 100


@pytest.mark.parametrize("goods, source, code", [
    ({"gold": 1}, "mine", "unknown_good"), ({"ice": -1}, "mine", "bad_quantity"), ({"ice": 1.5}, "mine", "bad_quantity"),
    ({"ice": True}, "mine", "bad_quantity"), ({"ice": 10_001}, "mine", "bad_quantity"), (["ice"], "mine", "bad_goods"),
    ({"ice": 1}, "steal", "bad_source"),
])
def test_bad_stows_change_nothing(goods, source, code):
    ledger = fresh(ice=5)
    before = state(ledger)
    with pytest.raises(LedgerError) as err:
        ledger.stow("k", goods, source, T0)
    assert err.value.code == code and err.value.status == 400
    assert state(ledger) == before


def test_bounty_credits_once_and_refuses_bad_amounts():
    ledger = fresh()
    assert ledger.bounty("b1", 250, T0) is True
    assert ledger.bounty("b1", 250, T0) is False
    assert ledger.credits == 1250 and ledger.totals["bounties"] == 250
    before = state(ledger)
    for bad in (0, -5, 2.5, "10", None, L.MAX_CREDITS_OP + 1):
        with pytest.raises(LedgerError):
            ledger.bounty("b2", bad, T0)
    assert state(ledger) == before


def test_destroyed_removes_half_of_each_good_rounded_down():
    ledger = fresh(ice=7, ferrite=10, platinum=1)
    lost = ledger.destroyed("d1", T0)
    assert lost == {"ferrite": 5, "ice": 3}
    assert ledger.cargo == {"ferrite": 5, "ice": 4, "platinum": 1} and ledger.totals["lost"] == lost
    assert ledger.destroyed("d1", T0) is None and ledger.cargo["ferrite"] == 5
    assert ledger.destroyed("d2", T0) == {"ferrite": 2, "ice": 2}
    assert Ledger.create(T0).destroyed("d", T0) == {}


def test_a_buy_escrows_credits_and_reserves_hold_space():
    ledger = fresh(ice=50)
    order = place(ledger, price=30, quantity=20)
    assert order["id"] == "u-1:1" and order["escrow"] == 600 and order["status"] == "open"
    assert ledger.credits == 400 and ledger.reserved == 20 and ledger.free == 30
    assert ledger.escrow() == (600, {})
    # a stow cannot use the reserved space
    assert ledger.stow("k", {"ferrite": 40}, "mine", T0) == {"ferrite": 10}


def test_a_sell_moves_goods_out_and_keeps_their_room():
    ledger = fresh(ice=50)
    order = place(ledger, side="sell", price=12, quantity=20)
    assert ledger.cargo == {"ice": 30} and ledger.reserved == 20 and ledger.free == 50
    assert order["escrow"] == 20 and ledger.escrow() == (0, {"ice": 20})
    ledger.stow("k", {"ferrite": 100}, "mine", T0)  # fill the hold meanwhile
    assert ledger.free == 0
    ledger.closed("c", market="core", order=order["id"], remaining=20, reason="cancelled", now=T0 + 5)
    assert ledger.cargo == {"ferrite": 50, "ice": 50} and ledger.reserved == 0 and ledger.free == 0
    assert ledger.orders[order["id"]]["status"] == "cancelled" and ledger.orders[order["id"]]["escrow"] == 0


@pytest.mark.parametrize("kw, code, status", [
    ({"market": "nowhere"}, "bad_market", 400), ({"good": "gold"}, "unknown_good", 400),
    ({"side": "hold"}, "bad_side", 400), ({"kind": "stop"}, "bad_kind", 400),
    ({"price": 0}, "bad_price", 400), ({"price": -3}, "bad_price", 400), ({"price": 1_000_001}, "bad_price", 400),
    ({"price": 2.5}, "bad_price", 400), ({"price": "5"}, "bad_price", 400),
    ({"price": None}, "price_required", 400), ({"price": None, "kind": "market"}, "price_required", 400),
    ({"quantity": 0}, "bad_quantity", 400), ({"quantity": 10_001}, "bad_quantity", 400),
    ({"quantity": True}, "bad_quantity", 400), ({"quantity": None}, "bad_quantity", 400),
    ({"region": None}, "in_transit", 409), ({"region": "mid"}, "wrong_region", 409),
    ({"price": 101, "quantity": 10}, "credits", 409), ({"quantity": 61}, "hold_full", 409),
    ({"side": "sell", "quantity": 41}, "goods", 409), ({"side": "sell", "good": "exotics"}, "goods", 409),
])
def test_bad_orders_get_their_error_and_change_nothing(kw, code, status):
    ledger = fresh(ice=40)
    before = state(ledger)
    with pytest.raises(LedgerError) as err:
        place(ledger, **kw)
    assert (err.value.code, err.value.status) == (code, status), err.value.message
    assert state(ledger) == before


def test_a_market_sell_needs_no_price_and_open_orders_are_limited():
    ledger = fresh(ice=100)
    order = place(ledger, side="sell", kind="market", price=None, quantity=1)
    assert order["price"] is None
    for _ in range(L.MAX_OPEN_ORDERS - 1):
        place(ledger, side="sell", quantity=1)
    before = state(ledger)
    with pytest.raises(LedgerError) as err:
        place(ledger, side="sell", quantity=1)
    assert err.value.code == "too_many_orders" and state(ledger) == before


def test_buy_fills_refund_the_price_improvement_and_finish_the_order():
    ledger = fresh()
    order = place(ledger, price=30, quantity=10)
    assert ledger.credits == 700
    out = ledger.settle("s1", market="core", order=order["id"], side="buy", good="ice", price=25, quantity=4,
                        fee=fee(100), now=T0 + 1)
    assert out["remaining"] == 6 and out["escrow"] == 180 and out["value"] == 100
    assert ledger.credits == 720 and ledger.cargo == {"ice": 4} and ledger.reserved == 6
    assert ledger.totals["fees"] == 0  # the seller pays the fee
    assert ledger.settle("s1", market="core", order=order["id"], side="buy", good="ice", price=25, quantity=4,
                         fee=2, now=T0 + 1) is None
    ledger.settle("s2", market="core", order=order["id"], side="buy", good="ice", price=30, quantity=6, fee=4,
                  now=T0 + 2)
    assert ledger.orders[order["id"]]["status"] == "filled" and ledger.orders[order["id"]]["finished"] == T0 + 2
    assert ledger.credits == 1000 - 100 - 180 and ledger.cargo == {"ice": 10} and ledger.reserved == 0
    assert ledger.escrow() == (0, {})


def test_sell_fills_pay_the_proceeds_minus_the_fee():
    ledger = fresh(ice=10)
    order = place(ledger, side="sell", price=50, quantity=10)
    ledger.settle("s1", market="core", order=order["id"], side="sell", good="ice", price=55, quantity=3, fee=fee(165),
                  now=T0)
    assert ledger.credits == 1000 + 165 - 4 and ledger.totals["fees"] == 4 and ledger.reserved == 7
    ledger.closed("c1", market="core", order=order["id"], remaining=7, reason="expired", now=T0 + 9)
    assert ledger.cargo == {"ice": 7} and ledger.reserved == 0 and ledger.orders[order["id"]]["status"] == "expired"


def test_closing_a_buy_refunds_its_remaining_escrow():
    ledger = fresh()
    order = place(ledger, price=20, quantity=10)
    ledger.settle("s", market="core", order=order["id"], side="buy", good="ice", price=20, quantity=3, fee=2, now=T0)
    assert ledger.closed("c", market="core", order=order["id"], remaining=7, reason="unfilled", now=T0) is not None
    assert ledger.credits == 940 and ledger.reserved == 0 and ledger.cargo == {"ice": 3}
    assert ledger.closed("c", market="core", order=order["id"], remaining=7, reason="unfilled", now=T0) is None


@pytest.mark.parametrize("kw, code", [
    ({"order": "u-1:99"}, "unknown_order"), ({"order": 5}, "unknown_order"), ({"market": "mid"}, "mismatch"),
    ({"side": "sell"}, "mismatch"), ({"good": "ferrite"}, "mismatch"), ({"quantity": 11}, "bad_quantity"),
    ({"quantity": 0}, "bad_quantity"), ({"price": 31}, "bad_price"), ({"price": 0}, "bad_price"),
    ({"fee": -1}, "bad_fee"), ({"fee": 301}, "bad_fee"),
])
def test_bad_settles_change_nothing(kw, code):
    ledger = fresh()
    order = place(ledger, price=30, quantity=10)
    args = {"market": "core", "order": order["id"], "side": "buy", "good": "ice", "price": 30, "quantity": 10,
            "fee": 6, "now": T0}
    args.update(kw)
    before = state(ledger)
    with pytest.raises(LedgerError) as err:
        ledger.settle("s", **args)
    assert err.value.code == code and state(ledger) == before


def test_a_sell_fill_below_its_limit_and_ops_on_finished_orders_are_refused():
    ledger = fresh(ice=10)
    order = place(ledger, side="sell", price=50, quantity=10)
    with pytest.raises(LedgerError) as err:
        ledger.settle("s", market="core", order=order["id"], side="sell", good="ice", price=49, quantity=1, fee=1,
                      now=T0)
    assert err.value.code == "bad_price"
    ledger.closed("c", market="core", order=order["id"], remaining=10, reason="cancelled", now=T0)
    before = state(ledger)
    for call in (lambda: ledger.closed("c2", market="core", order=order["id"], remaining=0, reason="expired", now=T0),
                 lambda: ledger.settle("s2", market="core", order=order["id"], side="sell", good="ice", price=50,
                                       quantity=1, fee=1, now=T0),
                 lambda: ledger.mark_cancelling(order["id"])):
        with pytest.raises(LedgerError) as err:
            call()
        assert err.value.code == "not_open" and err.value.status == 409
    with pytest.raises(LedgerError) as err:
        ledger.closed("c3", market="core", order=order["id"], remaining=0, reason="gone", now=T0)
    assert err.value.code == "bad_reason" and state(ledger) == before


def test_a_closed_with_another_remaining_count_is_refused():
    ledger = fresh()
    order = place(ledger, price=10, quantity=5)
    with pytest.raises(LedgerError) as err:
        ledger.closed("c", market="core", order=order["id"], remaining=4, reason="cancelled", now=T0)
    assert err.value.code == "mismatch" and ledger.orders[order["id"]]["status"] == "open"


def test_everything_survives_storage_and_deletes_are_written():
    store: dict = {}
    ledger = fresh(ice=20)
    order = place(ledger, side="sell", price=10, quantity=5, ref="abc")
    ledger.mark_cancelling(order["id"])
    ledger.bounty("b", 7, T0)
    loaded = roundtrip(ledger, store)
    assert state(loaded) == state(ledger)
    assert loaded.find_ref("abc")["id"] == order["id"] and loaded.orders[order["id"]]["cancelling"] is True
    assert loaded.take_writes() == ({}, [])
    # finished orders go after ORDER_KEEP, keys after KEY_KEEP: as deletes
    loaded.closed("c", market="core", order=order["id"], remaining=5, reason="cancelled", now=T0 + 10)
    later = roundtrip(loaded, store, now=T0 + 10 + L.ORDER_KEEP)
    assert later.orders == {} and later.applied == {}
    puts, deletes = later.take_writes()
    assert f"{L.ORDER_PREFIX}{order['id']}" in deletes and f"{L.KEY_PREFIX}b" in deletes
    store.update(puts)
    for key in deletes:
        store.pop(key)
    assert set(store) == {L.STATE_KEY}


def test_keys_and_finished_orders_are_bounded(monkeypatch):
    monkeypatch.setattr(L, "KEY_LIMIT", 50)
    monkeypatch.setattr(L, "ORDER_LIMIT", 5)
    ledger = fresh()
    for i in range(120):
        ledger.bounty(f"b{i}", 1, T0 + i)
    assert len(ledger.applied) == 50 and list(ledger.applied)[0] == "b70"
    assert ledger.bounty("b119", 1, T0 + 200) is False and ledger.bounty("b3", 1, T0 + 200) is True
    for i in range(8):
        order = place(ledger, price=1, quantity=1, now=T0 + i)
        ledger.closed(f"c{i}", market="core", order=order["id"], remaining=1, reason="cancelled", now=T0 + i)
    assert [o["number"] for o in ledger.orders.values()] == [4, 5, 6, 7, 8]
    open_order = place(ledger, price=1, quantity=1)
    ledger.expire(T0 + 10 * L.ORDER_KEEP)
    assert list(ledger.orders) == [open_order["id"]]  # open orders are never dropped


class Market:
    """A tiny fair market between ledgers for the random test: it matches a new order against
    the resting ones at the resting price (same good, other side, other owner), pays from the
    escrow as docs/economy.md §5 says, and counts what it holds: goods of open sells and
    credits of open buys stay in the pilots' escrow, so it holds nothing itself but the fees."""

    def __init__(self, rng: random.Random):
        self.rng, self.resting, self.fees, self.trades = rng, [], 0, 0
        self.outbox: list = []  # (ledger, method, kwargs): posts, delivered at least once

    def submit(self, owner: Ledger, order: dict) -> None:
        for maker_owner, maker in list(self.resting):
            if order["remaining"] == 0:
                break
            if maker_owner is owner or maker["good"] != order["good"] or maker["side"] == order["side"]:
                continue
            buy, sell = (order, maker) if order["side"] == "buy" else (maker, order)
            price = maker["price"]
            if price is None or (buy["price"] is not None and price > buy["price"]) or \
                    (sell["price"] is not None and price < sell["price"]):
                continue
            qty = min(order["remaining"], maker["remaining"])
            self.trades += 1
            f = fee(price * qty)
            self.fees += f
            for who, o in ((owner, order), (maker_owner, maker)):
                o["remaining"] -= qty
                self.outbox.append((who, "settle", {"key": f"settle:{self.trades}:{o['side']}", "market": "core",
                                                    "order": o["id"], "side": o["side"], "good": o["good"],
                                                    "price": price, "quantity": qty,
                                                    "fee": f if o["side"] == "sell" else 0}))
            if maker["remaining"] == 0:
                self.resting.remove((maker_owner, maker))
        if order["remaining"] and order["kind"] == "limit":
            self.resting.append((owner, order))
        elif order["remaining"]:
            self.close(owner, order, "unfilled")

    def close(self, owner: Ledger, order: dict, reason: str) -> None:
        self.outbox.append((owner, "closed", {"key": f"closed:{order['id']}", "market": "core", "order": order["id"],
                                              "remaining": order["remaining"], "reason": reason}))

    def cancel(self, owner: Ledger, order_id: str) -> None:
        for who, o in self.resting:
            if who is owner and o["id"] == order_id:
                self.resting.remove((who, o))
                self.close(owner, o, "cancelled")
                return

    def deliver(self, now: float) -> None:
        """Deliver the posts in order, each once or twice (a duplicate right after)."""
        while self.outbox:
            who, method, kw = self.outbox.pop(0)
            kw = dict(kw)
            key = kw.pop("key")
            for _ in range(1 + (self.rng.random() < 0.3)):
                getattr(who, method)(key, now=now, **kw)


@pytest.mark.parametrize("seed", range(6))
def test_credits_and_goods_are_conserved_over_random_operations(seed):
    rng = random.Random(seed)
    pilots = [Ledger.create(T0), Ledger.create(T0)]
    market, now, keys = Market(rng), T0, 0
    mined = {g: 0 for g in RESOURCES}
    bounties, errors = 0, {}
    for step in range(1500):
        now += rng.uniform(0, 2)
        who = rng.randrange(2)
        p = pilots[who]
        op = rng.random()
        keys += 1
        key = f"k{keys}" if rng.random() > 0.2 else f"k{rng.randrange(1, keys + 1)}"  # duplicates and replays
        try:
            if op < 0.25:
                goods = {rng.choice(RESOURCES[:3]): rng.randint(0, 30) for _ in range(2)}
                surplus = p.stow(key, goods, "mine", now)
                if surplus is not None:
                    for g, u in goods.items():
                        mined[g] += u - surplus.get(g, 0)
            elif op < 0.32:
                if p.bounty(key, rng.randint(1, 500), now):
                    bounties = sum(x.totals["bounties"] for x in pilots)
            elif op < 0.36:
                lost = p.destroyed(key, now)
                if lost:
                    for g, u in lost.items():
                        mined[g] -= u  # gone with the wreck
            elif op < 0.85:
                side = "sell" if rng.random() < sum(p.cargo.values()) / p.capacity else "buy"  # sell more when the hold fills
                side = rng.choice(["buy", "sell"]) if rng.random() < 0.2 else side
                good = rng.choice(RESOURCES[:3]) if side == "buy" else (rng.choice(list(p.cargo) or ["ice"]))
                kind = rng.choice(["limit", "limit", "market"])
                price = rng.randint(10, 40)
                price = rng.choice([None, price]) if (kind, side) == ("market", "sell") else price
                order = place(p, good=good, side=side, kind=kind, price=price, quantity=rng.randint(1, 15), now=now,
                              owner=f"p{who}", expires=now + 100)
                market.submit(p, dict(order))
            else:
                mine = [o for o in p.open_orders() if not o["cancelling"]]
                if mine:
                    order = rng.choice(mine)
                    p.mark_cancelling(order["id"])
                    market.cancel(p, order["id"])
        except LedgerError as exc:
            assert exc.status in (400, 409), exc
            errors[exc.code] = errors.get(exc.code, 0) + 1
        if rng.random() < 0.5:
            market.deliver(now)
        if not market.outbox:  # nothing in flight: everything is in the ledgers
            credits = sum(x.credits + x.escrow()[0] for x in pilots)
            assert credits == 2 * L.STARTING_CREDITS + bounties - market.fees, step
            assert sum(x.totals["fees"] for x in pilots) == market.fees
            assert total_goods(pilots) == {g: u for g, u in mined.items() if u}, step
        for x in pilots:
            assert x.free >= 0 and x.reserved == sum(o["remaining"] for o in x.open_orders())
            assert all(u > 0 for u in x.cargo.values())
    market.deliver(now)
    for owner, order in list(market.resting):
        market.cancel(owner, order["id"])
    market.deliver(now)
    assert all(x.reserved == 0 and x.escrow() == (0, {}) for x in pilots)
    assert sum(x.credits for x in pilots) == 2 * L.STARTING_CREDITS + bounties - market.fees
    assert sum(x.totals["fees"] for x in pilots) == market.fees and market.trades > 40, (market.trades, errors)

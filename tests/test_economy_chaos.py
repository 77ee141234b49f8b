"""Conservation of credits and goods across the pilot rooms and a market, whatever is killed
(issue 16, "Must hold"; docs/economy.md §7).

Six pilots trade two goods on the core market: ``ORDERS`` random orders (limit and market,
buys and sells, some with short lives that expire on the manual clock), cancels, retries of
the same client ``ref``, orders refused for want of credits or goods, and fresh goods stowed
from a system. Meanwhile a random market or pilot room is killed (``RoomRuntime.crash``: its
open transaction and held output are lost) about once every ``KILL_EVERY`` operations. Then
every room is woken until no post is left, and:

- credits: what the pilots hold plus their buy escrow plus the market's fees equals what was
  granted, and the fees the sellers paid equal the market's;
- goods, per good: holds plus sell escrow equals what was stowed (mined);
- no order fills twice: per order, the market's trades never exceed its quantity and equal
  what the pilot's ledger counts as filled;
- every order the pilots hold open rests in the book, and nothing else does;
- the book equals a replay of the market's log of accepted orders.

Everything runs in process on real SQLite files (``InProcessDirectory``); posts are delivered
by the rooms' outboxes in real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random

import pytest

from starhold import HttpRequest
from starhold._runtime import posts
from starhold._runtime.handle import RoomGone
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import ManualClock
from starhold.rooms.market import room as _market  # noqa: F401  the market kind
from starhold.rooms.market.store import replay
from starhold.rooms.pilot import room as _pilot  # noqa: F401  the pilot kind
from starhold.rooms.pilot.ledger import total_goods

ORDERS = int(os.environ.get("STARHOLD_CHAOS_ORDERS", "10000"))
"""Orders placed (the issue asks for 10,000)."""
KILL_EVERY = 40
"""One room killed per this many operations, on average."""
PILOTS = [f"g-{i:016x}" for i in range(1, 7)]
GOODS = ("ferrite", "ice")
MARKET = "core"
SYSTEM = "system/sol"
KILLABLE = [("market", MARKET), *(("pilot", p) for p in PILOTS)]


class Economy:
    """The rooms of the test and the operations on them."""

    def __init__(self, directory: InProcessDirectory, clock: ManualClock, rng: random.Random):
        self.directory, self.clock, self.rng = directory, clock, rng
        self.kills = 0
        self.outcomes: dict[int, int] = {}
        self.stow_keys = 0

    async def request(self, kind: str, room_id: str, request: HttpRequest):
        for _ in range(20):
            handle = await self.directory.get(kind, room_id)
            try:
                return await handle.request(request)
            except RoomGone:
                continue
        raise AssertionError(f"{kind}/{room_id} keeps going away")

    async def pilot(self, player: str, method: str, path: str, body: dict | None = None, sender: str = "",
                    key: str = ""):
        data = json.dumps(body).encode() if body is not None else b""
        return await self.request("pilot", player, HttpRequest(method, path, body=data, sender=sender, key=key))

    async def start(self) -> None:
        """Each pilot's record (a checkout then a checkin at a system of the core) and goods."""
        for player in PILOTS:
            out = await self.pilot(player, "POST", "checkout", {"system": "sol", "name": player[-4:],
                                                                  "region": MARKET}, sender=SYSTEM)
            assert out.status == 200, out
            checkout = out.body["checkout"]
            out = await self.pilot(player, "POST", "checkin", {"checkout": checkout, "ship": None, "route": []},
                                   sender=SYSTEM)
            assert out.status == 200 and out.body["applied"], out
            await self.stow(player, {g: 20 for g in GOODS})

    async def stow(self, player: str, goods: dict) -> None:
        self.stow_keys += 1
        out = await self.pilot(player, "POST", "stow", {"goods": goods, "source": "mine", "from": "field:0"},
                               sender=SYSTEM, key=f"stow:test:{self.stow_keys}")
        assert out.status == 200, out

    async def kill(self) -> None:
        kind, room_id = self.rng.choice(KILLABLE)
        runtime = self.directory.runtime(kind, room_id)
        if runtime is not None and runtime.state == "active":
            await runtime.crash()
            self.kills += 1

    async def step(self, n: int) -> None:
        rng = self.rng
        player = rng.choice(PILOTS)
        roll = rng.random()
        if roll < 0.04:  # fresh goods, when the hold has room for them (no surplus goes back)
            me = (await self.pilot(player, "GET", "me")).body
            if me["free"] >= 6:
                await self.stow(player, {rng.choice(GOODS): rng.randint(1, 6)})
            return
        if roll < 0.22:  # cancel one of the pilot's open orders
            me = (await self.pilot(player, "GET", "me")).body
            open_orders = [o for o in me["orders"] if o["status"] == "open"]
            if open_orders:
                out = await self.pilot(player, "POST", "cancel", {"order": rng.choice(open_orders)["id"]})
                self.outcomes[out.status] = self.outcomes.get(out.status, 0) + 1
            return
        side = rng.choice(("buy", "sell"))
        kind = "market" if rng.random() < 0.15 else "limit"
        body = {"market": MARKET, "good": rng.choice(GOODS), "side": side, "kind": kind,
                "price": rng.randint(90, 110), "quantity": rng.randint(1, 5), "ref": f"r{n}"}
        if kind == "market" and side == "sell" and rng.random() < 0.5:
            del body["price"]
        if rng.random() < 0.3:
            body["ttl"] = rng.randint(60, 300)
        out = await self.pilot(player, "POST", "order", body)
        self.outcomes[out.status] = self.outcomes.get(out.status, 0) + 1
        assert out.status in (200, 201, 400, 409, 422, 429), out  # refusals are clear 4xx
        if out.status == 201 and rng.random() < 0.05:  # the client retries: the same order
            again = await self.pilot(player, "POST", "order", body)
            assert again.status == 200 and again.body["order"]["id"] == out.body["order"]["id"], again

    async def quiesce(self) -> None:
        """Wake every room (a killed one delivers its outbox when it wakes) until no post is left."""
        for _ in range(200):
            for player in PILOTS:
                await self.directory.get("pilot", player)
            await self.directory.get("market", MARKET)
            async with asyncio.timeout(120):
                while self.directory.posts_pending():
                    await asyncio.sleep(0.02)
            if all(self.directory.runtime(k, i) is not None and self.directory.runtime(k, i).state == "active"
                   for k, i in [("market", MARKET), *(("pilot", p) for p in PILOTS)]):
                return
        raise AssertionError("the rooms never went quiet")


@pytest.fixture
async def economy(tmp_path, monkeypatch):
    # Posts to a killed room are retried every 0.5 s at most (not 5 s): the same delivery,
    # less waiting in real time for the test.
    monkeypatch.setattr(posts, "RETRY_MAX", 0.5)
    clock = ManualClock()
    directory = InProcessDirectory(tmp_path / "data", clock=clock, idle_timeout=3600.0)
    yield Economy(directory, clock, random.Random(16))
    await directory.close()


async def test_credits_and_goods_are_conserved_through_random_orders_and_kills(economy):
    await economy.start()
    placed = 0
    n = 0
    while placed < ORDERS:
        n += 1
        before = economy.outcomes.get(201, 0)
        await economy.step(n)
        placed += economy.outcomes.get(201, 0) - before
        if economy.rng.random() < 1 / KILL_EVERY:
            await economy.kill()
        await economy.clock.advance(0.1)  # orders expire; the flood limit refills
        if n % 100 == 0:  # posts flow in real time: on a loaded machine they would lag the steps
            await economy.quiesce()
    await economy.quiesce()

    ledgers = {p: economy.directory.runtime("pilot", p).room.trading.ledger for p in PILOTS}
    market = economy.directory.runtime("market", MARKET).room
    fees = market.store.meta["fees"]

    # credits: held + buy escrow + fees = granted; fees paid = fees collected
    held = sum(l.credits + l.escrow()[0] for l in ledgers.values())
    granted = sum(l.totals["granted"] for l in ledgers.values())
    assert held + fees == granted, (held, fees, granted)
    assert sum(l.totals["fees"] for l in ledgers.values()) == fees
    assert fees > 0

    # goods: holds + sell escrow = stowed
    stowed: dict[str, int] = {}
    for ledger in ledgers.values():
        for good, units in ledger.totals["mined"].items():
            stowed[good] = stowed.get(good, 0) + units
    assert total_goods(ledgers.values()) == {g: u for g, u in stowed.items() if u}

    # no order fills twice; the pilots' count of fills is the market's
    events = await market.store.events()
    quantity = {e["order"]: e["quantity"] for e in events if e["e"] == "place"}
    filled: dict[str, int] = {}
    for good in GOODS:
        for trade in await market.store.trades(good):
            for order in (trade["buy"], trade["sell"]):
                filled[order] = filled.get(order, 0) + trade["quantity"]
    assert all(filled[o] <= quantity[o] for o in filled)
    for ledger in ledgers.values():
        for order in ledger.orders.values():
            assert order["filled"] == filled.get(order["id"], 0), order

    # what the pilots hold open is what rests, and the book is its log replayed
    resting = {o.id: o.remaining for good in GOODS for o in market.books[good].orders()}
    open_orders = {o["id"]: o["remaining"] for l in ledgers.values() for o in l.open_orders()}
    assert open_orders == resting
    replayed = replay(events, tuple(market.books))
    for good, book in market.books.items():
        assert [(o.id, o.side, o.price, o.remaining, o.seq) for o in book.orders()] == \
               [(o.id, o.side, o.price, o.remaining, o.seq) for o in replayed[good].orders()]

    assert economy.kills >= ORDERS // (KILL_EVERY * 4), economy.kills
    # Not vacuous: orders were placed and many filled. How many fill depends on how far posts lag
    # the steps (refusals for escrow still in flight, cancels): ~1,700 of 10,000 here, idle or
    # beside two busy loops; 906 once in CI when the quiesce came every 500 steps.
    assert economy.outcomes.get(201, 0) >= ORDERS and len(filled) > ORDERS // 20, (economy.outcomes, len(filled))

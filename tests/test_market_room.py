"""The market room (``starhold.rooms.market.room``, docs/economy.md §5-6): orders posted by
pilot rooms are matched, each fill posts ``settle`` to both pilots, orders end with
``closed``; rejections, duplicates, cancels, expiry on the alarm; the state survives kills at
any point (the book is a replay of the log, no trade is settled twice); history and stats; the
GET paths' errors; the gateway routes.

The market runs in an ``InProcessDirectory`` on a manual clock beside ``Recorder``, a
``pilot`` kind of this test that records every post it gets (the market posts to kind
``pilot``). Orders reach the market as the runtime delivers a pilot's posts: an
``HttpRequest`` with ``sender`` ``pilot/<id>`` and ``key`` the order id."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from starhold import ActivationKilled, HttpRequest, HttpResponse, Room
from starhold._runtime.local_host import InProcessDirectory
from starhold.clock import ManualClock
from starhold.faults import FaultPlan, faulty_storage_factory
from starhold.rooms.economy.resources import RESOURCES
from starhold.rooms.market.book import LIMIT, Order, OrderBook, fee
from starhold.rooms.market.history import bucket_start
from starhold.rooms.market.room import MarketRoom
from starhold.rooms.market.store import replay
from starhold.rooms.ships.room import GAME_EPOCH
from starhold.storage.sqlite_store import SqliteRoomStorage


class Recorder(Room):
    """A stand-in pilot room: records ``(pilot, path, key, body)`` of every post it gets
    (duplicates included) in ``Recorder.log``, a list the fixture resets."""

    kind = "pilot"
    log: list = []

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        Recorder.log.append((self.name, request.path, request.key, request.json()))
        return HttpResponse(200, {})


class Market:
    """The directory with market ``core`` and helpers; ``plan``: faults of the market's storage."""

    def __init__(self, tmp_path):
        self.clock = ManualClock()
        self.plan = FaultPlan()
        faulty = faulty_storage_factory(self.plan)
        self.directory = InProcessDirectory(
            tmp_path, clock=self.clock, idle_timeout=30.0, room_classes={"market": MarketRoom, "pilot": Recorder},
            storage_factory=lambda path: (faulty if path.parent.name == "market" else SqliteRoomStorage)(path))
        self.name = "core"
        self.n = 0

    async def request(self, path, body=None, sender="", key="", method="POST", query=None) -> HttpResponse:
        handle = await self.directory.get("market", self.name)
        raw = json.dumps(body).encode() if body is not None else b""
        return await handle.request(HttpRequest(method, path, query or {}, raw, sender=sender, key=key))

    async def place(self, owner, side, price, quantity, *, good="ferrite", kind=LIMIT, expires=None, order=None,
                    **extra) -> dict:
        if order is None:
            self.n += 1
            order = f"{owner}-{self.n}"
        body = {"order": order, "owner": owner, "good": good, "side": side, "kind": kind, "price": price,
                "quantity": quantity, "expires": expires, **extra}
        answer = await self.request("place", body, sender=f"pilot/{owner}", key=order)
        assert answer.status == 200, answer
        return answer.body

    async def cancel(self, owner, order) -> dict:
        answer = await self.request("cancel", {"order": order, "owner": owner}, sender=f"pilot/{owner}")
        assert answer.status == 200
        return answer.body

    async def get(self, path, **query) -> HttpResponse:
        return await self.request(path, method="GET", query={k: str(v) for k, v in query.items()})

    async def settled(self, timeout=20.0) -> None:
        """Wait until every post is delivered (an event; delivery runs in real time)."""
        async with asyncio.timeout(timeout):
            while self.directory.posts_pending():
                await asyncio.sleep(0.005)

    async def posts(self, path=None) -> list[tuple]:
        """What the pilots got so far, each key once (the first delivery)."""
        await self.settled()
        seen, out = set(), []
        for item in Recorder.log:
            if item[2] not in seen and (path is None or item[1] == path):
                seen.add(item[2])
                out.append(item)
        return out

    async def room(self) -> MarketRoom:
        return (await self.directory.get("market", self.name)).runtime.room

    async def crash(self) -> None:
        runtime = self.directory.runtime("market", self.name)
        if runtime is not None and runtime.state == "active":
            await runtime.crash()


@pytest.fixture
async def market(tmp_path):
    Recorder.log = []
    m = Market(tmp_path)
    yield m
    await m.directory.close()


def book_state(books: dict[str, OrderBook]) -> dict:
    return {g: [(o.id, o.owner, o.side, o.price, o.quantity, o.remaining, o.seq, o.expires) for o in b.orders()]
            + [("seq", b.seq)] for g, b in books.items()}


async def test_orders_match_across_posts_and_each_fill_settles_both_pilots(market):
    assert await market.place("ann", "sell", 100, 10, order="a1") == {"order": "a1", "fills": 0, "resting": True,
                                                                       "remaining": 10}
    assert await market.place("bob", "buy", 105, 4, order="b1") == {"order": "b1", "fills": 1, "resting": False,
                                                                     "remaining": 0}
    settles = await market.posts("settle")
    t = market.clock.now() - GAME_EPOCH
    common = {"trade": 1, "good": "ferrite", "price": 100, "quantity": 4, "time": t}
    assert sorted(settles) == [
        ("ann", "settle", "settle:core:1:sell", {"order": "a1", **common, "side": "sell", "fee": 8, "remaining": 6}),
        ("bob", "settle", "settle:core:1:buy", {"order": "b1", **common, "side": "buy", "fee": 0, "remaining": 0})]
    # A market buy with a price cap: fills what it can at the makers' prices, the rest is unfilled.
    await market.place("cat", "sell", 130, 5, order="c1")
    answer = await market.place("dan", "buy", 120, 10, kind="market", order="d1")
    assert answer == {"order": "d1", "fills": 1, "resting": False, "remaining": 4}
    posts = {p[2]: (p[0], p[3]) for p in await market.posts()}
    assert [(posts[k][0], posts[k][1]["quantity"], posts[k][1]["remaining"], posts[k][1]["fee"])
            for k in ("settle:core:2:buy", "settle:core:2:sell")] == [("dan", 6, 4, 0), ("ann", 6, 0, fee(600))]
    assert posts["closed:d1"] == ("dan", {"order": "d1", "remaining": 4, "reason": "unfilled"})
    dan = [p[2] for p in Recorder.log if p[0] == "dan"]
    assert dan.index("settle:core:2:buy") < dan.index("closed:d1")  # in order per pilot
    audit = (await market.get("audit")).body
    assert audit == {"region": "core", "fees": 8 + 12, "trades": 2, "events": 4, "resting": 1}
    book = (await market.get("book", good="ferrite")).body
    assert book["bids"] == [] and book["asks"] == [[130, 5]]
    assert [(x["trade"], x["price"], x["quantity"]) for x in book["trades"]] == [(2, 100, 6), (1, 100, 4)]


async def test_an_order_stopped_by_its_owners_own_order_ends_unfilled(market):
    await market.place("ann", "sell", 100, 5, order="a1")
    assert await market.place("ann", "buy", 100, 3, order="a2") == {"order": "a2", "fills": 0, "resting": False,
                                                                     "remaining": 3}
    assert await market.posts() == [("ann", "closed", "closed:a2", {"order": "a2", "remaining": 3,
                                                                    "reason": "unfilled"})]
    assert (await market.get("book", good="ferrite")).body["asks"] == [[100, 5]]


BAD = [
    ({"owner": "bob"}, "owner"), ({"good": "gold"}, "good"), ({"side": "hold"}, "side"), ({"kind": "stop"}, "kind"),
    ({"price": 0}, "price"), ({"price": 1_000_001}, "price"), ({"price": 1.5}, "price"), ({"price": True}, "price"),
    ({"price": None}, "price"), ({"price": None, "kind": "market"}, "price"), ({"quantity": 0}, "quantity"),
    ({"quantity": 10_001}, "quantity"), ({"quantity": "3"}, "quantity"), ({"expires": "soon"}, "expires"),
    ({"expires": -1}, "expires"), ({"expires": 1e300}, "expires"), ({"expires": float("nan")}, "expires"),
]


async def test_each_rule_rejects_a_bad_order(market):
    for i, (change, reason) in enumerate(BAD):
        order = f"x{i}"
        body = {"order": order, "owner": "ann", "good": "ice", "side": "buy", "kind": "limit", "price": 10,
                "quantity": 3, "expires": market.clock.now() + 60, **change}
        answer = await market.request("place", body, sender="pilot/ann", key=order)
        assert answer.status == 200 and answer.body == {"order": order, "rejected": reason}, change
        remaining = body["quantity"] if type(body["quantity"]) is int else 0
        assert (await market.posts())[-1] == ("ann", "closed", f"closed:{order}", {
            "order": order, "remaining": remaining, "reason": "rejected", "detail": reason})
    assert (await market.get("audit")).body["events"] == 0  # nothing accepted
    # The same post again is a duplicate, even if it would pass now: it was answered once.
    assert await market.place("ann", "sell", None, 2, kind="market", good="ice", order="x0") == {
        "order": "x0", "duplicate": True}
    # A market sell needs no price.
    assert (await market.place("ann", "sell", None, 2, kind="market", good="ice", order="y"))["remaining"] == 2
    assert (await market.get("audit")).body["events"] == 1


async def test_requests_that_are_not_from_a_pilot_or_not_an_order_are_refused(market):
    body = {"order": "x1", "owner": "ann", "good": "ice", "side": "buy", "kind": "limit", "price": 10, "quantity": 3}
    assert (await market.request("place", body)).status == 403  # a gateway, a client
    assert (await market.request("place", body, sender="system/sol")).status == 403
    assert (await market.request("place", [1], sender="pilot/ann")).status == 400
    assert (await market.request("place", {**body, "order": ""}, sender="pilot/ann")).status == 400
    assert (await market.request("place", {**body, "order": "x" * 129}, sender="pilot/ann")).status == 400
    assert (await market.request("nope", body, sender="pilot/ann")).status == 404
    assert (await market.request("place", body, sender="pilot/ann", method="PUT")).status == 405
    assert await market.posts() == []


async def test_a_pilot_may_have_fifty_resting_orders(market):
    for i in range(50):
        assert (await market.place("ann", "buy", 10 + i, 1))["resting"]
    assert await market.place("ann", "buy", 5, 1, order="a51") == {"order": "a51", "rejected": "open_orders"}
    assert (await market.place("ann", "sell", None, 1, kind="market"))["fills"] == 0  # stopped by her own bid
    assert (await market.place("bob", "sell", 59, 1))["fills"] == 1  # one of hers filled
    assert (await market.place("ann", "buy", 5, 1, order="a52"))["resting"]


async def test_a_duplicate_order_id_is_ignored_resting_finished_or_after_a_restart(market):
    await market.place("ann", "sell", 100, 5, order="a1")
    assert await market.place("ann", "sell", 100, 5, order="a1") == {"order": "a1", "duplicate": True}
    await market.place("bob", "buy", 100, 5, order="b1")  # a1 is filled: finished
    assert await market.place("ann", "sell", 100, 5, order="a1") == {"order": "a1", "duplicate": True}
    await market.crash()
    assert await market.place("bob", "buy", 100, 5, order="b1") == {"order": "b1", "duplicate": True}
    await market.place("ann", "buy", 50, 5, kind="market", order="a2")  # unfilled: finished too
    assert await market.place("ann", "buy", 50, 5, order="a2") == {"order": "a2", "duplicate": True}
    assert sorted(p[2] for p in await market.posts()) == ["closed:a2", "settle:core:1:buy", "settle:core:1:sell"]
    # Ids are the pilot's own: another pilot may use a finished one, not a resting one.
    await market.place("cat", "buy", 10, 1, order="c1")
    assert await market.place("dan", "buy", 10, 1, order="c1") == {"order": "c1", "rejected": "order"}
    assert (await market.place("dan", "buy", 10, 1, order="a2"))["resting"]
    assert (await market.get("book", good="ferrite")).body["asks"] == []


async def test_cancel_removes_only_the_owners_resting_order(market):
    await market.place("ann", "buy", 90, 7, order="a1", good="platinum")
    assert await market.cancel("bob", "a1") == {"order": "a1", "cancelled": False}  # not bob's
    answer = await market.request("cancel", {"order": "a1", "owner": "bob"}, sender="pilot/ann")
    assert answer.body == {"order": "a1", "cancelled": False}  # owner is not the sender
    assert await market.cancel("ann", "nope") == {"order": "nope", "cancelled": False}
    assert await market.cancel("ann", "a1") == {"order": "a1", "cancelled": True, "remaining": 7}
    assert await market.cancel("ann", "a1") == {"order": "a1", "cancelled": False}  # a post sent twice
    assert await market.posts() == [("ann", "closed", "closed:a1", {"order": "a1", "remaining": 7,
                                                                    "reason": "cancelled"})]
    assert (await market.get("book", good="platinum")).body["bids"] == []


async def test_orders_expire_on_the_alarm_even_while_the_market_sleeps(market):
    now = market.clock.now()
    await market.place("ann", "sell", 100, 5, order="a1", expires=now + 60)
    await market.place("bob", "sell", 101, 5, order="b1", expires=now + 120)
    await market.place("cat", "sell", 102, 5, order="c1")  # good till cancelled
    await market.clock.advance(59)
    assert await market.posts() == []
    await market.clock.advance(2)
    assert await market.posts() == [("ann", "closed", "closed:a1", {"order": "a1", "remaining": 5,
                                                                    "reason": "expired"})]
    assert market.directory.runtime("market", "core").state == "active"
    await (await market.directory.get("market", "core")).hibernate()  # asleep: the scheduler wakes it
    await market.clock.advance(60)
    assert (await market.posts())[1:] == [("bob", "closed", "closed:b1", {"order": "b1", "remaining": 5,
                                                                          "reason": "expired"})]
    assert (await market.get("book", good="ferrite")).body["asks"] == [[102, 5]]
    events = await (await market.room()).store.events()
    assert [e["e"] for e in events] == ["place", "place", "place", "expire", "expire"]


async def test_history_and_stats(market):
    start = market.clock.now()
    await market.place("ann", "sell", 100, 50, order="a1")
    await market.place("bob", "buy", 100, 10)           # 100 x 10
    await market.place("ann", "sell", 90, 10, order="a2")
    await market.place("bob", "buy", 100, 15)           # 90 x 10, then 100 x 5
    await market.clock.advance(60)
    await market.place("bob", "buy", 100, 1)            # 100 x 1, the next minute
    await market.place("cat", "buy", 80, 3, good="ice")  # a bid, no trade
    minute = await market.get("history", good="ferrite", interval=60)
    t0 = bucket_start(start, 60) - GAME_EPOCH
    assert minute.body == {"good": "ferrite", "interval": 60, "buckets": [
        {"t": t0, "open": 100, "high": 100, "low": 90, "close": 100, "volume": 25, "trades": 3},
        {"t": t0 + 60, "open": 100, "high": 100, "low": 100, "close": 100, "volume": 1, "trades": 1}]}
    assert (await market.get("history", good="ferrite", interval=60, limit=1)).body["buckets"] == \
        minute.body["buckets"][1:]
    hour = (await market.get("history", good="ferrite", interval=3600)).body["buckets"]
    assert [(b["open"], b["low"], b["close"], b["volume"], b["trades"]) for b in hour] == [(100, 90, 100, 26, 4)]
    stats = (await market.get("stats")).body
    assert stats["region"] == "core" and set(stats["goods"]) == set(RESOURCES)
    assert stats["goods"]["ferrite"] == {"last": 100, "bid": None, "ask": 100, "volume_24h": 26, "trades_24h": 4}
    assert stats["goods"]["ice"] == {"last": None, "bid": 80, "ask": None, "volume_24h": 0, "trades_24h": 0}
    await market.crash()  # history, tape and stats come back from storage
    assert (await market.get("stats")).body["goods"]["ferrite"]["volume_24h"] == 26
    assert (await market.get("history", good="ferrite", interval=60)).body == minute.body
    assert len((await market.get("book", good="ferrite")).body["trades"]) == 4
    await market.clock.advance(86400 - 60)  # the first minute leaves the 24-hour window
    assert (await market.get("stats")).body["goods"]["ferrite"]["volume_24h"] == 1
    await market.clock.advance(8 * 86400)  # a week on, the next write prunes old trades and minutes
    await market.place("dan", "buy", 1, 1, good="ice")
    room = await market.room()
    assert await room.store.trades("ferrite") == []
    assert (await market.get("history", good="ferrite", interval=60)).body["buckets"] == []
    assert len((await market.get("history", good="ferrite", interval=3600)).body["buckets"]) == 1


@pytest.mark.parametrize("path,query,status", [
    ("book", {}, 400), ("book", {"good": "gold"}, 400), ("history", {"good": "ice"}, 400),
    ("history", {"good": "ice", "interval": "61"}, 400), ("history", {"good": "gold", "interval": "60"}, 400),
    ("history", {"good": "ice", "interval": "60", "limit": "0"}, 400),
    ("history", {"good": "ice", "interval": "60", "limit": "1001"}, 400),
    ("history", {"good": "ice", "interval": "60", "limit": "²"}, 400),
    ("orders", {"owner": "ann"}, 403), ("nope", {}, 404),
])
async def test_get_errors(market, path, query, status):
    answer = await market.get(path, **query)
    assert answer.status == status and "error" in answer.body


async def test_orders_lists_an_owners_resting_orders_to_rooms_only(market):
    await market.place("ann", "buy", 10, 2, order="a1", good="ice")
    await market.place("bob", "buy", 11, 2, order="b1", good="ice")
    answer = await market.request("orders", method="GET", query={"owner": "ann"}, sender="pilot/ann")
    assert [(o["order"], o["good"], o["remaining"]) for o in answer.body["orders"]] == [("a1", "ice", 2)]


async def test_kills_at_random_points_lose_nothing_and_settle_no_trade_twice(market):
    """200 random orders and cancels; at random points the market is killed inside its hook
    (at a storage operation: nothing of the hook commits) or right after it (its posts not yet
    delivered), and the pilot's outbox sends the request again, as it would. The trades are
    those of a plain OrderBook fed the same orders; the book rebuilt after each kill equals a
    replay of the log; every trade is settled once per side; every order's units add up."""
    rng = random.Random(16)
    reference, ref_fills, placed = OrderBook(), [], {}
    kills = 0
    for i in range(200):
        owner = f"p{rng.randrange(5)}"
        if placed and rng.random() < 0.15:
            order_id = rng.choice(list(placed))
            path, body = "cancel", {"order": order_id, "owner": placed[order_id][0]}
            sender = f"pilot/{placed[order_id][0]}"
            if order_id in reference and reference.get(order_id).owner == placed[order_id][0]:
                reference.cancel(order_id)
        else:
            order_id = f"o{i}"
            side, kind = rng.choice(("buy", "sell")), "market" if rng.random() < 0.2 else "limit"
            body = {"order": order_id, "owner": owner, "good": rng.choice(RESOURCES[:2]), "side": side, "kind": kind,
                    "price": rng.randint(95, 105), "quantity": rng.randint(1, 20), "expires": None}
            path, sender = "place", f"pilot/{owner}"
            placed[order_id] = (owner, body["good"], body["quantity"])
            ref_fills += [(body["good"], f.price, f.quantity) for f in reference.submit(
                Order(order_id, owner, side, kind, body["price"], body["quantity"]))] if body["good"] == "ferrite" \
                else []
        if rng.random() < 0.25:  # killed inside the hook, at a random storage operation
            await market.settled()  # (so that no delivery's commit meets the fault)
            market.plan.kill(rng.choice(("get", "put", "delete", "commit", "list")))
            try:
                await market.request(path, body, sender=sender, key=order_id)
            except ActivationKilled:
                kills += 1
                await market.crash()
            market.plan._faults.clear()  # a fault the hook did not meet (it made no such operation)
        answer = await market.request(path, body, sender=sender, key=order_id)  # (again, if killed)
        assert answer.status == 200
        if rng.random() < 0.1:  # killed after the hook: its posts wait in the outbox
            await market.crash()
            room = await market.room()
            assert book_state(room.books) == book_state(replay(await room.store.events(), RESOURCES))
    assert kills > 10
    room = await market.room()
    assert book_state(room.books) == book_state(replay(await room.store.events(), RESOURCES))
    posts = await market.posts()
    for _, _, key, body in Recorder.log:  # a key delivered twice carries the same body
        assert next(p[3] for p in posts if p[2] == key) == body
    settles = sorted((p[3] for p in posts if p[1] == "settle"), key=lambda s: (s["trade"], s["side"]))
    trades = sorted({s["trade"] for s in settles})
    assert trades == list(range(1, len(trades) + 1)) and len(settles) == 2 * len(trades)
    assert [(s["good"], s["price"], s["quantity"]) for s in settles if s["side"] == "buy" and s["good"] == "ferrite"] \
        == ref_fills
    assert (await market.get("audit")).body["fees"] == sum(s["fee"] for s in settles)
    for order_id, (owner, good, quantity) in placed.items():  # filled + ended + resting = ordered
        filled = sum(s["quantity"] for s in settles if s["order"] == order_id)
        ended = sum(p[3]["remaining"] for p in posts if p[1] == "closed" and p[3]["order"] == order_id)
        resting = room.books[good].get(order_id)
        assert filled + ended + (resting.remaining if resting else 0) == quantity, order_id


def test_restore_rebuilds_a_book_and_refuses_what_cannot_rest():
    book = OrderBook()
    for i, (side, price) in enumerate([("sell", 10), ("buy", 8), ("sell", 10), ("buy", 9)]):
        book.submit(Order(f"o{i}", f"p{i}", side, LIMIT, price, 5))
    book.submit(Order("x", "px", "buy", LIMIT, 10, 7))  # fills o0, 2 of o2
    copy = OrderBook()
    copy.restore([Order(o.id, o.owner, o.side, o.kind, o.price, o.quantity, seq=o.seq, remaining=o.remaining)
                  for o in book.orders()], book.seq)
    assert book_state({"g": copy}) == book_state({"g": book})
    assert copy.submit(Order("y", "py", "sell", LIMIT, 8, 4)) == book.submit(Order("y", "py", "sell", LIMIT, 8, 4))
    with pytest.raises(ValueError):
        copy.restore([], 0)  # not empty
    for bad in ([Order("a", "p", "buy", LIMIT, 10, 1, seq=1), Order("b", "q", "sell", LIMIT, 9, 1, seq=2)],
                [Order("a", "p", "buy", LIMIT, 10, 1, seq=3)], [Order("a", "p", "buy", "market", 10, 1, seq=1)]):
        with pytest.raises(ValueError):
            OrderBook().restore(bad, 2)


class DirectoryAPI:
    """The part of ``starhold.http.GatewayAPI`` the market routes use, over the directory."""

    def __init__(self, directory):
        self.directory, self.ids = directory, {}

    def room_ids(self, kind, resolve):
        self.ids[kind] = resolve

    async def call_room(self, kind, room_id, request, *, wake=True):
        return await (await self.directory.get(kind, room_id)).request(request)


async def test_the_gateway_routes(market):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from starhold.rooms.market.http import market_routes

    await market.place("ann", "sell", 100, 5, order="a1", good="ice")
    await market.place("bob", "buy", 100, 2, order="b1", good="ice")
    api = DirectoryAPI(market.directory)
    app = web.Application()
    app.add_routes(market_routes(api))
    assert api.ids["market"]("core") is None  # no socket reaches a market
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async def get(path, status=200):
            response = await client.get(path)
            assert response.status == status, (path, await response.text())
            return await response.json()

        everything = await get("/api/market")
        assert list(everything["regions"]) == ["core", "mid", "outer"]
        assert everything["regions"]["core"]["goods"]["ice"]["last"] == 100
        assert everything["regions"]["outer"]["goods"]["ice"]["volume_24h"] == 0
        assert (await get("/api/market/core"))["goods"]["ice"] == {"last": 100, "bid": None, "ask": 100,
                                                                   "volume_24h": 2, "trades_24h": 1}
        book = await get("/api/market/core/ice")
        assert book["asks"] == [[100, 3]] and book["trades"][0]["quantity"] == 2
        history = await get("/api/market/core/ice/history?interval=86400&limit=5")
        assert [(b["open"], b["volume"]) for b in history["buckets"]] == [(100, 2)]
        assert "error" in await get("/api/market/core/ice/history?interval=7", 400)
        assert "error" in await get("/api/market/core/ice/history", 400)
        assert "error" in await get("/api/market/nowhere", 404)
        assert "error" in await get("/api/market/core/gold", 404)
        assert "error" in await get("/api/market/core/gold/history?interval=60", 404)


async def test_the_duplicate_check_reads_evicted_pilots_again(market, monkeypatch):
    from starhold.rooms.market import store

    monkeypatch.setattr(store, "ID_CACHE", 2)
    for owner in ("ann", "bob", "cat"):
        for i in range(2):
            assert (await market.place(owner, "buy", 10, 1, order=f"{owner}{i}", good="exotics"))["resting"]
    assert list((await market.room()).store._ids) == ["cat"]  # ann and bob were evicted
    for owner in ("ann", "bob", "cat"):
        assert await market.place(owner, "buy", 10, 1, order=f"{owner}0") == {"order": f"{owner}0",
                                                                               "duplicate": True}

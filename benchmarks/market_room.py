"""Matching speed of a market room (issue 16; ``starhold.rooms.market.room``) against its bare
order book and a plain heap-based book (``benchmarks/order_book.py``'s ``HeapBook``).

The random flow of ``order_book.flow`` (limit orders around a mid price, 15 % market orders,
10 % cancels), on one good, with each of its 8 owners split into 25 pilots (200 pilots: the
market allows 50 resting orders per pilot) and market buys capped at ``MAX_PRICE`` (a market
buy needs a price; the cap never binds), goes through:

- (a) a ``market`` room in-process (``InProcessDirectory``, real SQLite files, system clock):
  every order and cancel is a ``place``/``cancel`` request as the runtime delivers a pilot's
  post (sender ``pilot/<id>``, key = order id), one at a time, each committed before the next
  (its ``settle``/``closed`` posts are delivered meanwhile to 200 in-process pilot rooms that
  answer 200: their wakes and commits share this process's CPU). Figures: requests per
  second, the time inside the market's ``on_request`` (matching plus building the writes and
  posts) and the rest (commit, runtime); the trades are checked against the bare book's.
- the bare ``OrderBook`` and the ``HeapBook`` on the same flow (both must agree);
- (b) the cost of matching ``N`` orders in the bare book, as a share of one 100 ms tick.

First figures (defaults, this 2-core machine shared with other jobs, load ~6): the room
344 operations/s (p50 1.4 ms, p99 31 ms a request; 2.5 commits per operation: its own and one
per delivered post), 1,282/s counting only the time inside ``on_request``; the bare book
30,600/s and the heap 132,000/s on 100,000 operations (both vary x2 between runs here).
Matching is some 1 % of the room's time per order (0.03 ms of 2.9 ms): the room is bound by
its commits and post deliveries, not by the matcher. In a 100 ms tick the bare book matches
100 orders in 0.9 ms (0.9 %), 1,000 in 10 ms (10 %).

    .venv/bin/python benchmarks/market_room.py [--orders 4000] [--book-orders 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from order_book import flow, run_heap, run_ours  # noqa: E402

from starhold import HttpRequest, HttpResponse, Room  # noqa: E402
from starhold._runtime.local_host import InProcessDirectory  # noqa: E402
from starhold.rooms.market.book import BUY, MARKET, Order, OrderBook  # noqa: E402
from starhold.rooms.market.orders import MAX_PRICE  # noqa: E402
from starhold.rooms.market.room import MarketRoom  # noqa: E402

SPLIT = 25
"""Pilots per owner of the flow."""


class Sink(Room):
    """A pilot room that takes every post (the market's ``settle``/``closed``) and answers 200."""

    kind = "pilot"

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {})


class TimedMarket(MarketRoom):
    """The market room, timing its own ``on_request`` (seconds, summed in ``spent``)."""

    spent = 0.0

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        try:
            return await super().on_request(request)
        finally:
            TimedMarket.spent += time.perf_counter() - started


def market_flow(n: int) -> list[tuple]:
    """``order_book.flow(n)`` with owners split (``SPLIT``) and market buys capped."""
    ops, owners = [], {}
    for i, op in enumerate(flow(n)):
        if op[0] == "cancel":
            ops.append(op)
            continue
        _, oid, owner, side, kind, price, qty = op
        owner = f"{owner}-{i % SPLIT}"
        owners[oid] = owner
        if kind == MARKET and side == BUY:
            price = MAX_PRICE
        ops.append(("submit", oid, owner, side, kind, price, qty))
    return ops


async def run_room(ops: list[tuple], data_dir: str) -> dict:
    directory = InProcessDirectory(data_dir, idle_timeout=600.0, room_classes={"market": TimedMarket, "pilot": Sink})
    owners = {op[1]: op[2] for op in ops if op[0] == "submit"}
    handle = await directory.get("market", "core")
    for owner in sorted(set(owners.values())):  # the pilots are awake, as a busy market's are
        await directory.get("pilot", owner)
    latencies = []
    TimedMarket.spent = 0.0
    commits = handle.runtime.stats()["commits"]
    started = time.perf_counter()
    for op in ops:
        if op[0] == "cancel":
            oid, owner = op[1], owners[op[1]]
            body, path = {"order": oid, "owner": owner}, "cancel"
        else:
            _, oid, owner, side, kind, price, qty = op
            body, path = {"order": oid, "owner": owner, "good": "ferrite", "side": side, "kind": kind,
                          "price": price, "quantity": qty, "expires": None}, "place"
        t0 = time.perf_counter()
        answer = await handle.request(HttpRequest("POST", path, {}, json.dumps(body).encode(),
                                                  sender=f"pilot/{owner}", key=oid))
        latencies.append(time.perf_counter() - t0)
        if answer.status != 200 or "rejected" in answer.body:
            raise SystemExit(f"unexpected answer {answer}")
    requests = time.perf_counter() - started
    while directory.posts_pending():
        await asyncio.sleep(0.01)
    total = time.perf_counter() - started
    commits = handle.runtime.stats()["commits"] - commits
    room = handle.runtime.room
    trades = [(t["price"], t["quantity"]) for t in await room.store.trades("ferrite")]
    await directory.close()
    latencies.sort()
    return {"requests": requests, "total": total, "spent": TimedMarket.spent, "trades": trades, "commits": commits,
            "p50": statistics.median(latencies), "p99": latencies[int(len(latencies) * 0.99)]}


def tick_share(ops: list[tuple], batch: int) -> float:
    """Seconds to match ``batch`` orders of ``ops`` in a bare book (median of the batches)."""
    book, times, ops = OrderBook(), [], [op for op in ops if op[0] == "submit"]
    for first in range(0, len(ops) - batch + 1, batch):
        started = time.perf_counter()
        for _, oid, owner, side, kind, price, qty in ops[first:first + batch]:
            book.submit(Order(oid, owner, side, kind, price, qty))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4000, help="operations through the room (default 4000)")
    parser.add_argument("--book-orders", type=int, default=100_000,
                        help="operations through the bare books (default 100000; the room's are its first ones)")
    args = parser.parse_args()
    ops = market_flow(max(args.orders, args.book_orders))
    ours, ours_fills = run_ours(ops)
    heap, heap_fills = run_heap(ops)
    if ours_fills != heap_fills:
        raise SystemExit("the two books disagree")
    room_ops = ops[:args.orders]
    with tempfile.TemporaryDirectory() as data_dir:
        room = asyncio.run(run_room(room_ops, data_dir))
    book_trades = [(f[2], f[3]) for fills in run_ours(room_ops)[1] for f in fills]
    if room["trades"] != book_trades:
        raise SystemExit("the market room's trades differ from the bare book's")
    n, nb = len(room_ops), len(ops)
    print(f"room: {n:,} operations ({sum(op[0] == 'cancel' for op in room_ops):,} cancels), {len(book_trades):,} "
          f"trades, the same as the bare book's; books: {nb:,} operations (book and heap agree)")
    book_rate = nb / ours
    print(f"{'(a) path':<52} {'ops/s':>10} {'vs book':>9}")
    rows = [("market room, requests (commit each, posts delivered)", n / room["requests"]),
            ("market room, until every post was delivered", n / room["total"]),
            ("market room, inside on_request only", n / room["spent"]),
            ("bare OrderBook", book_rate), ("heap-based reference", nb / heap)]
    for name, rate in rows:
        print(f"{name:<52} {rate:>10,.0f} {rate / book_rate:>8.3f}x")
    print(f"room request latency: p50 {room['p50'] * 1e3:.2f} ms, p99 {room['p99'] * 1e3:.2f} ms; "
          f"on_request is {room['spent'] / room['requests']:.0%} of the request time; the market committed "
          f"{room['commits'] / n:.2f} times an operation (its own, and one per post delivered: the outbox row's "
          "deletion)")
    print(f"OrderBook / heap: x{heap / ours:.2f} the speed")
    print("(b) matching N orders in the bare book, share of a 100 ms tick (10 Hz)")
    for batch in (10, 100, 1000):
        seconds = tick_share(ops, batch)
        print(f"  N = {batch:>5}: {seconds * 1e3:8.3f} ms = {seconds / 0.1:7.2%} of the tick")
    per_request = room["requests"] / n
    print(f"  through the room (commit included): {per_request * 1e3:.3f} ms an order = "
          f"{per_request / 0.1:.2%} of the tick; {0.1 / per_request:,.0f} orders per tick")


if __name__ == "__main__":
    main()

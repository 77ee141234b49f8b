"""Order-to-fill latency seen by clients under load (issue 16): HTTP orders through the real
gateway, the pilot rooms and the market room, against a heap-based book matching the same
orders in process.

The server (``market_latency_server.py``, its own process: a real aiohttp gateway on
127.0.0.1 over an ``InProcessDirectory``, system clock, SQLite files in a temporary
directory) hosts ``--takers`` M + 2 K pilots, guest tokens from ``POST /api/auth/guest``:

- **seeding** (before the measured phase): every pilot gets its record as a join to Sol (core)
  gives it, and goods by a ``stow`` posted from ``system/sol`` to its pilot room through the
  directory, as ``tests/test_economy_chaos.py`` does. **This bypasses mining**: no ship mines;
  the goods enter through the ledger's own ``stow`` operation. Takers get 20 ferrite, K maker
  sellers 100 (a full hold), K maker buyers none; all keep their 1,000 starting credits.
- the makers rest one order each over HTTP: sells of 100 ferrite at ``ASK`` = 6, buys of 100
  at ``BID`` = 5 (K is enough for every order of the run to fill).
- **measured phase**, per rate R (orders/s, total): for ``--duration`` seconds the M takers
  send ``POST /api/me/orders`` at R in total (evenly spaced, open loop: each order on its own
  schedule, whatever the answers' latency), each a crossing limit order of 1 ferrite
  alternating buy at 6 and sell at 5, so each fills at once against a maker. Per order:
  ``POST -> 201``, ``POST -> fill applied`` (the order's ``finished`` stamp: the pilot
  room's clock, the same machine's ``time.time()``, when it applied the market's ``settle``,
  before that commit) and ``POST -> fill seen`` (the first ``GET /api/me`` of that taker
  showing the order ``filled``; each taker with orders waiting polls every ``--poll`` s: an
  upper bound, its extra is up to one poll interval plus a GET). No cheaper signal exists for
  a client: a pilot has no socket, and the system's ``cargo`` push needs a seated ship.

Prints per rate: p50/p95/p99 of the three, orders sent and filled per second, the medians of
the steps (POST -> the pilot room's ``created``, -> 201, ``created`` -> ``finished``: the
pilot's commit, its ``place`` post, the market's matching and commit, the ``settle`` post
back and its application), server CPU (process CPU seconds / wall; the client's apart), the
market room's time per order (``on_request`` plus its commits) as a share of a 100 ms tick,
and the heap book's time for the same orders. A rate the server cannot hold leaves orders
waiting, and every taker then polls: the GETs (each also a pilot room commit: the pilot room
saves its record after every request, reads included) add to the overload.

First figures (defaults, this 2-core machine shared with other jobs, load average 6-15; they
move x2-x5 between runs): at 20 orders/s (unsaturated) POST -> 201 p50 6 ms / p99 31 ms, fill
applied p50 13 / p99 58 ms, fill seen p50 69 / p99 120 ms; server CPU 30 % of a core, 15 ms
of CPU an order (GETs included). One market room saturated at 20-45 filled/s: at 50/s and
beyond the latencies grow with the backlog (seconds) and the takers run out of goods at 200/s.
Where the time goes: the market spends 0.5-2 ms inside ``on_request`` per order but makes
3 commits per order (its own, and the deletion of each of the 2 ``settle`` outbox rows), each
a round trip to SQLite's thread and back through the event loop: 1.8 ms each at 20/s, 10+ ms
once the process is busy (HTTP, the pilot rooms' 6 commits an order, polling), and its
requests are serialized. The heap book matches one of these orders in 2-10 us: the
end-to-end p50 at 20/s is some 3,000 times that.

    .venv/bin/python benchmarks/market_latency.py [--rates 20,50,100,200] [--duration 7]
        [--takers 40] [--poll 0.05] [--drain 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from order_book import HeapBook  # noqa: E402

from starhold.rooms.market.book import BUY, LIMIT, SELL  # noqa: E402
from starhold.rooms.ships.room import GAME_EPOCH  # noqa: E402

ASK, BID = 6, 5
"""The makers' sell and buy prices, credits per unit."""
TAKER_GOODS = 20
MAKER_UNITS = 100
"""A maker's order (a full hold), units."""
HERE = os.path.dirname(os.path.abspath(__file__))


class Server:
    """The server process and its stdin/stdout commands."""

    def __init__(self):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="market-latency-server-", suffix=".log", delete=False)

    async def start(self) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "market_latency_server.py"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        return (await self.read())["url"]

    async def read(self) -> dict:
        line = await self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the server exited ({await self.proc.wait()}); its log: {self.log.name}")
        return json.loads(line)

    async def command(self, command: dict) -> dict:
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read()

    async def stop(self) -> None:
        self.proc.stdin.write(b'{"quit": true}\n')
        await self.proc.stdin.drain()
        await self.proc.wait()
        self.log.seek(0)
        lines = self.log.read().splitlines()
        if lines:  # e.g. posts of orders still in flight at the end, retried until the directory closed
            print(f"the server logged {len(lines)} lines, in {self.log.name}")
        else:
            os.unlink(self.log.name)


class Taker:
    """One client: its token, its orders waiting for a fill, and its poller."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, poll: float):
        self.session, self.url, self.poll = session, url, poll
        self.headers = {"Authorization": f"Bearer {token}"}
        self.waiting: dict[str, dict] = {}
        self.wake = asyncio.Event()
        self.gets = 0
        self.side = 0

    async def order(self, record: dict) -> None:
        """Send one crossing order; fills ``record`` (``sent``, ``ok``, ``id``, ``created``...)."""
        self.side ^= 1
        side, price = (BUY, ASK) if self.side else (SELL, BID)
        body = {"market": "core", "good": "ferrite", "side": side, "kind": LIMIT, "price": price, "quantity": 1}
        record["side"] = side
        record["sent"] = time.time()
        try:
            async with self.session.post(f"{self.url}/api/me/orders", json=body, headers=self.headers) as resp:
                answer = await resp.json()
                record["ok"] = time.time()
        except aiohttp.ClientError as exc:  # counted as refused (the order may have been placed)
            record["error"] = type(exc).__name__
            return
        if resp.status != 201:
            record["error"] = f"{resp.status} {answer.get('code')}"
            return
        record["id"] = answer["order"]["id"]
        record["created"] = answer["order"]["created"] + GAME_EPOCH
        if answer["order"]["status"] == "filled":  # the fill came back before the 201 left
            record["finished"], record["seen"] = answer["order"]["finished"] + GAME_EPOCH, record["ok"]
            return
        self.waiting[record["id"]] = record
        self.wake.set()

    async def poller(self) -> None:
        """Poll ``GET /api/me`` every ``poll`` s while orders wait for their fill."""
        while True:
            await self.wake.wait()
            try:
                async with self.session.get(f"{self.url}/api/me", headers=self.headers) as resp:
                    me = await resp.json()
            except aiohttp.ClientError:
                await asyncio.sleep(self.poll)
                continue
            seen = time.time()
            self.gets += 1
            for order in me["orders"]:
                record = self.waiting.get(order["id"])
                if record is not None and order["status"] != "open":
                    del self.waiting[order["id"]]
                    record["status"] = order["status"]
                    record["finished"], record["seen"] = order["finished"] + GAME_EPOCH, seen
            if not self.waiting:
                self.wake.clear()
            await asyncio.sleep(self.poll)


async def guests(session: aiohttp.ClientSession, url: str, n: int) -> list[tuple[str, str]]:
    async def one(i: int) -> tuple[str, str]:
        async with session.post(f"{url}/api/auth/guest", json={"name": f"bench{i}"}) as resp:
            answer = await resp.json()
            return answer["player"], answer["token"]
    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def rest(session: aiohttp.ClientSession, url: str, token: str, side: str) -> None:
    body = {"market": "core", "good": "ferrite", "side": side, "kind": LIMIT, "quantity": MAKER_UNITS,
            "price": ASK if side == SELL else BID}
    async with session.post(f"{url}/api/me/orders", json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        if resp.status != 201:
            raise SystemExit(f"a maker's order was refused: {resp.status} {await resp.text()}")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``, in ms; nan when empty."""
    if not values:
        return math.nan
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1e3


async def phase(server: Server, takers: list[Taker], rate: float, duration: float, drain: float) -> dict:
    """``rate`` orders/s over ``takers`` for ``duration`` s; then waits (up to ``drain`` s) for the fills."""
    before, cpu0 = await server.command({"stats": True}), time.process_time()
    records, tasks = [], []
    start = time.monotonic() + 0.05
    n = int(rate * duration)
    for k in range(n):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        record = {}
        records.append(record)
        tasks.append(asyncio.create_task(takers[k % len(takers)].order(record)))
    sent_wall = time.monotonic() - start
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + drain
    while any(t.waiting for t in takers) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    after, cpu1 = await server.command({"stats": True}), time.process_time()
    wall = after["wall"] - before["wall"]
    filled = [r for r in records if r.get("status", "filled" if "seen" in r else None) == "filled"]
    commits = {k: (after["commit"][k][0] - before["commit"].get(k, [0, 0.0])[0],
                   after["commit"][k][1] - before["commit"].get(k, [0, 0.0])[1]) for k in after["commit"]}
    fill_times = [r["finished"] for r in filled]
    return {
        "rate": rate, "sent": len(records), "sent_rate": len(records) / sent_wall,
        "errors": sorted({r["error"] for r in records if "error" in r}),
        "n_errors": sum("error" in r for r in records),
        "filled": len(filled), "unfilled": len(records) - len(filled) - sum("error" in r for r in records),
        "matched_rate": len(filled) / max(1e-9, max(fill_times) - min(fill_times)) if len(filled) > 1 else 0.0,
        "ok": [r["ok"] - r["sent"] for r in records if "id" in r],
        "applied": [r["finished"] - r["sent"] for r in filled],
        "seen": [r["seen"] - r["sent"] for r in filled],
        "to_room": [r["created"] - r["sent"] for r in filled],
        "room_ok": [r["ok"] - r["created"] for r in filled],
        "room_fill": [r["finished"] - r["created"] for r in filled],
        "server_cpu": (after["cpu"] - before["cpu"]) / wall, "cpu_per_order": (after["cpu"] - before["cpu"]) / len(records), "client_cpu": (cpu1 - cpu0) / wall,
        "market_requests": after["market_requests"] - before["market_requests"],
        "market_request": after["market_request"] - before["market_request"],
        "market_commit": commits.get("market", (0, 0.0)), "commits": commits,
        "gets": sum(t.gets for t in takers),
    }


def heap_reference(orders: int, makers: int) -> float:
    """Seconds a ``HeapBook`` takes per order for the same flow (makers resting, then
    ``orders`` alternating crossing orders of one unit)."""
    book = HeapBook()
    for m in range(makers):
        book.submit(f"s{m}", f"ms{m}", SELL, LIMIT, ASK, MAKER_UNITS)
        book.submit(f"b{m}", f"mb{m}", BUY, LIMIT, BID, MAKER_UNITS)
    started = time.perf_counter()
    for k in range(orders):
        side, price = (BUY, ASK) if k % 2 == 0 else (SELL, BID)
        fills = book.submit(f"t{k}", f"t{k % 40}", side, LIMIT, price, 1)
        assert fills, "the reference book ran dry"
    return (time.perf_counter() - started) / orders


async def run(args: argparse.Namespace) -> None:
    rates = [float(r) for r in args.rates.split(",")]
    total = sum(rates) * args.duration + rates[0] / 2
    makers = math.ceil(total / 2 * 1.1 / MAKER_UNITS) + 1
    server = Server()
    url = await server.start()
    connector = aiohttp.TCPConnector(limit=2 * args.takers)  # the clients' pools: 2 connections each
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        taker_ids = await guests(session, url, args.takers)
        seller_ids = await guests(session, url, makers)
        buyer_ids = await guests(session, url, makers)
        await server.command({"seed": [[p, TAKER_GOODS] for p, _ in taker_ids] + [[p, MAKER_UNITS] for p, _ in seller_ids]
                             + [[p, 0] for p, _ in buyer_ids]})
        await asyncio.gather(*(rest(session, url, t, SELL) for _, t in seller_ids),
                             *(rest(session, url, t, BUY) for _, t in buyer_ids))
        takers = [Taker(session, url, token, args.poll) for _, token in taker_ids]
        pollers = [asyncio.create_task(t.poller()) for t in takers]
        print(f"{args.takers} takers, {2 * makers} makers (seeded by stow from system/sol: no mining), "
              f"set up in {time.monotonic() - started:.1f} s; {args.duration:g} s per rate, poll every "
              f"{args.poll * 1e3:g} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        await phase(server, takers, rates[0], 0.5, 1.0)  # warm-up (not measured): pilots and market awake
        results = []
        for rate in rates:
            gets0 = sum(t.gets for t in takers)
            result = await phase(server, takers, rate, args.duration, args.drain)
            result["gets"] -= gets0
            results.append(result)
        for p in pollers:
            p.cancel()
    await server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    report(results, args)


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(f"{'rate':>5} {'sent/s':>7} {'filled/s':>8} {'POST->201 p50/p95/p99':>22} "
          f"{'->fill applied p50/p95/p99':>27} {'->fill seen p50/p95/p99':>24} {'srv CPU':>7} {'cli CPU':>7}")
    for r in results:
        print(f"{r['rate']:>5g} {r['sent_rate']:>7.1f} {r['matched_rate']:>8.1f} "
              f"{pct(r['ok'], .5):>6.1f}/{pct(r['ok'], .95):>6.1f}/{pct(r['ok'], .99):>6.1f} ms "
              f"{pct(r['applied'], .5):>7.1f}/{pct(r['applied'], .95):>6.1f}/{pct(r['applied'], .99):>6.1f} ms "
              f"{pct(r['seen'], .5):>6.1f}/{pct(r['seen'], .95):>6.1f}/{pct(r['seen'], .99):>6.1f} ms "
              f"{r['server_cpu']:>7.0%} {r['client_cpu']:>7.0%}")
        if r["n_errors"] or r["unfilled"]:
            print(f"      {r['n_errors']} refused {r['errors']}, {r['unfilled']} not filled within {args.drain:g} s after the last was sent")
    print("medians of the steps (ms): POST -> pilot room's created | created -> 201 at the client | "
          "created -> fill applied (pilot commit, place post, market, settle post back)")
    for r in results:
        commits = ", ".join(f"{k} {c / max(1, r['sent']):.2f}" for k, (c, _) in sorted(r["commits"].items()))
        print(f"{r['rate']:>5g}: {pct(r['to_room'], .5):6.2f} | {pct(r['room_ok'], .5):6.2f} | "
              f"{pct(r['room_fill'], .5):6.2f}   commits per order: {commits}; GET /api/me {r['gets'] / args.duration:.0f}/s; "
              f"server CPU {r['cpu_per_order'] * 1e3:.1f} ms per order sent")
    heap = heap_reference(20_000, 200)
    print(f"heap reference book, same orders in process: {heap * 1e6:.2f} us an order ({1 / heap:,.0f} orders/s)")
    for r in results:
        count, spent = r["market_commit"]
        n = max(1, r["market_requests"])  # the market's requests in the phase: about one per order it took
        inside, commits = r["market_request"] / n, spent / n
        market = inside + commits
        per_tick = market * r["sent_rate"] / 10
        print(f"{r['rate']:>5g}/s: market room {market * 1e3:.3f} ms a request ({r['market_requests']} requests; "
              f"on_request {inside * 1e3:.3f} + its commits {commits * 1e3:.3f}, {count / n:.2f} of them) = "
              f"{market / 0.1:.2%} of a 100 ms tick per order, {per_tick / 0.1:.0%} of each tick at "
              f"{r['sent_rate']:.0f}/s; end-to-end p50 (fill applied) = x{pct(r['applied'], .5) / 1e3 / heap:,.0f} "
              "the heap's matching")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=None, help="total orders/s, comma-separated (default 20,50,100,200)")
    parser.add_argument("--duration", type=float, default=7.0, help="seconds per rate (default 7)")
    parser.add_argument("--takers", type=int, default=40, help="concurrent clients placing orders (default 40)")
    parser.add_argument("--poll", type=float, default=0.05, help="GET /api/me interval while waiting, s (0.05)")
    parser.add_argument("--drain", type=float, default=3.0,
                        help="seconds to wait for the fills after the last order of a rate (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="rates 20,100 (unless --rates), 1.5 s each, 1.5 s drain (about 20 s in all)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.drain = 1.5, 1.5
        args.rates = args.rates or "20,100"
    args.rates = args.rates or "20,50,100,200"
    if max(float(r) for r in args.rates.split(",")) / args.takers > 10:
        parser.error("a pilot may send 10 orders/s: use more --takers")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

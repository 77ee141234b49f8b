"""The server process of ``benchmarks/market_latency.py``: a real aiohttp gateway on 127.0.0.1
(``starhold.gateway.app.create_app``, uvloop, as ``starhold serve --host-mode local`` builds
it) over an ``InProcessDirectory`` (system clock, SQLite files under a temporary directory),
with the market room's ``on_request`` and every room's commits timed.

It prints one JSON line ``{"url": "http://127.0.0.1:<port>"}`` once it listens, then answers
JSON commands read from stdin, one per line, with one JSON line each on stdout:

- ``{"seed": [[player, units], ...]}``: each player's pilot room gets its record as a system's
  join gives it (``checkout`` then ``checkin`` from ``system/sol``, region ``core``) and, when
  ``units`` > 0, ``units`` of ferrite by a ``stow`` posted from ``system/sol`` (source
  ``mine``): the goods come through the ledger's own operation, but **no mining happens**
  (this bypasses the system room's mining cycle). -> ``{"seeded": n}``; a refusal exits
  with status 1 and the room's answer on stderr.
- ``{"stats": true}`` -> ``{"cpu": process CPU seconds, "wall": monotonic seconds,
  "market_request": seconds inside the market's on_request, "market_requests": count,
  "commit": {kind: [commits, seconds]}}`` (cumulative since the start).
- ``{"quit": true}``: closes the server and the rooms, removes the data, exits 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time

from aiohttp import web

from starhold import HttpRequest, HttpResponse
from starhold._runtime.local_host import InProcessDirectory
from starhold.gateway.app import create_app
from starhold.kinds import load_rooms
from starhold.rooms.market.room import MarketRoom
from starhold.storage.sqlite_store import SqliteRoomStorage

SYSTEM = "system/sol"
"""The sender of the seeding operations (a core system: Sol)."""
STATS = {"market_request": 0.0, "market_requests": 0, "commit": {}}


class TimedMarket(MarketRoom):
    """The market room, timing its ``on_request`` (``STATS["market_request"]``, seconds)."""

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        try:
            return await super().on_request(request)
        finally:
            STATS["market_request"] += time.perf_counter() - started
            STATS["market_requests"] += 1


class TimedStorage(SqliteRoomStorage):
    """SQLite room storage timing each commit that wrote (wall seconds, the database thread's
    work and the wait for it included), summed per room kind (the kind is the database's
    folder name) in ``STATS["commit"]`` as ``[commits, seconds]``."""

    def __init__(self, path):
        super().__init__(path)
        self._timed = STATS["commit"].setdefault(str(path).split("/")[-2], [0, 0.0])

    async def commit(self) -> None:
        started, commits = time.perf_counter(), self.commits
        try:
            await super().commit()
        finally:
            if self.commits != commits:
                self._timed[0] += 1
                self._timed[1] += time.perf_counter() - started


async def seed(directory: InProcessDirectory, players: list) -> int:
    """The pilots' records and goods (see the module's docstring). Raises ``SystemExit``."""
    async def post(player: str, path: str, body: dict, key: str = "") -> dict:
        handle = await directory.get("pilot", player)
        out = await handle.request(HttpRequest("POST", path, {}, json.dumps(body).encode(), sender=SYSTEM, key=key))
        if out.status != 200:
            print(f"seeding {player} {path}: {out}", file=sys.stderr)
            raise SystemExit(1)
        return out.body

    async def one(player: str, units: int) -> None:
        checkout = (await post(player, "checkout", {"system": "sol", "name": player[-4:], "region": "core"}))
        await post(player, "checkin", {"checkout": checkout["checkout"], "ship": None, "route": []})
        if units:
            await post(player, "stow", {"goods": {"ferrite": units}, "source": "mine", "from": "field:0"},
                       key=f"stow:bench:{player}")

    await asyncio.gather(*(one(player, units) for player, units in players))
    return len(players)


async def serve() -> None:
    with tempfile.TemporaryDirectory(prefix="starhold-market-latency-") as data_dir:
        directory = InProcessDirectory(data_dir, idle_timeout=600.0, room_classes={"market": TimedMarket},
                                       storage_factory=TimedStorage)
        load_rooms(None)
        app = create_app(directory, data_dir=data_dir, shed_lag=0)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}"}), flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            command = json.loads(line) if line.strip() else {"quit": True}
            if "seed" in command:
                answer = {"seeded": await seed(directory, command["seed"])}
            elif "stats" in command:
                answer = {"cpu": time.process_time(), "wall": time.monotonic(), **STATS}
            else:
                break
            print(json.dumps(answer), flush=True)
        await runner.cleanup()
        await directory.close()


def main() -> None:
    import uvloop

    uvloop.run(serve())


if __name__ == "__main__":
    main()

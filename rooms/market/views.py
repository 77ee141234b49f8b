"""The market room's GET paths (docs/protocol.md "Market HTTP"). Prices in credits per unit,
quantities in units, times in game time (seconds since 2026-01-01T00:00Z).

- ``book?good=`` -> ``{"good", "bids": [[price, units], ...], "asks": [...], "trades":
  [{"trade", "price", "quantity", "time"}, ...]}``: the ``DEPTH`` best levels of each side
  (best first) and the last ``TAPE_LENGTH`` trades, newest first.
- ``stats`` -> ``{"region", "time", "goods": {good: {"last", "bid", "ask", "volume_24h",
  "trades_24h"}}}`` (``last``/``bid``/``ask`` null when there is none).
- ``history?good=&interval=60|3600|86400&limit=1..1000`` (default 100) -> ``{"good",
  "interval", "buckets": [{"t", "open", "high", "low", "close", "volume", "trades"}, ...]}``:
  the newest ``limit`` buckets that had trades, oldest first.
- ``audit`` -> ``{"region", "fees", "trades", "resting", "events"}``.
- ``orders?owner=`` (room-only: ``request.sender`` set) -> ``{"owner", "orders": [...]}``.

Errors: 400 ``{"error"}`` for a missing or unknown good, interval or a bad limit; 403 for
``orders`` without a sender; 404 for another path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starhold import HttpRequest, HttpResponse

from ..economy.resources import RESOURCES
from ..ships.room import GAME_EPOCH
from .book import BUY, SELL
from .history import INTERVALS, TAPE_LENGTH, to_json
from .store import record

if TYPE_CHECKING:
    from .room import MarketRoom

DEPTH = 10
"""Price levels per side in ``book``."""
HISTORY_LIMIT = 100
"""Buckets ``history`` answers without a ``limit``."""
MAX_HISTORY_LIMIT = 1000
"""Most buckets one ``history`` answers."""


def _bad(message: str) -> HttpResponse:
    return HttpResponse(400, {"error": message})


def _good(request: HttpRequest) -> str | None:
    good = request.query.get("good")
    return good if good in RESOURCES else None


async def answer(room: "MarketRoom", request: HttpRequest) -> HttpResponse:
    """Answer the GET ``request`` (see the module docstring)."""
    path = request.path
    if path == "book":
        return book(room, request)
    if path == "stats":
        return HttpResponse(200, stats(room))
    if path == "history":
        return await history(room, request)
    if path == "audit":
        return HttpResponse(200, {"region": room.name, "fees": room.store.meta["fees"],
                                  "trades": room.store.meta["trade"], "events": room.store.meta["log"],
                                  "resting": sum(len(b) for b in room.books.values())})
    if path == "orders":
        if not request.sender:
            return HttpResponse(403, {"error": "orders is for rooms"})
        owner = request.query.get("owner", "")
        mine = [record(o, g) for g, b in room.books.items() for o in b.orders() if o.owner == owner]
        return HttpResponse(200, {"owner": owner, "orders": mine})
    return HttpResponse(404, {"error": "not found"})


def book(room: "MarketRoom", request: HttpRequest) -> HttpResponse:
    good = _good(request)
    if good is None:
        return _bad(f"good must be one of {', '.join(RESOURCES)}")
    b = room.books[good]
    trades = list(room.recent.tape[good])[::-1][:TAPE_LENGTH]
    return HttpResponse(200, {"good": good, "bids": [list(x) for x in b.depth(BUY, DEPTH)],
                              "asks": [list(x) for x in b.depth(SELL, DEPTH)], "trades": trades})


def stats(room: "MarketRoom") -> dict:
    """``stats``' body."""
    now = room.clock.now()
    goods = {}
    for good, b in room.books.items():
        volume, count = room.recent.window(good, now)
        goods[good] = {"last": room.store.meta["last"].get(good), "bid": b.best(BUY), "ask": b.best(SELL),
                       "volume_24h": volume, "trades_24h": count}
    return {"region": room.name, "time": now - GAME_EPOCH, "goods": goods}


async def history(room: "MarketRoom", request: HttpRequest) -> HttpResponse:
    good = _good(request)
    if good is None:
        return _bad(f"good must be one of {', '.join(RESOURCES)}")
    raw = request.query.get("interval", "")
    if raw not in {str(i) for i in INTERVALS}:
        return _bad(f"interval must be one of {', '.join(map(str, INTERVALS))} (seconds)")
    raw_limit = request.query.get("limit", str(HISTORY_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_HISTORY_LIMIT:
        return _bad(f"limit must be an integer from 1 to {MAX_HISTORY_LIMIT}")
    interval = int(raw)
    rows = await room.store.buckets(good, interval, int(raw_limit))
    return HttpResponse(200, {"good": good, "interval": interval,
                              "buckets": [to_json(t, b, GAME_EPOCH) for t, b in rows]})

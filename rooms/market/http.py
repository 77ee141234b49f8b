"""The markets' HTTP routes (docs/protocol.md "Market HTTP"), all public GETs:

- ``GET /api/market``: ``{"regions": {region: stats}}`` for ``core``, ``mid`` and ``outer``
  (each ``stats`` as below);
- ``GET /api/market/{region}``: the region's ``stats`` ``{"region", "time", "goods": {good:
  {"last", "bid", "ask", "volume_24h", "trades_24h"}}}``;
- ``GET /api/market/{region}/{good}``: the book ``{"good", "bids", "asks", "trades"}``;
- ``GET /api/market/{region}/{good}/history?interval=60|3600|86400&limit=1..1000``:
  ``{"good", "interval", "buckets": [...]}``.

404 ``{"error"}`` for an unknown region (or good, on the book and history routes); 400 from
the room for a bad interval or limit; 503 with ``Retry-After`` when a market room keeps going
away. The three market rooms wake on any of these requests (``MarketRoom.wake_on_http``: no
token needed). ``api.room_ids`` admits only the three regions, and no client may open a socket
to a market (``/rooms/market/{id}/ws`` is refused: markets take orders from pilot rooms only).
"""

from __future__ import annotations

from aiohttp import web

from starhold import HttpRequest, RoomUnavailable
from starhold.http import RETRY_AFTER, GatewayAPI

from ..economy.resources import REGIONS, RESOURCES
from .room import KIND


def market_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """The four routes above over ``api``; declares that market rooms have no socket ids."""
    api.room_ids(KIND, lambda room_id: None)

    async def ask(region: str, path: str, query: dict) -> web.Response:
        try:
            answer = await api.call_room(KIND, region, HttpRequest("GET", path, query))
        except RoomUnavailable:
            return web.json_response({"error": "market unavailable; retry later"}, status=503,
                                     headers={"Retry-After": str(RETRY_AFTER)})
        return web.json_response(answer.body, status=answer.status)

    def region_of(request: web.Request) -> str:
        region = request.match_info["region"]
        if region not in REGIONS:
            raise web.HTTPNotFound(text='{"error": "unknown region"}', content_type="application/json")
        return region

    def good_of(request: web.Request) -> str:
        good = request.match_info["good"]
        if good not in RESOURCES:
            raise web.HTTPNotFound(text='{"error": "unknown good"}', content_type="application/json")
        return good

    async def markets(request: web.Request) -> web.Response:
        regions = {}
        for region in REGIONS:
            try:
                answer = await api.call_room(KIND, region, HttpRequest("GET", "stats"))
            except RoomUnavailable:
                return web.json_response({"error": f"market {region} unavailable; retry later"}, status=503,
                                         headers={"Retry-After": str(RETRY_AFTER)})
            regions[region] = answer.body
        return web.json_response({"regions": regions})

    async def stats(request: web.Request) -> web.Response:
        return await ask(region_of(request), "stats", {})

    async def book(request: web.Request) -> web.Response:
        region = region_of(request)
        return await ask(region, "book", {"good": good_of(request)})

    async def history(request: web.Request) -> web.Response:
        region, good = region_of(request), good_of(request)
        query = {k: request.query[k] for k in ("interval", "limit") if k in request.query}
        return await ask(region, "history", {"good": good, **query})

    return [
        web.get("/api/market", markets),
        web.get("/api/market/{region}", stats),
        web.get("/api/market/{region}/{good}", book),
        web.get("/api/market/{region}/{good}/history", history),
    ]

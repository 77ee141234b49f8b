"""The pilot's Knowledge Graph over HTTP (docs/protocol.md "Knowledge Graph HTTP").

``GET /api/me/graph?after=&limit=`` with a bearer token (``Authorization: Bearer`` or
``?token=``): the token's player's graph (the pilot room's ``GET graph``: ``{"fragments",
"count", "next"}``). The pilot room serves ``graph`` to any request that reaches it; this
route is the only way a client reaches it, and it asks only the room of the token's player.
401 ``{"error"}`` (with ``WWW-Authenticate: Bearer``) without a valid token, 400 for bad
paging, 503 with ``Retry-After`` when the room cannot be reached.
"""

from __future__ import annotations

from aiohttp import web

from starhold import HttpRequest
from starhold.http import AuthError, GatewayAPI, HttpError, RoomUnavailable

from .room import KIND, PLAYER_ID


def graph_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """``GET /api/me/graph``."""

    async def my_graph(request: web.Request) -> web.Response:
        try:
            identity = api.identity(request)
        except AuthError as exc:
            return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
        if not PLAYER_ID.match(identity.player):
            return web.json_response({"fragments": [], "count": 0, "next": None})
        query = {k: v for k, v in request.query.items() if k in ("after", "limit")}
        try:
            answer = await api.call_room(KIND, identity.player, HttpRequest("GET", "graph", query))
        except RoomUnavailable:
            error = HttpError.unavailable("room unavailable")
            return web.json_response({"error": error.message}, status=error.status, headers=error.headers)
        return web.json_response(answer.body, status=answer.status)

    return [web.get("/api/me/graph", my_graph)]

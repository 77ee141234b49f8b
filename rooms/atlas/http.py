"""The atlas's HTTP routes (docs/protocol.md "Knowledge Graph HTTP"): public, a token is
neither needed nor looked at; they wake the atlas room if it sleeps (one room: a request can
create no other).

- ``GET /api/discoveries?after=&before=&limit=``: a page of the galaxy's first discoveries
  (the atlas's ``GET discoveries``).
- ``GET /api/discoveries/{fragment id}``: one fragment's first discoverer, or 404. The id
  (``subject|predicate|object``) is URL-encoded in the path (``encodeURIComponent``; the
  route takes the rest of the path, so a ``/`` left as is works too).
- ``GET /api/atlas/stats``: counts and the top discoverers.

Every route reaches the one atlas room (``atlas/galaxy``); no socket may name an atlas room
(``/rooms/atlas/{id}/ws`` is refused without creating anything). 503 with ``Retry-After``
when the room cannot be reached.
"""

from __future__ import annotations

from aiohttp import web

from starhold import HttpRequest
from starhold.http import GatewayAPI, HttpError, RoomUnavailable

from .room import ATLAS_ID, KIND


def atlas_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """Declare that no atlas room may be named by a socket and return the routes above."""
    api.room_ids(KIND, lambda room_id: None)

    async def ask(path: str, query: dict) -> web.Response:
        try:
            answer = await api.call_room(KIND, ATLAS_ID, HttpRequest("GET", path, query))
        except RoomUnavailable:
            error = HttpError.unavailable("room unavailable")
            return web.json_response({"error": error.message}, status=error.status, headers=error.headers)
        return web.json_response(answer.body, status=answer.status)

    async def discoveries(request: web.Request) -> web.Response:
        return await ask("discoveries", {k: v for k, v in request.query.items() if k in ("after", "before", "limit")})

    async def fragment(request: web.Request) -> web.Response:
        return await ask("fragment", {"id": request.match_info["fragment"]})

    async def stats(request: web.Request) -> web.Response:
        return await ask("stats", {})

    return [web.get("/api/discoveries", discoveries),
            web.get("/api/discoveries/{fragment:.+}", fragment),
            web.get("/api/atlas/stats", stats)]

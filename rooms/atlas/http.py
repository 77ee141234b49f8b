"""The atlas's HTTP routes (docs/protocol.md "Knowledge Graph HTTP"): public, no token needed
(the atlas room declares ``wake_on_http``).

- ``GET /api/discoveries?after=&before=&limit=``: a page of the galaxy's first discoveries
  (the atlas's ``GET discoveries``).
- ``GET /api/discoveries/{fragment id}``: one fragment's first discoverer, or 404. The id
  (``subject|predicate|object``) is URL-encoded in the path (``/`` as ``%2F``, spaces as
  ``%20``, ``|`` as ``%7C``).
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

    async def discoveries(request: web.Request) -> web.Response:
        return await api.forward(request, KIND, ATLAS_ID, "discoveries")

    async def stats(request: web.Request) -> web.Response:
        return await api.forward(request, KIND, ATLAS_ID, "stats")

    async def fragment(request: web.Request) -> web.Response:
        fragment_id = request.match_info["fragment"]
        try:
            answer = await api.call_room(KIND, ATLAS_ID, HttpRequest("GET", "fragment", {"id": fragment_id}))
        except RoomUnavailable:
            error = HttpError.unavailable("room unavailable")
            return web.json_response({"error": error.message}, status=error.status, headers=error.headers)
        return web.json_response(answer.body, status=answer.status)

    return [web.get("/api/discoveries", discoveries),
            web.get("/api/discoveries/{fragment:.+}", fragment),
            web.get("/api/atlas/stats", stats)]

"""The pilot's HTTP route: ``GET /api/player/{id}``, a player's public profile.

200 ``{"player", "name", "system": id or null, "transit": {"jump", "from", "to", "arrive",
"wait"} or null, "hull", "hp", "max_hp", "online": bool, "jumps": int}`` (``arrive``: game
time, seconds; ``wait``: seconds from now); 404 ``{"error"}`` for an id that is not a player
id (``u-``/``g-`` + 16 hex) or a player who never flew. Like a system's state, only a request
with a valid token wakes a sleeping pilot room (401 otherwise); 503 when it keeps going away.
"""

from __future__ import annotations

from aiohttp import web

from starhold.http import GatewayAPI

from .room import KIND, PLAYER_ID


def player_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """``GET /api/player/{id}``; pilots have no socket (``/rooms/pilot/{id}/ws`` is refused)."""
    api.room_ids(KIND, lambda room_id: None)

    async def profile(request: web.Request) -> web.Response:
        player = request.match_info["id"]
        if not PLAYER_ID.match(player):
            return web.json_response({"error": "unknown player"}, status=404)
        return await api.forward(request, KIND, player, "profile")

    return [web.get("/api/player/{id}", profile)]

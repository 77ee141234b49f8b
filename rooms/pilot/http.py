"""The pilot's HTTP routes (docs/protocol.md §10 and "Pilot HTTP: ledger and orders").

- ``GET /api/player/{id}``: a player's public profile. 200 ``{"player", "name", "system": id
  or null, "transit": {"jump", "from", "to", "arrive", "wait"} or null, "hull", "hp",
  "max_hp", "online": bool, "jumps": int}`` (``arrive``: game time, seconds; ``wait``: seconds
  from now); 404 ``{"error"}`` for an id that is not a player id (``u-``/``g-`` + 16 hex) or a
  player who never flew. Like a system's state, only a request with a valid token wakes a
  sleeping pilot room (401 otherwise); 503 when it keeps going away.
- ``GET /api/me``, ``POST /api/me/orders``, ``DELETE /api/me/orders/{order}``: the bearer
  token's own pilot's ledger and orders. The token is required (401 ``{"error"}`` with
  ``WWW-Authenticate: Bearer`` without a valid one) and names the pilot room: a client reaches
  only its own (the room's client paths ``me``, ``order`` and ``cancel`` trust that, see
  ``trading.py``). A body beyond ``MAX_BODY`` bytes is 413, one that is not a JSON object 400;
  503 with ``Retry-After`` while the pilot room cannot be reached or woken; a 429 of the room
  gets a ``Retry-After`` header (whole seconds, rounded up) too. Every other answer is the
  room's, JSON.
"""

from __future__ import annotations

import json
import math

from aiohttp import web

from starhold import HttpRequest
from starhold.http import RETRY_AFTER, AuthError, GatewayAPI, HttpError, RoomUnavailable, read_json

from .room import KIND, PLAYER_ID

MAX_BODY = 2048
"""Largest body of ``POST /api/me/orders``, bytes."""
ORDER_ID_MAX = 64
"""Longest order id in ``DELETE /api/me/orders/{order}``, characters."""


def player_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """``GET /api/player/{id}`` and the ``/api/me`` routes; pilots have no socket
    (``/rooms/pilot/{id}/ws`` is refused)."""
    api.room_ids(KIND, lambda room_id: None)

    async def profile(request: web.Request) -> web.Response:
        player = request.match_info["id"]
        if not PLAYER_ID.match(player):
            return web.json_response({"error": "unknown player"}, status=404)
        return await api.forward(request, KIND, player, "profile")

    async def to_pilot(request: web.Request, method: str, path: str, body: dict | None = None) -> web.Response:
        try:
            player = api.identity(request).player
        except AuthError as exc:
            return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
        if not PLAYER_ID.match(player):
            return web.json_response({"error": "unknown player: fly first", "code": "no_pilot"}, status=404)
        raw = b"" if body is None else json.dumps(body).encode()
        try:
            response = await api.call_room(KIND, player, HttpRequest(method, path, {}, raw))
        except RoomUnavailable:
            return web.json_response({"error": "pilot unavailable; retry later"}, status=503,
                                     headers={"Retry-After": str(RETRY_AFTER)})
        headers = None
        if response.status == 429 and isinstance(response.body, dict):
            headers = {"Retry-After": str(max(1, math.ceil(float(response.body.get("retry_after", 1)))))}
        return web.json_response(response.body, status=response.status, headers=headers)

    async def me(request: web.Request) -> web.Response:
        return await to_pilot(request, "GET", "me")

    async def place(request: web.Request) -> web.Response:
        try:
            api.identity(request)  # 401 before reading a body
            body = await read_json(request, MAX_BODY)
        except AuthError as exc:
            return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
        except HttpError as exc:
            return web.json_response({"error": exc.message, "code": "bad_body"}, status=exc.status)
        return await to_pilot(request, "POST", "order", body)

    async def cancel(request: web.Request) -> web.Response:
        order = request.match_info["order"]
        if len(order) > ORDER_ID_MAX:
            return web.json_response({"error": f"no order {order[:ORDER_ID_MAX]!r}...", "code": "unknown_order"},
                                     status=404)
        return await to_pilot(request, "POST", "cancel", {"order": order})

    return [web.get("/api/player/{id}", profile), web.get("/api/me", me),
            web.post("/api/me/orders", place), web.delete("/api/me/orders/{order}", cancel)]

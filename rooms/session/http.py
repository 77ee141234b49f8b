"""Game sessions over HTTP (docs/protocol.md §7): the ``session`` rooms' routes and ids.

- ``POST /api/game/new`` (token required): create a game; 201 ``{..., "ws", "state"}``.
- ``GET /api/game/{id}/state``: the game's state (a token wakes a sleeping game).
- ``GET /api/game/{id}/ws``: the game's WebSocket (also ``/rooms/session/{id}/ws``).

Game ids are signed (``ids.SessionIds``): an id this deployment did not issue answers 404, or
4004 on a socket, without waking or creating anything. Creations are limited per player
(``quotas.GameQuota``).

Options (``GatewayAPI.options``): ``session_key`` (base64; default: the gateways' shared
secret ``session-key``), ``game_quota`` (a ``GameQuota``) or ``games_per_hour`` /
``live_games`` (ints, 0 = unlimited; defaults ``quotas.GAMES_PER_HOUR`` / ``LIVE_GAMES``).
"""

from __future__ import annotations

import json
import secrets

from aiohttp import web

from starhold import HttpRequest, protocol
from starhold.http import AuthError, GatewayAPI, RoomUnavailable

from ..accounts.throttle import retry_after_header
from .ids import SessionIds
from .quotas import GAMES_PER_HOUR, LIVE_GAMES, GameQuota, QuotaExceeded

KIND = "session"


class SessionRoutes:
    """The routes above over one gateway's ``api``, with its game ids and quota."""

    def __init__(self, api: GatewayAPI, ids: SessionIds, quota: GameQuota):
        self.api = api
        self.ids = ids
        self.quota = quota

    def resolve(self, game_id: str) -> str | None:
        """``game_id`` if this deployment issued it, else None."""
        return game_id if self.ids.valid(game_id) else None

    def _game_id(self, request: web.Request) -> str:
        game_id = request.match_info["game"]
        if not self.ids.valid(game_id):
            raise web.HTTPNotFound(text='{"error": "no such game"}', content_type="application/json")
        return game_id

    async def new(self, request: web.Request) -> web.Response:
        """``POST /api/game/new``: 401 without a valid token, 400/413 for a bad body, 429 with
        ``Retry-After`` past the player's limits (``quotas.py``), 503 when the new room keeps
        going away, else the room's answer (201 with the game)."""
        try:
            identity = self.api.identity(request)
        except AuthError as exc:
            return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
        raw = await request.content.read(protocol.MAX_MESSAGE_BYTES + 1)
        if len(raw) > protocol.MAX_MESSAGE_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        seed, max_players = body.get("seed"), body.get("max_players", 100)
        if seed is None:
            seed = secrets.randbits(32)
        if not (type(seed) is int and 0 <= seed < 2**53 and type(max_players) is int and 1 <= max_players <= 500):
            return web.json_response({"error": "seed must be an integer in [0, 2^53), max_players in [1, 500]"},
                                     status=400)
        game_id = self.ids.new()
        try:
            await self.quota.begin(identity.player, game_id, lambda g: self.api.is_active(KIND, g))
        except QuotaExceeded as exc:
            return web.json_response({"error": exc.message}, status=429,
                                     headers={"Retry-After": retry_after_header(exc.retry_after)})
        create = {"seed": seed, "max_players": max_players, "created_by": identity.player}
        try:
            response = await self.api.call_room(KIND, game_id,
                                                HttpRequest("POST", "create", {}, json.dumps(create).encode()))
        except RoomUnavailable:
            raise web.HTTPServiceUnavailable(text='{"error": "room unavailable"}', content_type="application/json")
        finally:
            self.quota.end(game_id)
        if response.status == 201:
            return web.json_response({**response.body, "ws": f"/api/game/{game_id}/ws",
                                      "state": f"/api/game/{game_id}/state"}, status=201)
        return web.json_response(response.body, status=response.status)

    async def state(self, request: web.Request) -> web.Response:
        return await self.api.forward(request, KIND, self._game_id(request), "state")

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self.api.serve_socket(request, KIND, self.resolve(request.match_info["game"]), "no such game")


def session_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """Declare the ``session`` kind's ids on ``api`` and return the game session routes."""
    options = api.options
    ids = SessionIds.from_config(options.get("session_key"), api.shared_secret)
    quota = options.get("game_quota") or GameQuota(per_hour=options.get("games_per_hour", GAMES_PER_HOUR),
                                                   live=options.get("live_games", LIVE_GAMES))
    routes = SessionRoutes(api, ids, quota)
    api.room_ids(KIND, routes.resolve)
    return [
        web.post("/api/game/new", routes.new),
        web.get("/api/game/{game}/state", routes.state),
        web.get("/api/game/{game}/ws", routes.ws),
    ]

"""Game sessions: a room per match, created on demand (``POST /api/game/new``).

A session is a square sector ``SECTOR_SIZE`` world units wide centred on the origin, with up
to ``max_players`` seats (default 100). Unlike a solar system, a session forgets a player
whose seat is released (they left with a normal close, or did not come back within the seat
hold): their ship is removed. Sessions persist and hibernate like every room; a session that
was never created answers 404 and refuses joins with ``CLOSE_UNKNOWN_ROOM``.

Creation: ``on_request(HttpRequest("POST", "create", body=JSON))`` with ``{"seed": int,
"max_players": int, "created_by": player id}``; it is idempotent for the same body and 409
for a session that already exists with other settings.
"""

from __future__ import annotations

import json
import random

from starhold import ConnectRequest, Connection, HttpRequest, HttpResponse, define_room
from .. import protocol
from ..ships.room import ShipRoom

SECTOR_SIZE = 1000.0
"""Width of a session's square sector, world units (coordinates in ±SECTOR_SIZE/2)."""
DEFAULT_MAX_PLAYERS = 100
MAX_PLAYERS_LIMIT = 500


@define_room
class SessionRoom(ShipRoom):
    """One game session (``kind = "session"``)."""

    kind = "session"
    keep_ships = False
    limit = SECTOR_SIZE / 2

    async def on_start(self) -> None:
        self.config = await self.storage.get("config")
        if self.config:
            self.params = {**self.params, "max_players": self.config["max_players"]}
        await super().on_start()

    def room_info(self) -> dict:
        return {"session": {"id": self.name, "seed": self.config["seed"], "size": SECTOR_SIZE,
                            "max_players": self.config["max_players"]}}

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        rng = random.Random(f"{self.config['seed']}:{ship_id}")
        half = SECTOR_SIZE / 2 * 0.9
        return rng.uniform(-half, half), rng.uniform(-half, half)

    async def on_connect(self, conn: Connection, request: ConnectRequest) -> None:
        if not self.config:
            conn.send(protocol.error_frame(protocol.ERR_UNKNOWN_ROOM, "no such game", request.seq))
            conn.close(protocol.CLOSE_UNKNOWN_ROOM, "no such game")
            return
        await super().on_connect(conn, request)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == "create":
            return await self._create(request)
        if not self.config:
            return HttpResponse(404, {"error": "no such game"})
        response = await super().on_request(request)
        return response

    async def _create(self, request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body or b"{}")
            seed = int(body.get("seed", 0))
            max_players = int(body.get("max_players", DEFAULT_MAX_PLAYERS))
        except (ValueError, TypeError, AttributeError):
            return HttpResponse(400, {"error": "body must be JSON {seed: int, max_players: int}"})
        if not 1 <= max_players <= MAX_PLAYERS_LIMIT or not 0 <= seed < 2**53:
            return HttpResponse(400, {"error": f"max_players must be 1-{MAX_PLAYERS_LIMIT}, seed 0-2^53"})
        config = {"seed": seed, "max_players": max_players, "created_by": str(body.get("created_by", "")),
                  "created": self.clock.now()}
        if self.config:
            same = self.config["seed"] == seed and self.config["max_players"] == max_players
            return HttpResponse(200 if same else 409, {"id": self.name, **self.config} if same
                                else {"error": "game exists with other settings"})
        self.config = config
        self.seats.max_players = max_players
        await self.storage.put("config", config)
        return HttpResponse(201, {"id": self.name, **config})

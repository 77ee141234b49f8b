"""The solar system room: one per star; players' ships fly around the star at 10 Hz.

State: ships (``ship:<id>`` keys: player key, name, and the current straight-line leg
``x0, y0 -> tx, ty`` started at clock time ``t0``). A ship's position is a closed-form
function of time (``starhold.kernels.motion``), so the room writes only when a ship gets a new
order, and a room that slept for an hour knows where its ships arrived without replaying ticks.
Planets are on circular orbits whose positions are a function of game time (clients compute
them from the orbit parameters in ``welcome``).

The 10 Hz loop runs on the room's alarm while players are connected and something happens:
each tick sends every connection a frame (positions and its own last applied input ``ack``)
and re-arms the alarm for the next tick boundary. When every ship is at rest and no input came
for ``LINGER`` seconds the loop stops (the last frame stands); with no alarm left the runtime
hibernates the room after its idle timeout, the players' sockets held open by the gateway, and
their next input wakes it where it was.
"""

from __future__ import annotations

import math
import random
import secrets

import numpy as np

from .. import protocol
from ..kernels.motion import positions_at
from .connection import Connection
from .room import AlarmInfo, ConnectRequest, HttpRequest, HttpResponse, Room

GAME_EPOCH = 1_767_225_600.0
"""Game time zero: 2026-01-01T00:00:00Z, Unix seconds. Game time = clock time - GAME_EPOCH."""
LINGER = 2.0
"""Seconds the loop keeps sending frames after the last input when nothing moves."""
SPAWN_RADIUS = 150.0
"""New ships appear on a circle of this radius around the star, world units."""


class SolarSystemRoom(Room):
    """A star system. ``params["system"]`` is the welcome ``system`` dict of docs/protocol.md
    (id, name, colour, star radius, planets)."""

    kind = "system"

    async def on_start(self) -> None:
        self.system = self.params.get("system") or {"id": self.name, "name": self.name, "planets": []}
        stored = await self.storage.list(prefix="ship:")
        self.ships: dict[int, dict] = {s["id"]: s for s in stored.values()}
        self.by_player = {s["player"]: s["id"] for s in self.ships.values()}
        self.next_ship_id = int(await self.storage.get("next_ship_id") or 1)
        self.seats: dict[str, int] = {}
        self.acks: dict[str, int] = {}
        self._soa = None
        self.last_tick = 0
        self.last_input = self.clock.now()
        # After a reset the runtime keeps the connections: re-seat them from their attachments.
        for conn in self.connections:
            if conn.attachment and conn.attachment.get("ship") in self.ships:
                self.seats[conn.id] = conn.attachment["ship"]
                self.acks[conn.id] = conn.attachment.get("ack", 0)
        await self._run_loop(bool(self.seats))

    # ---- time ------------------------------------------------------------------------------
    def game_time(self) -> float:
        """Game time now, seconds."""
        return self.clock.now() - GAME_EPOCH

    def current_tick(self) -> int:
        """The tick now: ``floor(game_time * TICK_RATE)``, tolerant of float rounding at a
        tick boundary (an alarm set for a boundary fires exactly on it)."""
        return math.floor(self.game_time() * protocol.TICK_RATE + 1e-6)

    async def _run_loop(self, on: bool) -> None:
        """Start (alarm at the next tick boundary) or stop the 10 Hz loop."""
        if on:
            if await self.storage.get_alarm() is None:
                await self.storage.set_alarm(GAME_EPOCH + (self.current_tick() + 1) / protocol.TICK_RATE)
        else:
            await self.storage.delete_alarm()

    # ---- ships -----------------------------------------------------------------------------
    def _arrays(self):
        if self._soa is None:
            ships = list(self.ships.values())
            cols = np.array([[s["x0"], s["y0"], s["tx"], s["ty"], s["t0"]] for s in ships], dtype=np.float64)
            self._soa = (ships, cols.reshape(-1, 5))
        return self._soa

    def positions(self, at: float):
        """Every ship's position at clock time ``at``: (ships list, x, y, moving) arrays (N,)."""
        ships, cols = self._arrays()
        x, y, moving = positions_at(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], protocol.SHIP_SPEED, at)
        return ships, x, y, moving

    def ship_rows(self, at: float) -> list[list]:
        """Frame rows ``[id, x, y, flags, name]`` at clock time ``at``."""
        online = set(self.seats.values())
        ships, x, y, moving = self.positions(at)
        return [
            [s["id"], float(x[i]), float(y[i]),
             (protocol.SHIP_ONLINE if s["id"] in online else 0) | (protocol.SHIP_MOVING if moving[i] else 0),
             s["name"]]
            for i, s in enumerate(ships)
        ]

    async def _save_ship(self, ship: dict) -> None:
        self.ships[ship["id"]] = ship
        self._soa = None
        await self.storage.put(f"ship:{ship['id']}", ship)

    async def _new_ship(self, player: str, name: str | None) -> dict:
        ship_id = self.next_ship_id
        self.next_ship_id += 1
        await self.storage.put("next_ship_id", self.next_ship_id)
        angle = random.Random(f"{self.name}:{ship_id}").uniform(0, 2 * math.pi)
        x, y = SPAWN_RADIUS * math.cos(angle), SPAWN_RADIUS * math.sin(angle)
        ship = {"id": ship_id, "player": player, "name": name or f"Pilot {ship_id}",
                "x0": x, "y0": y, "tx": x, "ty": y, "t0": self.clock.now()}
        self.by_player[player] = ship_id
        await self._save_ship(ship)
        return ship

    # ---- hooks -----------------------------------------------------------------------------
    async def on_connect(self, conn: Connection, request: ConnectRequest) -> None:
        player = request.payload.get("player") or secrets.token_urlsafe(12)
        name = request.payload.get("name")
        ship_id = self.by_player.get(player)
        if ship_id is None:
            ship = await self._new_ship(player, name)
        else:
            ship = self.ships[ship_id]
            if name and name != ship["name"]:
                await self._save_ship({**ship, "name": name})
            for other_id, seat in list(self.seats.items()):
                if seat == ship_id:
                    self._unseat(other_id)
                    for other in self.connections:
                        if other.id == other_id:
                            other.close(protocol.CLOSE_REPLACED, "the same player joined from another socket")
        self.seats[conn.id] = ship["id"]
        self.acks[conn.id] = request.seq
        self.last_input = self.clock.now()
        conn.attachment = {"player": player, "ship": ship["id"]}
        tick = self.current_tick()
        conn.send(protocol.encode(protocol.WELCOME, request.seq, {
            "ship": ship["id"],
            "player": player,
            "system": self.system,
            "tick": tick,
            "time": tick / protocol.TICK_RATE,
            "tick_rate": protocol.TICK_RATE,
            "world_limit": protocol.WORLD_LIMIT,
            "ships": self.ship_rows(GAME_EPOCH + tick / protocol.TICK_RATE),
        }))
        await self._run_loop(True)

    async def on_message(self, conn: Connection, message: protocol.ClientMessage) -> None:
        ship_id = self.seats.get(conn.id)
        if ship_id is None or message.type != protocol.MOVE_TO:
            return
        now = self.clock.now()
        ships, x, y, _ = self.positions(now)
        index = next(i for i, s in enumerate(ships) if s["id"] == ship_id)
        ship = {**self.ships[ship_id], "x0": float(x[index]), "y0": float(y[index]),
                "tx": message.payload["x"], "ty": message.payload["y"], "t0": now}
        await self._save_ship(ship)
        self.acks[conn.id] = message.seq
        self.last_input = now
        await self._run_loop(True)

    def _unseat(self, conn_id: str) -> None:
        self.seats.pop(conn_id, None)
        self.acks.pop(conn_id, None)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self._unseat(conn.id)
        if not self.seats:
            await self._run_loop(False)

    async def on_alarm(self, info: AlarmInfo) -> None:
        """One tick: a frame to every seated connection, then re-arm for the next boundary."""
        if not self.seats:
            return
        tick = max(self.current_tick(), self.last_tick + 1)
        self.last_tick = tick
        at = GAME_EPOCH + tick / protocol.TICK_RATE
        rows = self.ship_rows(at)
        ships_field = protocol.pack_ship_rows(rows)
        game_time = tick / protocol.TICK_RATE
        for conn in self.connections:
            if conn.id in self.seats:
                frame = protocol.encode_frame(tick, game_time, self.acks.get(conn.id, 0), ships_field)
                conn.send(frame, allow_unconfirmed=True)
        moving = any(row[3] & protocol.SHIP_MOVING for row in rows)
        if moving or self.clock.now() - self.last_input < LINGER:
            await self.storage.set_alarm(GAME_EPOCH + (tick + 1) / protocol.TICK_RATE)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or request.path not in ("", "/", "state"):
            return HttpResponse(404, {"error": "not found"})
        now = self.clock.now()
        keys = ["id", "x", "y", "flags", "name"]
        return HttpResponse(200, {
            "system": self.system,
            "tick": self.current_tick(),
            "time": now - GAME_EPOCH,
            "ships": [dict(zip(keys, row)) for row in self.ship_rows(now)],
        })

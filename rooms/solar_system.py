"""The solar system room: one per star; players' ships fly around the star at 10 Hz.

Everything about ships, seats, frames and the 10 Hz loop is ``ShipRoom``'s; a system adds its
star and planets (``params["system"]``, the welcome ``system`` dict of docs/protocol.md) and
keeps a player's ship in the system after the player leaves: the same player (the identity in
their token) finds it again, where it flew to, on their next join. Planets are on circular
orbits whose positions are a function of game time (clients compute them from the orbit
parameters in ``welcome``).
"""

from __future__ import annotations

import math
import random

from .ship_room import GAME_EPOCH, LINGER, ShipRoom

__all__ = ["SolarSystemRoom", "GAME_EPOCH", "LINGER", "SPAWN_RADIUS"]

SPAWN_RADIUS = 150.0
"""New ships appear on a circle of this radius around the star, world units."""


class SolarSystemRoom(ShipRoom):
    """A star system. ``params["system"]`` is the welcome ``system`` dict of docs/protocol.md
    (id, name, colour, star radius, planets)."""

    kind = "system"
    keep_ships = True

    async def on_start(self) -> None:
        self.system = self.params.get("system") or {"id": self.name, "name": self.name, "planets": []}
        await super().on_start()

    def room_info(self) -> dict:
        return {"system": self.system}

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        angle = random.Random(f"{self.name}:{ship_id}").uniform(0, 2 * math.pi)
        return SPAWN_RADIUS * math.cos(angle), SPAWN_RADIUS * math.sin(angle)

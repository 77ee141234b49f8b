"""Hit points out of combat: regeneration everywhere, full repair at the station
(``rooms.system.travel``: ``REGEN_DELAY``, ``REGEN_RATE``, ``STATION_RADIUS``)."""

from __future__ import annotations

import math

import numpy as np

from .travel import STATION_RADIUS, regen


class Repairs:
    """Applies regeneration and station repair to the player ships of one system's battle,
    once per tick (``step(now)``, clock seconds). ``regenerating`` says whether any player
    ship is still below its maximum (the loop keeps running to show it)."""

    def __init__(self, room):
        self.room = room
        self.combat_at: dict[int, float] = {}
        self.partial: dict[int, float] = {}  # ship id -> hit points regained, not yet whole
        self.last: float | None = None
        self.regenerating = False

    def step(self, now: float) -> None:
        room = self.room
        room.fleet.arrays()
        b = room.sim.battle
        dt, self.last = (0.0 if self.last is None else max(0.0, now - self.last)), now
        hp, max_hp = b.state["hp"], b.state["max_hp"]
        for i in np.flatnonzero(b.in_combat).tolist():
            self.combat_at[int(b.ids[i])] = now
            self.partial.pop(int(b.ids[i]), None)
        damaged = np.flatnonzero(~b.npc & (hp > 0) & (hp < max_hp)).tolist()
        self.regenerating = bool(damaged)
        sx, sy = room.station
        for i in damaged:
            ship_id = int(b.ids[i])
            if b.in_combat[i]:
                continue
            x, y = room.sim.where(ship_id, now)
            if math.hypot(x - sx, y - sy) <= STATION_RADIUS:
                new = int(max_hp[i])
            else:
                gained = self.partial.get(ship_id, 0.0) + regen(now - self.combat_at.get(ship_id, -math.inf), dt)
                whole = int(gained)
                self.partial[ship_id] = gained - whole
                new = min(int(max_hp[i]), int(hp[i]) + whole)
            if new != int(hp[i]):
                hp[i] = new
                room.ships[ship_id]["hp"] = new
                room.fleet.mark(ship_id)

    def removed(self, ship_id: int) -> None:
        self.combat_at.pop(ship_id, None)
        self.partial.pop(ship_id, None)

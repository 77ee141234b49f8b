"""Travel orders in a system: ``jump`` and ``route`` (docs/protocol.md §3 "Travel").

- ``jump {to}``: ``to`` must be a lane neighbour (else ``ERR_NO_LANE``) and the ship alive
  (else ``ERR_SHIP_BUSY``). The ship flies to that lane's jump point around the obstacles
  (like a ``move_to``; in combat it goes there when the fight ends) and is marked
  ``jump_to``; each tick, a marked ship within ``JUMP_RANGE`` of its point, alive and out of
  combat, departs (``rooms.system.pilots.PilotLink.depart``). A ``move_to`` or ``attack``
  cancels the jump and the autopilot.
- ``route {to}``: the shortest chain of lanes from here (``Galaxy.route``, the same as
  ``GET /api/route``); unknown, unreachable or this system: ``ERR_NO_ROUTE``. The room answers
  ``["route", seq, {"systems": [...], "parsecs": float}]``, keeps the systems still to visit
  on the ship (they travel with it through the pilot room) and orders the first jump; each
  system on the way orders the next jump when the pilot arrives and joins. The autopilot
  pauses while the pilot is offline and goes on when they come back.
"""

from __future__ import annotations

import asyncio
import math

from starhold import Connection
from .. import protocol
from .travel import JUMP_RANGE


def plan_route(start: str, goal: str) -> tuple[list[str], float] | None:
    """``Galaxy.route(start, goal)`` on the cached galaxy, or None (unknown id, no route)."""
    from ..galaxy.catalogue import load_galaxy

    galaxy = load_galaxy()
    if start not in galaxy or goal not in galaxy:
        return None
    return galaxy.route(start, goal)


class TravelOrders:
    """The ``jump``/``route`` orders of one ``SolarSystemRoom`` (``room``)."""

    def __init__(self, room):
        self.room = room

    def jump(self, conn: Connection | None, ship: dict, to: str, seq: int, *, keep_route: bool = False) -> bool:
        """Order ``ship`` to jump to ``to``; False (and an error to ``conn``) if it cannot."""
        room = self.room
        lane = room.lanes.get(to)
        error = None
        if lane is None:
            error = protocol.ERR_NO_LANE, f"no lane from {room.name} to {to!r}"
        elif "checkout" not in ship:
            error = protocol.ERR_SHIP_BUSY, "this ship cannot leave the system (no pilot)"
        elif ship["id"] in room.sim.dead:
            error = protocol.ERR_SHIP_BUSY, "your ship is destroyed"
        if error is not None:
            if conn is not None:
                conn.send(protocol.error_frame(*error, seq), allow_unconfirmed=True)
            return False
        now = room.clock.now()
        sx, sy = room.sim.where(ship["id"], now)
        waypoints = room.sim.grid.plan((sx, sy), (lane["x"], lane["y"])) or []
        extra = {"jump_to": to, "dest": [lane["x"], lane["y"]]}
        if not keep_route:
            extra["route"] = []
        if room.sim.fighting(ship["id"]):
            room.fleet.touch({**room.ships[ship["id"]], **extra})
        else:
            room.sim.fly(room.ships[ship["id"]], sx, sy, waypoints, now, **extra)
        room.jumping.add(ship["id"])
        return True

    async def route(self, conn: Connection, ship: dict, to: str, seq: int) -> None:
        found = await asyncio.to_thread(plan_route, self.room.name, to) if to != self.room.name else None
        if not found or len(found[0]) < 2:
            conn.send(protocol.error_frame(protocol.ERR_NO_ROUTE, f"no route from {self.room.name} to {to!r}", seq),
                      allow_unconfirmed=True)
            return
        systems, parsecs = found
        if not self.jump(conn, ship, systems[1], seq):
            return
        self.room.fleet.touch({**self.room.ships[ship["id"]], "route": systems[1:]})
        conn.send(protocol.encode(protocol.ROUTE, seq, {"systems": systems, "parsecs": parsecs}))

    def cancel(self, ship: dict) -> None:
        """A new order replaces the jump and the autopilot."""
        if ship.get("jump_to") or ship.get("route"):
            self.room.fleet.touch({**ship, "jump_to": None, "route": []})
        self.room.jumping.discard(ship["id"])

    def resume(self, ship: dict) -> None:
        """A pilot joined with a route to follow (or a pending jump): order its next jump."""
        route = ship.get("route") or []
        target = ship.get("jump_to") or (route[0] if route else None)
        if target:
            self.jump(None, ship, target, 0, keep_route=True)

    def check(self) -> None:
        """Each tick: ships at their jump point, alive and out of combat, depart."""
        room = self.room
        if not room.jumping:
            return
        now = room.clock.now()
        for ship_id in sorted(room.jumping):
            ship = room.ships.get(ship_id)
            if ship is None or not ship.get("jump_to"):
                room.jumping.discard(ship_id)
                continue
            lane = room.lanes.get(ship["jump_to"])
            if lane is None or ship_id in room.sim.dead or room.sim.fighting(ship_id):
                continue
            x, y = room.sim.where(ship_id, now)
            if math.hypot(x - lane["x"], y - lane["y"]) <= JUMP_RANGE:
                room.pilots.depart(ship, lane)
            elif not ship.get("path") and not room.fleet.position(ship, now)[2]:
                # at rest short of the point (respawned after a loss, or pushed off course by
                # combat): fly there again
                self.jump(None, ship, ship["jump_to"], 0, keep_route=True)

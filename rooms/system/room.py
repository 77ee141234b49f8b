"""The solar system room: one per star; players' ships and pirates fly around the star at 10 Hz.

Ships, seats, frames and the 10 Hz loop are ``ShipRoom``'s; a system adds:

- its star and planets (``params["system"]``, the welcome ``system`` dict of docs/protocol.md),
  plus the obstacles it generates from the system id (``rooms.system.navigation``): the star's
  exclusion zone and the asteroid fields, sent in the welcome as ``system.exclusion_radius``
  and ``system.asteroids``;
- ``move_to`` planned around the obstacles on the system's occupancy grid (one
  ``GridPathfinder`` per activation), flown as a polyline whose position stays a closed-form
  function of time (``navigation.advance_leg``);
- combat (``rooms.system.combat``): pirates spawned from the system id, the ``attack`` input, duels,
  respawns; the ships' combat state is a struct of arrays (``combat.Battle``) stepped once per
  tick with ``kernels.combat.combat_tick``; frames carry ``hp`` and ``events``
  (``combat_frames``) and the ship flags ``SHIP_IN_COMBAT``, ``SHIP_DESTROYED``, ``SHIP_NPC``.

A player's ship leaves the system when its seat is released (the player left, or their seat
hold expired) and is parked (``rooms.ships.parking``, via ``ShipRoom``): the same player (the identity
in their token) finds it again on their next join within ``park_ttl`` (7 days), where it flew
to, with its hit points (and a pending respawn) kept. Frames and the tick only ever carry the
ships of players who are here or hold a seat, plus the pirates. Planets are on circular
orbits whose positions are a function of game time (clients compute them from the orbit
parameters in ``welcome``); they are not obstacles.

Params: ``system`` (dict), ``respawn_delay`` (seconds, default ``protocol.RESPAWN_DELAY``),
``pirates`` (bool, default True: False spawns none, e.g. for tests of seats and
hibernation that want a room of players only), plus ``ShipRoom``'s.
"""

from __future__ import annotations

import math
import random

import numpy as np

from starhold import Connection, HttpRequest, HttpResponse, define_room
from .. import protocol
from starhold.kernels.motion import positions_at
from .combat import ALERT_RADIUS, Battle, combat_seed, generate_pirates, stats_of
from .navigation import NavGrid, advance_leg, asteroid_fields, exclusion_radius, flight, leg_end
from ..ships.room import GAME_EPOCH, LINGER, ShipRoom

__all__ = ["SolarSystemRoom", "GAME_EPOCH", "LINGER", "SPAWN_RADIUS"]

SPAWN_RADIUS = 150.0
"""New and respawned player ships appear on a circle of this radius around the star, world units."""
MAX_CATCHUP = 10
"""Combat ticks replayed at most when the alarm fires late (the rest is skipped)."""
_DT = 1.0 / protocol.TICK_RATE


@define_room
class SolarSystemRoom(ShipRoom):
    """A star system. ``params["system"]`` is the welcome ``system`` dict of docs/protocol.md
    (id, name, colour, star radius, planets)."""

    kind = "system"
    keep_ships = True
    combat_frames = True

    async def on_start(self) -> None:
        self.system = self.params.get("system") or {"id": self.name, "name": self.name, "planets": []}
        system_id = str(self.system.get("id", self.name))
        star_radius = float(self.system.get("star_radius", 40.0))
        self.respawn_delay = float(self.params.get("respawn_delay", protocol.RESPAWN_DELAY))
        self.asteroids = asteroid_fields(system_id)
        self.exclusion = exclusion_radius(star_radius)
        self.grid = NavGrid.for_system(system_id, star_radius)
        self.battle = Battle(combat_seed(system_id))
        self.events: list[list[int]] = []
        self.sim_tick: int | None = None
        self.routed: dict[int, float] = {}  # ship id -> end time of its current leg (more to fly)
        self.next_turn = math.inf  # the earliest of those
        self.dead: set[int] = set()
        await super().on_start()
        pirates = generate_pirates(system_id, self.grid) if self.params.get("pirates", True) else []
        for pirate in pirates:
            if pirate["id"] not in self.ships:
                x, y = pirate["post"]
                self._touch_ship({**pirate, **flight(x, y, [], self.clock.now()), "patrol_i": 0,
                                  "hp": stats_of(pirate)["max_hp"], "respawn_at": None, "dest": None})
        for ship in list(self.ships.values()):
            if ship.get("path"):
                self._route(ship)
        self.dead = {i for i, s in self.ships.items() if s.get("respawn_at") is not None}
        self._respawn_due(self.clock.now())
        await self._flush()

    def room_info(self) -> dict:
        return {"system": {**self.system, "exclusion_radius": self.exclusion, "asteroids": self.asteroids}}

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        angle = random.Random(f"{self.name}:{ship_id}").uniform(0, 2 * math.pi)
        return SPAWN_RADIUS * math.cos(angle), SPAWN_RADIUS * math.sin(angle)

    # ---- arrays and frames -------------------------------------------------------------------
    def ship_order(self) -> list[int]:
        return sorted(self.ships)  # the combat kernel wants increasing ids

    def _arrays(self):
        before = self._soa
        soa = super()._arrays()
        if soa is not before:
            self.battle.rebuild(soa[0], self.ships)
        return soa

    def _remove_ship(self, ship_id: int) -> None:
        super()._remove_ship(ship_id)
        self.dead.discard(ship_id)
        self.battle.end_duels(ship_id)
        if self.routed.pop(ship_id, None) is not None:
            self.next_turn = min(self.routed.values(), default=math.inf)

    def unpark(self, ship: dict) -> None:
        """A parked ship comes back: it flies on along its waypoints, and a wreck still waits
        for its respawn (applied at once if it is due)."""
        super().unpark(ship)
        if ship.get("path"):
            self._route(ship)
        if ship.get("respawn_at") is not None:
            self.dead.add(ship["id"])
            self._respawn_due(self.clock.now())

    def frame_extras(self) -> tuple:
        self._arrays()
        return self.battle.hp_table(), self.events

    def rows_at(self, at: float):
        self._respawn_due(at)
        self._advance_paths(at)
        rows, moving = super().rows_at(at)
        b = self.battle
        ids, s, q = b.ids, b.state, protocol.quantize
        for i in np.flatnonzero(b.in_combat | b.npc).tolist():
            ship_id = int(ids[i])
            x, y, flags = rows[ship_id]
            if b.npc[i]:
                flags |= protocol.SHIP_NPC
            if b.in_combat[i]:
                x, y = q(float(s["x"][i])), q(float(s["y"][i]))
                flags = (flags & ~protocol.SHIP_MOVING) | protocol.SHIP_IN_COMBAT
            rows[ship_id] = (x, y, flags)
        for ship_id in self.dead:
            x, y, flags = rows[ship_id]
            rows[ship_id] = (x, y, (flags & ~protocol.SHIP_MOVING) | protocol.SHIP_DESTROYED)
        return rows, moving or bool(b.in_combat.any())

    def _any_moving(self) -> bool:
        busy = protocol.SHIP_MOVING | protocol.SHIP_IN_COMBAT | protocol.SHIP_DESTROYED
        return any(row[2] & busy for row in self.sync.rows.values())

    def broadcast_frame(self, tick: int) -> None:
        self.simulate(tick)
        super().broadcast_frame(tick)
        self.events = []

    # ---- positions ---------------------------------------------------------------------------
    def _route(self, ship: dict) -> None:
        """Track a ship with waypoints left: when its current leg ends."""
        if ship.get("path"):
            end = leg_end(ship)
            self.routed[ship["id"]] = end
            self.next_turn = min(self.next_turn, end)
        elif self.routed.pop(ship["id"], None) is not None:
            self.next_turn = min(self.routed.values(), default=math.inf)

    def _advance_paths(self, at: float) -> None:
        """Move the ships flying polylines on to the leg they are on at ``at`` (closed form);
        O(1) until one of their legs ends."""
        if at < self.next_turn:
            return
        for ship_id, end in list(self.routed.items()):
            if end > at:
                continue
            ship = self.ships.get(ship_id)
            moved = advance_leg(ship, at) if ship is not None else None
            if moved is not None:
                self._touch_ship(moved)
                ship = moved
            if ship is None:
                del self.routed[ship_id]
            else:
                self._route(ship)
        self.next_turn = min(self.routed.values(), default=math.inf)

    def _where(self, ship_id: int, at: float) -> tuple[float, float]:
        """A ship's position at ``at``: the combat state's while it fights, else its leg's."""
        self._arrays()
        i = self.battle.index.get(ship_id)
        if i is not None and self.battle.in_combat[i]:
            return float(self.battle.state["x"][i]), float(self.battle.state["y"][i])
        self._advance_paths(at)
        x, y, _ = self.position(self.ships[ship_id], at)
        return x, y

    def _fly(self, ship: dict, x: float, y: float, waypoints: list, at: float, **extra) -> None:
        new = {**ship, **flight(x, y, waypoints, at), **extra}
        self._touch_ship(new)
        self._route(new)

    # ---- the tick ----------------------------------------------------------------------------
    def simulate(self, tick: int) -> None:
        """Respawns due, then the combat ticks since the last simulated one (at most
        ``MAX_CATCHUP``), each at its own tick time."""
        self._respawn_due(self.tick_time(tick))
        if self.sim_tick is None or tick - self.sim_tick > MAX_CATCHUP:
            first = tick
        else:
            first = self.sim_tick + 1
        for k in range(first, tick + 1):
            self._combat_tick(k)
        self.sim_tick = max(tick, self.sim_tick or tick)

    def _eligible(self) -> np.ndarray:
        """bool (N,): pirates and the ships of connected players (alive or not)."""
        b = self.battle
        mask = b.npc.copy()
        for seat in self.seats.values():
            if seat.get("conn") is not None:
                i = b.index.get(seat["ship"])
                if i is not None:
                    mask[i] = True
        return mask

    def _combat_tick(self, tick: int) -> None:
        t = self.tick_time(tick)
        self._advance_paths(t)
        ids, cols, _ = self._arrays()
        if not ids:
            return
        b = self.battle
        eligible = self._eligible() & (b.state["hp"] > 0)
        x1, y1, moving = positions_at(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], protocol.SHIP_SPEED, t)
        x0, y0, _ = positions_at(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], protocol.SHIP_SPEED, t - _DT)
        result = b.step(max(tick, 0), t, x0, y0, x1, y1, eligible)
        s = b.state
        self.events += [[k, a, c, v] for k, _, a, c, v in result.events.tolist()]
        for i in result.hit:
            ship = self.ships[ids[i]]
            ship["hp"] = int(s["hp"][i])
            self.dirty.add(f"ship:{ids[i]}")
        for i in result.destroyed:
            ship = self.ships[ids[i]]
            self._fly(ship, float(s["x"][i]), float(s["y"][i]), [], t, hp=0, respawn_at=t + self.respawn_delay,
                      dest=None)
            self.dead.add(ids[i])
        for i in result.left:
            self._resume(ids[i], float(s["x"][i]), float(s["y"][i]), t)
        self._patrol(t, x1, y1, moving, eligible)

    def _resume(self, ship_id: int, x: float, y: float, at: float) -> None:
        """A ship that left combat at ``(x, y)`` flies on: a pirate home to its post, a player
        to its ``move_to`` destination (if any); else it stays there (or, if combat steering
        left it inside an obstacle, flies out to the nearest free cell)."""
        ship = self.ships[ship_id]
        goal = ship.get("post") if ship.get("npc") else ship.get("dest")
        if not goal and not self.grid.is_free(x, y):
            goal = (x, y)  # steered into an obstacle: out to the nearest free cell
        waypoints = self.grid.plan((x, y), tuple(goal)) if goal else None
        self._fly(ship, x, y, waypoints or [], at)

    def _patrol(self, t: float, x: np.ndarray, y: np.ndarray, moving: np.ndarray, eligible: np.ndarray) -> None:
        """Resting pirates patrol their square while an online player ship is within
        ``ALERT_RADIUS``, and go home when none is."""
        b = self.battle
        players = eligible & ~b.npc
        idle = np.flatnonzero(b.npc & eligible & (b.state["hp"] > 0) & ~b.in_combat & ~moving)
        if not len(idle):
            return
        px, py = x[players], y[players]
        for i in idle.tolist():
            ship_id = int(b.ids[i])
            ship = self.ships[ship_id]
            if ship.get("path"):
                continue
            alerted = bool(len(px)) and bool((np.hypot(px - x[i], py - y[i]) <= ALERT_RADIUS).any())
            here = (float(x[i]), float(y[i]))
            if alerted:
                k = (int(ship.get("patrol_i", 0)) + 1) % len(ship["patrol"])
                goal = tuple(ship["patrol"][k])
            elif here != tuple(ship["post"]):
                k, goal = int(ship.get("patrol_i", 0)), tuple(ship["post"])
            else:
                continue
            waypoints = self.grid.plan(here, goal)
            if waypoints:
                self._fly(ship, here[0], here[1], waypoints, t, patrol_i=k)

    def _respawn_due(self, at: float) -> None:
        """Destroyed ships whose ``respawn_at`` has come: full hp, at rest at the spawn ring
        (players) or their post (pirates), from ``respawn_at`` on."""
        if not self.dead:
            return
        for ship_id in sorted(self.dead):
            ship = self.ships.get(ship_id)
            if ship is None:
                self.dead.discard(ship_id)
                continue
            if ship["respawn_at"] > at:
                continue
            x, y = ship["post"] if ship.get("npc") else self.spawn_point(ship_id)
            self._fly(ship, x, y, [], ship["respawn_at"], hp=stats_of(ship)["max_hp"], respawn_at=None, dest=None)
            self.dead.discard(ship_id)
            self._arrays()
            self.battle.respawn(self.battle.index[ship_id], x, y)

    def _disengage(self, ship_id: int) -> None:
        """Take a ship out of combat now (its player left): it flies on from where it is."""
        self._arrays()
        b = self.battle
        b.end_duels(ship_id)
        i = b.index.get(ship_id)
        if i is not None and b.in_combat[i]:
            b.in_combat[i] = False
            b.state["target_id"][i] = -1
            self._resume(ship_id, float(b.state["x"][i]), float(b.state["y"][i]), self.clock.now())

    async def _flush(self) -> None:
        """Write behind; ships in combat are written at rest where they are (their legs are
        stale while the kernel steers them)."""
        if getattr(self, "battle", None) is not None and self.battle.in_combat.any():
            now = self.clock.now()
            s = self.battle.state
            for i in np.flatnonzero(self.battle.in_combat).tolist():
                ship = self.ships.get(int(self.battle.ids[i]))
                if ship is not None:
                    self._fly(ship, float(s["x"][i]), float(s["y"][i]), [], now)
        await super()._flush()

    # ---- inputs ------------------------------------------------------------------------------
    def order_move(self, conn: Connection, ship: dict, x: float, y: float, seq: int) -> None:
        """Plan around the obstacles and fly the waypoints; in combat only the destination is
        kept (the ship flies there when the fight ends). No path: ``ERR_NO_PATH``."""
        ship_id = ship["id"]
        if ship_id in self.dead:
            return  # a wreck takes no orders; it respawns at rest
        now = self.clock.now()
        sx, sy = self._where(ship_id, now)
        waypoints = self.grid.plan((sx, sy), (x, y))
        if waypoints is None:
            conn.send(protocol.error_frame(protocol.ERR_NO_PATH, "no path to that point", seq), allow_unconfirmed=True)
            return
        dest = list(waypoints[-1]) if waypoints else [sx, sy]
        i = self.battle.index.get(ship_id)
        if i is not None and self.battle.in_combat[i]:
            self._touch_ship({**self.ships[ship_id], "dest": dest})
        else:
            self._fly(self.ships[ship_id], sx, sy, waypoints, now, dest=dest)

    def order_attack(self, conn: Connection, seat: dict, target: int, seq: int) -> None:
        """Validate (docs/protocol.md §3), then fly toward the target; a player target opens a
        duel (``combat.Battle.open_duel``), a pirate target ends the ship's duel. A ship in
        combat keeps fighting and then flies to where the target was at the order."""
        me = self.ships.get(seat["ship"])
        other = self.ships.get(target)
        error = None
        if other is None:
            code, error = protocol.ERR_UNKNOWN_TARGET, f"no ship {target} in this system"
        else:
            code = protocol.ERR_INVALID_TARGET
            online = {s["ship"] for s in self.seats.values() if s.get("conn") is not None}
            duel = self.battle.duel_of(target)
            if me is None or target == me["id"]:
                error = "you cannot attack your own ship"
            elif me["id"] in self.dead:
                error = "your ship is destroyed"
            elif target in self.dead:
                error = "the target is destroyed"
            elif not other.get("npc") and target not in online:
                error = "the target is parked (its player is not connected)"
            elif not other.get("npc") and duel is not None and me["id"] not in duel:
                error = "the target is in another duel"
        if error is not None:
            conn.send(protocol.error_frame(code, error, seq), allow_unconfirmed=True)
            return
        now = self.clock.now()
        if other.get("npc"):
            self.battle.end_duels(me["id"])
        else:
            self.battle.open_duel(me["id"], target, now)
        sx, sy = self._where(me["id"], now)
        goal = self._where(target, now)
        i = self.battle.index.get(me["id"])
        if i is not None and self.battle.in_combat[i]:
            # The kernel steers it while it fights (a duel this order ended stops at the next
            # tick); then it flies to where the target was, like a move_to given in combat.
            waypoints = self.grid.plan((sx, sy), goal)
            dest = list(waypoints[-1]) if waypoints else None
            self._touch_ship({**self.ships[me["id"]], "dest": dest})
            return
        waypoints = self.grid.plan((sx, sy), goal)
        self._fly(self.ships[me["id"]], sx, sy, waypoints or [], now, dest=None)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        player = self.by_conn.get(conn.id)
        seat = self.seats.get(player) if player else None
        if seat is not None and seat.get("conn") == conn.id and seat["ship"] in self.ships:
            self._disengage(seat["ship"])
        await super().on_close(conn, code, reason)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        response = await super().on_request(request)
        if response.status == 200 and isinstance(response.body, dict):
            hp = self.battle.hp_table()
            for entry in response.body.get("ships", ()):
                entry["hp"], entry["max_hp"] = hp.get(entry["id"], (0, 0))
        return response

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

- the economy (docs/economy.md; docs/protocol.md §3 "Economy"): the ``scan``, ``mine`` and
  ``loot`` inputs, the fields' deposits and the pilots' ledger views
  (``rooms.system.economy``, ``rooms.system.views``), wrecks, pirate bounties and loot
  (``rooms.system.wrecks``); posts ``stow``/``bounty``/``destroyed``/``discover`` to pilot
  rooms in the commit that changes the system's side, takes their ``unstow``, ``wreck`` and
  ``ledger`` posts (room-only POST paths), and answers ``GET economy`` (the audit: fields'
  amounts, wrecks, the ``dropped``/``expired`` counters). The welcome's ``system`` adds
  ``region``, ``fields`` and ``anomalies``.

The flights, combat, patrols and respawns are a sans-I/O ``rooms.system.sim.SystemSim``
(``self.sim``) that the room owns and drives through ``ShipRoom``'s public hooks; the room
keeps the inputs (``order_move``, ``order_attack``) and the connections.

A player's ship leaves the system when its seat is released (the player left, or their seat
hold expired) and is parked (``rooms.ships.parking``, via ``ShipRoom``): the same player (the identity
in their token) finds it again on their next join within ``park_ttl`` (7 days), where it flew
to, with its hit points (and a pending respawn) kept. Frames and the tick only ever carry the
ships of players who are here or hold a seat, plus the pirates. Planets are on circular
orbits whose positions are a function of game time (clients compute them from the orbit
parameters in ``welcome``); they are not obstacles.

Params: ``system`` (dict), ``lanes`` (``rooms.system.params``), ``pilots`` (bool, default True:
players' ships belong to their pilot rooms; False keeps them in the system, parked when their
player leaves, as a one-room game or a test of the room alone wants), ``respawn_delay``
(seconds, default ``protocol.RESPAWN_DELAY``),
``pirates`` (bool, default True: False spawns none, e.g. for tests of seats and
hibernation that want a room of players only), plus ``ShipRoom``'s.
"""

from __future__ import annotations

import asyncio
import math
import random

from starhold import Connection, ConnectRequest, HttpRequest, HttpResponse, define_room
from .. import protocol
from ..pilot import room as _pilot  # noqa: F401  the pilot kind, which systems call
from .combat import Battle, combat_seed, generate_pirates, stats_of
from .economy import APPLIED_PREFIX, SystemEconomy
from .navigation import NavGrid, asteroid_fields, exclusion_radius, flight
from .orders import TravelOrders
from .params import star_from_params, star_of, system_params
from .pilots import PilotLink, has_pilot
from .repair import Repairs
from .sim import MAX_CATCHUP, SystemSim
from .social import SystemSocial
from .targets import Targets
from .travel import STATION_RADIUS, lane_entries, station_point
from .wrecks import SystemWrecks
from ..ships.room import GAME_EPOCH, LINGER, ShipRoom

__all__ = ["SolarSystemRoom", "GAME_EPOCH", "LINGER", "SPAWN_RADIUS", "MAX_CATCHUP"]

EXPECT_LEAD = 3.0
"""Seconds before a ship's arrival the system is awake for it: a pilot room posts ``expect``
when a jump toward this system is committed; the system stays awake until the arrival (an
alarm due within the idle timeout keeps a room awake), or, for a transit longer than that,
sleeps and is woken by its alarm this long before the ship arrives (a wake takes ~2 s)."""
SPAWN_RADIUS = 150.0
"""New and respawned player ships appear on a circle of this radius around the star, world units."""


@define_room
class SolarSystemRoom(ShipRoom):
    """A star system. ``params["system"]`` is the welcome ``system`` dict of docs/protocol.md
    (id, name, colour, star radius, planets)."""

    kind = "system"
    messages = protocol.SYSTEM_MESSAGES
    keep_ships = True
    combat_frames = True

    async def on_start(self) -> None:
        if "lanes" not in self.params:  # woken by another room (a pilot's expect), or params of
            # an older version: what the gateway would have given, from the catalogue
            self.params = {**(await asyncio.to_thread(system_params, self.name) or {}), **self.params}
        self.system = self.params.get("system") or {"id": self.name, "name": self.name, "planets": []}
        system_id = str(self.system.get("id", self.name))
        star_radius = float(self.system.get("star_radius", 40.0))
        self.asteroids = asteroid_fields(system_id)
        self.exclusion = exclusion_radius(star_radius)
        self.lanes = lane_entries(self.params.get("lanes") or [])
        self.station = station_point(system_id, self.exclusion)
        self.pilots = PilotLink(self)
        self.orders = TravelOrders(self)
        self.social = SystemSocial(self)
        self.docked = self.social.docked
        self.repairs = Repairs(self)
        self.jumping: set[int] = set()
        """Ids of the ships ordered to jump (``jump_to`` set): ``TravelOrders.check`` each tick."""
        self.pending_writes: dict = {}
        star = star_from_params(self.params)  # from the gateway: the catalogue stays unloaded here
        if star is None:  # params of an older version, or a test's system
            star = await asyncio.to_thread(star_of, system_id)
        self.economy = SystemEconomy(self, Targets(system_id, self.system, star))
        self.wrecks = SystemWrecks(self, self.economy)
        self.region = self.economy.targets.region
        await self.social.load()
        self.sim = SystemSim(Battle(combat_seed(system_id)), NavGrid.for_system(system_id, star_radius),
                             float(self.params.get("respawn_delay", protocol.RESPAWN_DELAY)),
                             spawn_point=self.spawn_point, tick_time=self.ticker.tick_time,
                             online_ships=lambda: [s["ship"] for s in self.seats.online()])
        await super().on_start()
        sim = self.sim
        sim.fleet = self.fleet
        pirates = generate_pirates(system_id, sim.grid) if self.params.get("pirates", True) else []
        for pirate in pirates:
            if pirate["id"] not in self.ships:
                x, y = pirate["post"]
                self.fleet.touch({**pirate, **flight(x, y, [], self.clock.now()), "patrol_i": 0,
                                  "hp": stats_of(pirate)["max_hp"], "respawn_at": None, "dest": None})
        for ship in list(self.ships.values()):
            if ship.get("path"):
                sim.route(ship)
        sim.dead = {i for i, s in self.ships.items() if s.get("respawn_at") is not None}
        sim.respawn_due(self.clock.now())
        self.jumping = {i for i, s in self.ships.items() if s.get("jump_to")}
        await self.economy.load()
        await self.wrecks.load()
        await self._arm_wrecks()
        await self._flush()

    def room_info(self) -> dict:
        targets = self.economy.targets
        return {"system": {**self.system, "region": self.region, "fields": targets.fields_json(),
                           "anomalies": targets.anomalies_json(),
                           "exclusion_radius": self.exclusion, "asteroids": self.asteroids,
                           "station": {"x": self.station[0], "y": self.station[1], "radius": STATION_RADIUS},
                           "lanes": list(self.lanes.values())}}

    async def _expected(self) -> None:
        """The deadline of an ``expect``: the room is awake, which was the point."""

    # ---- pilots: where ships come from and go (rooms.system.pilots) ----------------------------
    async def acquire_ship(self, conn: Connection, request: ConnectRequest, player: str, name: str) -> dict | None:
        if self.params.get("pilots", True) and has_pilot(player):
            return await self.pilots.acquire(conn, request, player, name)
        return await super().acquire_ship(conn, request, player, name)

    def release_ship(self, seat: dict, ship: dict | None) -> None:
        self.economy.views.forget(seat["player"])
        if ship is not None and "checkout" in ship:
            self.pilots.release(seat, ship)
        else:
            super().release_ship(seat, ship)

    async def after_join(self, conn: Connection, player: str, ship: dict) -> None:
        self.social.joined(conn)
        self.pilots.sent_inbox(conn)
        self.economy.views.send_cargo(player)
        self.wrecks.send(conn)
        if ship.get("route") or ship.get("jump_to"):
            self.orders.resume(ship)

    async def _flush(self, journal: bool = False) -> None:
        if getattr(self, "social", None) is not None:
            puts, deletes = self.social.take_writes()
            puts.update(self.pending_writes)
            self.pending_writes = {}
            more_puts, more_deletes = self.economy.take_writes()
            puts.update(more_puts)
            deletes = [*deletes, *more_deletes]
            if puts:
                await self.storage.put(puts)
            if deletes:
                await self.storage.delete(deletes)
        await super()._flush(journal)

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        angle = random.Random(f"{self.name}:{ship_id}").uniform(0, 2 * math.pi)
        return SPAWN_RADIUS * math.cos(angle), SPAWN_RADIUS * math.sin(angle)

    # ---- ShipRoom's hooks: the simulation follows the fleet ----------------------------------------
    def ship_order(self) -> list[int]:
        return sorted(self.ships)  # the combat kernel wants increasing ids

    def arrays_rebuilt(self, ids: list[int]) -> None:
        self.sim.battle.rebuild(ids, self.ships)

    def ship_removed(self, ship_id: int) -> None:
        self.sim.removed(ship_id)
        self.repairs.removed(ship_id)
        self.economy.cancel(ship_id, "left")
        self.jumping.discard(ship_id)

    def unpark(self, ship: dict) -> None:
        """A parked ship comes back: it flies on along its waypoints, and a wreck still waits
        for its respawn (applied at once if it is due)."""
        super().unpark(ship)
        self.sim.arrived(ship, self.clock.now())

    def simulate(self, tick: int, missed: int) -> None:
        """Respawns and combat up to ``tick`` (``SystemSim.step``: at most ``MAX_CATCHUP``
        combat ticks replayed; ``missed`` is implied by the last simulated tick), repairs,
        jumps (ships at their jump point depart) and the presence broadcast."""
        now = self.ticker.tick_time(tick)
        self.sim.step(tick)
        self.wrecks.kills(self.sim.take_kills())
        self.wrecks.expire(now)
        self.economy.step(now)
        self.repairs.step(now)
        departed = len(self.jumping)
        self.orders.check()
        self.departed = departed != len(self.jumping) or self.economy.dirty
        self.social.tick()

    async def on_tick(self, tick: int, missed: int) -> None:
        self.departed = False
        await super().on_tick(tick, missed)
        if self.departed:
            await self._flush()  # the ship leaves (the goods move) in the same commit as the post
        if self.wrecks.changed:
            await self._arm_wrecks()

    async def _arm_wrecks(self) -> None:
        """Send ``wrecks`` if they changed, and set the deadline of the next expiry."""
        self.wrecks.broadcast()
        await self.ticker.wake_at("wrecks", self.wrecks.next_expiry(), self._wrecks_due)

    async def _wrecks_due(self) -> None:
        """The deadline of a wreck's expiry (the room may have slept until it)."""
        self.wrecks.expire(self.clock.now())
        await self._flush()
        await self._arm_wrecks()

    def frame_extras(self) -> tuple:
        return self.sim.extras()

    def frame_sent(self) -> None:
        self.sim.events = []

    def rows_at(self, at: float):
        self.sim.prepare(at)
        rows, moving = super().rows_at(at)
        self.economy.decorate(rows)
        return self.sim.decorate(rows, moving)

    def _any_moving(self) -> bool:
        busy = protocol.SHIP_MOVING | protocol.SHIP_IN_COMBAT | protocol.SHIP_DESTROYED
        return (self.repairs.regenerating or bool(self.jumping) or self.economy.busy
                or any(row[2] & busy for row in self.sync.rows.values()))

    def before_flush(self) -> None:
        """Ships in combat are written at rest where they are (``SystemSim.settle``)."""
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.settle(self.clock.now())

    # ---- inputs ------------------------------------------------------------------------------
    async def on_message(self, conn: Connection, message: protocol.ClientMessage) -> None:
        kind = message.type
        if kind not in (protocol.JUMP, protocol.ROUTE, protocol.SAY, protocol.TELL, protocol.SCAN, protocol.MINE,
                        protocol.LOOT):
            await super().on_message(conn, message)
            return
        player = self.seats.player_of(conn.id)
        if player is None:
            return
        ship = self.ships.get(self.seats.get(player)["ship"])
        payload = message.payload
        if kind == protocol.SAY:
            self.social.say(conn, player, payload.text, message.seq)
        elif kind == protocol.TELL:
            await self.social.tell(conn, player, payload.to, payload.text, message.seq)
        elif ship is not None and kind == protocol.SCAN:
            self.economy.scan(conn, ship, payload.target, message.seq)
        elif ship is not None and kind == protocol.MINE:
            self.economy.mine(conn, ship, payload.target, message.seq)
        elif ship is not None and kind == protocol.LOOT:
            self.wrecks.loot(conn, ship, payload.wreck, message.seq)
            await self._flush()  # the goods leave the wreck in the commit of their stow post
            await self._arm_wrecks()
        elif ship is not None and kind == protocol.JUMP:
            self.economy.cancel(ship["id"], "jump")
            self.orders.jump(conn, ship, payload.to, message.seq)
        elif ship is not None and kind == protocol.ROUTE:
            self.economy.cancel(ship["id"], "jump")
            await self.orders.route(conn, ship, payload.to, message.seq)
        if kind in (protocol.SCAN, protocol.MINE, protocol.LOOT):
            self.acks_dirty = True  # acknowledged with the next tick (group commit)
        self.seats.ack(player, message.seq)
        self.last_input = self.clock.now()
        if not self.ticker.running:
            await self._pace()

    def order_move(self, conn: Connection, ship: dict, x: float, y: float, seq: int) -> None:
        """Plan around the obstacles and fly the waypoints; in combat only the destination is
        kept (the ship flies there when the fight ends). No path: ``ERR_NO_PATH``."""
        ship_id, sim = ship["id"], self.sim
        if ship_id in sim.dead:
            return  # a wreck takes no orders; it respawns at rest
        self.economy.cancel(ship_id, "moved")
        self.orders.cancel(ship)
        ship = self.ships[ship_id]
        now = self.clock.now()
        sx, sy = sim.where(ship_id, now)
        waypoints = sim.grid.plan((sx, sy), (x, y))
        if waypoints is None:
            conn.send(protocol.error_frame(protocol.ERR_NO_PATH, "no path to that point", seq), allow_unconfirmed=True)
            return
        dest = list(waypoints[-1]) if waypoints else [sx, sy]
        if sim.fighting(ship_id):
            self.fleet.touch({**self.ships[ship_id], "dest": dest})
        else:
            sim.fly(self.ships[ship_id], sx, sy, waypoints, now, dest=dest)

    def order_attack(self, conn: Connection, seat: dict, target: int, seq: int) -> None:
        """Validate (docs/protocol.md §3), then fly toward the target; a player target opens a
        duel (``combat.Battle.open_duel``), a pirate target ends the ship's duel. A ship in
        combat keeps fighting and then flies to where the target was at the order."""
        sim = self.sim
        me = self.ships.get(seat["ship"])
        if me is not None:
            self.economy.cancel(me["id"], "attack")
            self.orders.cancel(me)
            me = self.ships[me["id"]]
        other = self.ships.get(target)
        error = None
        if other is None:
            code, error = protocol.ERR_UNKNOWN_TARGET, f"no ship {target} in this system"
        else:
            code = protocol.ERR_INVALID_TARGET
            online = {s["ship"] for s in self.seats.online()}
            duel = sim.battle.duel_of(target)
            if me is None or target == me["id"]:
                error = "you cannot attack your own ship"
            elif me["id"] in sim.dead:
                error = "your ship is destroyed"
            elif target in sim.dead:
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
            sim.battle.end_duels(me["id"])
        else:
            sim.battle.open_duel(me["id"], target, now)
        sx, sy = sim.where(me["id"], now)
        goal = sim.where(target, now)
        if sim.fighting(me["id"]):
            # The kernel steers it while it fights (a duel this order ended stops at the next
            # tick); then it flies to where the target was, like a move_to given in combat.
            waypoints = sim.grid.plan((sx, sy), goal)
            dest = list(waypoints[-1]) if waypoints else None
            self.fleet.touch({**self.ships[me["id"]], "dest": dest})
            return
        waypoints = sim.grid.plan((sx, sy), goal)
        sim.fly(self.ships[me["id"]], sx, sy, waypoints or [], now, dest=None)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        seat = self.seats.seat_of(conn.id)
        if seat is not None and seat.get("conn") == conn.id and seat["ship"] in self.ships:
            self.sim.disengage(seat["ship"], self.clock.now())
        await super().on_close(conn, code, reason)

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.sender and request.method == "POST":  # room-only: from pilot rooms
            body = request.json() or {}
            if request.path == "expect":  # a ship is on its way: be awake when it arrives
                arrive = float(body.get("arrive") or 0.0)
                await self.ticker.wake_at(f"expect:{request.key}", max(self.clock.now(), arrive - EXPECT_LEAD),
                                          self._expected)
                await self.ticker.wake_at(f"arrival:{request.key}", arrive + 1.0, self._expected)  # awake until then
                return HttpResponse(200, {"system": self.name})
            if request.path == "departed":  # the pilot room has our departure: joins go to it now
                await self.pilots.departed(str(body.get("player")), str(body.get("jump")))
                return HttpResponse(200, {})
            if request.path in ("unstow", "wreck", "ledger"):
                return await self._economy_post(request, body)
            if request.path == "deliver":
                if self.social.deliver(str(body.get("player")), body.get("message") or {}):
                    self.rooms.post("pilot", str(body["player"]), "delivered", {"ids": [body["message"]["id"]]},
                                    key=f"delivered:{request.key}")
                return HttpResponse(200, {})
            return HttpResponse(404, {"error": "not found"})
        if request.method == "GET" and request.path == "economy":
            return HttpResponse(200, await self._audit())
        response = await super().on_request(request)
        if response.status == 200 and isinstance(response.body, dict):
            hp = self.sim.battle.hp_table()
            for entry in response.body.get("ships", ()):
                entry["hp"], entry["max_hp"] = hp.get(entry["id"], (0, 0))
        return response

    # ---- the economy's posts and audit (rooms.system.economy, rooms.system.wrecks) ----------------
    async def _economy_post(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``unstow``, ``wreck`` and ``ledger`` from pilot rooms (docs/economy.md §5): 403 from
        another sender (``ledger``: from another pilot than its ``player``), 400 for a body that
        is not an object; ``unstow`` and ``wreck`` apply each key once (``eco:applied:<key>``,
        kept ``economy.APPLIED_KEEP`` seconds); a ``ledger`` of a pilot not seated here is
        ignored. Answers 200 ``{"applied": bool}``."""
        kind, _, sender = request.sender.partition("/")
        if not isinstance(body, dict):
            return HttpResponse(400, {"error": "the body must be a JSON object"})
        if kind != "pilot" or (request.path == "ledger" and body.get("player") != sender):
            return HttpResponse(403, {"error": "only the pilot room may post this"})
        if request.path == "ledger":  # kept for a pilot seated here (its ship is in the system)
            kept = self.seats.get(sender) is not None and self.economy.views.set(sender, body)
            return HttpResponse(200, {"applied": kept})
        applied_key = APPLIED_PREFIX + request.key
        if not request.key or await self.storage.get(applied_key) is not None:
            return HttpResponse(200, {"applied": False})
        now = self.clock.now()
        if request.path == "wreck":
            applied = self.wrecks.wreck_posted(body)
        else:
            applied = self.wrecks.unstow(body, now)
        self.economy.put(applied_key, now)
        await self._flush()
        await self._arm_wrecks()
        return HttpResponse(200, {"applied": applied})

    async def _audit(self) -> dict:
        """``GET economy``: ``{"region", "fields": {target: {resource: units now}}, "wrecks":
        [...], "dropped": {good: units}, "expired": {good: units}}`` (wrecks due expire first)."""
        now = self.clock.now()
        self.wrecks.expire(now)
        await self._flush()
        await self._arm_wrecks()
        return self.wrecks.audit(now)

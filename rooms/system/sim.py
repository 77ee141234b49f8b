"""A solar system's simulation, sans I/O: polyline flights, combat, patrols and respawns.

``SystemSim`` is owned by ``SolarSystemRoom`` (composition): it reads and changes the room's
ships only through the ``rooms.ships.fleet.Fleet`` it is given, never touches storage, the
clock or connections (every method takes the clock time it runs at), and is driven by the
room: ``step(tick, missed)`` once per tick, ``prepare(at)``/``decorate(rows, moving)`` around
each frame's rows, ``settle(now)`` before each write-behind flush.

- **Flights**: ``fly`` starts a polyline (``navigation.flight``); a ship's position stays a
  closed form of time; ``advance_paths(at)`` moves ships on to the leg they are on at ``at``
  (O(1) until one of their legs ends: ``next_turn``).
- **Combat** (``combat.Battle``, a struct of arrays stepped with ``kernels.combat.combat_tick``):
  the combat ticks since the last simulated one, each at its own tick time, at most
  ``MAX_CATCHUP`` of them (after a longer gap only the current one: a battle is not replayed
  across a sleep).
- **Respawns**: destroyed ships (``dead``) come back at their ``respawn_at`` with full hp, at
  rest at the spawn ring (players) or their post (pirates).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from .. import protocol
from .combat import ALERT_RADIUS, Battle, stats_of
from .navigation import NavGrid, advance_leg, flight, leg_end

__all__ = ["SystemSim", "MAX_CATCHUP"]

MAX_CATCHUP = 10
"""Combat ticks replayed at most when the alarm fires late (the rest is skipped)."""


class SystemSim:
    """The simulation of one system.

    ``battle``: the system's ``Battle``; ``grid``: its ``NavGrid`` (obstacles);
    ``respawn_delay``: seconds a wreck waits; ``spawn_point(ship_id) -> (x, y)``: where a
    player's ship respawns; ``tick_time(tick) -> float``: clock seconds of a tick;
    ``online_ships() -> iterable of ship ids``: the ships of connected players (they and the
    pirates take part in combat). ``fleet`` (a ``Fleet``) is set by the room once loaded.
    """

    def __init__(self, battle: Battle, grid: NavGrid, respawn_delay: float, *,
                 spawn_point: Callable[[int], tuple[float, float]], tick_time: Callable[[int], float],
                 online_ships: Callable[[], Iterable[int]]):
        self.battle = battle
        self.grid = grid
        self.respawn_delay = respawn_delay
        self.spawn_point = spawn_point
        self.tick_time = tick_time
        self.online_ships = online_ships
        self.fleet = None
        self.events: list[list[int]] = []
        """The combat events of the ticks since the last frame: ``[kind, a, b, value]`` rows."""
        self.sim_tick: int | None = None
        self.routed: dict[int, float] = {}  # ship id -> end time of its current leg (more to fly)
        self.next_turn = math.inf  # the earliest of those
        self.dead: set[int] = set()
        self.kills: list[tuple[int, int | None, float, float]] = []
        """Ships destroyed since the last ``take_kills``: ``(victim, killer or None, x, y)``,
        the killer being the ship of the tick's last hit on the victim."""

    # ---- the fleet's listeners ------------------------------------------------------------------
    def removed(self, ship_id: int) -> None:
        """A ship left the system: out of the duels, the routes and the wrecks."""
        self.dead.discard(ship_id)
        self.battle.end_duels(ship_id)
        if self.routed.pop(ship_id, None) is not None:
            self.next_turn = min(self.routed.values(), default=math.inf)

    def arrived(self, ship: dict, now: float) -> None:
        """A ship came into the system at clock time ``now`` (loaded, or unparked): it flies on
        along its waypoints, and a wreck still waits for its respawn (applied if due)."""
        if ship.get("path"):
            self.route(ship)
        if ship.get("respawn_at") is not None:
            self.dead.add(ship["id"])
            self.respawn_due(now)

    # ---- positions ---------------------------------------------------------------------------
    def route(self, ship: dict) -> None:
        """Track a ship with waypoints left: when its current leg ends."""
        if ship.get("path"):
            end = leg_end(ship)
            self.routed[ship["id"]] = end
            self.next_turn = min(self.next_turn, end)
        elif self.routed.pop(ship["id"], None) is not None:
            self.next_turn = min(self.routed.values(), default=math.inf)

    def advance_paths(self, at: float) -> None:
        """Move the ships flying polylines on to the leg they are on at ``at`` (closed form);
        O(1) until one of their legs ends."""
        if at < self.next_turn:
            return
        ships = self.fleet.ships
        for ship_id, end in list(self.routed.items()):
            if end > at:
                continue
            ship = ships.get(ship_id)
            moved = advance_leg(ship, at) if ship is not None else None
            if moved is not None:
                self.fleet.touch(moved)
                ship = moved
            if ship is None:
                del self.routed[ship_id]
            else:
                self.route(ship)
        self.next_turn = min(self.routed.values(), default=math.inf)

    def where(self, ship_id: int, at: float) -> tuple[float, float]:
        """A ship's position at ``at``: the combat state's while it fights, else its leg's."""
        self.fleet.arrays()
        i = self.battle.index.get(ship_id)
        if i is not None and self.battle.in_combat[i]:
            return float(self.battle.state["x"][i]), float(self.battle.state["y"][i])
        self.advance_paths(at)
        x, y, _ = self.fleet.position(self.fleet.ships[ship_id], at)
        return x, y

    def fighting(self, ship_id: int) -> bool:
        """Whether the ship is in combat (the kernel steers it)."""
        self.fleet.arrays()
        i = self.battle.index.get(ship_id)
        return i is not None and bool(self.battle.in_combat[i])

    def fly(self, ship: dict, x: float, y: float, waypoints: list, at: float, **extra) -> None:
        """Fly ``ship`` from ``(x, y)`` at ``at`` along ``waypoints``; ``extra`` keys set too."""
        new = {**ship, **flight(x, y, waypoints, at), **extra}
        self.fleet.touch(new)
        self.route(new)

    # ---- frames ------------------------------------------------------------------------------
    def prepare(self, at: float) -> None:
        """Before the ships' rows at ``at`` are read: respawns due, legs advanced."""
        self.respawn_due(at)
        self.advance_paths(at)

    def decorate(self, rows: dict, moving: bool) -> tuple[dict, bool]:
        """Add the combat flags to frame rows ``{id: (x, y, flags)}`` (ships in combat at
        their combat position); returns them and whether anything moves or fights."""
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

    def extras(self) -> tuple:
        """``(hp table, events)`` of this frame (``FrameSync.step``'s combat arguments)."""
        self.fleet.arrays()
        return self.battle.hp_table(), self.events

    # ---- the tick ----------------------------------------------------------------------------
    def step(self, tick: int) -> None:
        """Respawns due, then the combat ticks since the last simulated one (at most
        ``MAX_CATCHUP``), each at its own tick time."""
        self.respawn_due(self.tick_time(tick))
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
        for ship_id in self.online_ships():
            i = b.index.get(ship_id)
            if i is not None:
                mask[i] = True
        return mask

    def _combat_tick(self, tick: int) -> None:
        t = self.tick_time(tick)
        self.advance_paths(t)
        ids, cols, _ = self.fleet.arrays()
        if not ids:
            return
        b = self.battle
        eligible = self._eligible() & (b.state["hp"] > 0)
        _, x1, y1, moving = self.fleet.positions(t)
        _, x0, y0, _ = self.fleet.positions(t - 1.0 / protocol.TICK_RATE)
        result = b.step(max(tick, 0), t, x0, y0, x1, y1, eligible)
        s = b.state
        ships = self.fleet.ships
        self.events += [[k, a, c, v] for k, _, a, c, v in result.events.tolist()]
        for i in result.hit:
            ships[ids[i]]["hp"] = int(s["hp"][i])
            self.fleet.mark(ids[i])
        last_hit = {}
        for kind, _, a, c, _ in result.events.tolist():
            if kind == protocol.EVENT_ATTACK:
                last_hit[c] = a
        for i in result.destroyed:
            self.kills.append((ids[i], last_hit.get(ids[i]), float(s["x"][i]), float(s["y"][i])))
            self.fly(ships[ids[i]], float(s["x"][i]), float(s["y"][i]), [], t, hp=0,
                     respawn_at=t + self.respawn_delay, dest=None)
            self.dead.add(ids[i])
        for i in result.left:
            self.resume(ids[i], float(s["x"][i]), float(s["y"][i]), t)
        self._patrol(t, x1, y1, moving, eligible)

    def take_kills(self) -> list[tuple[int, int | None, float, float]]:
        """The kills since the last call (``kills``), emptied."""
        kills, self.kills = self.kills, []
        return kills

    def resume(self, ship_id: int, x: float, y: float, at: float) -> None:
        """A ship that left combat at ``(x, y)`` flies on: a pirate home to its post, a player
        to its ``move_to`` destination (if any); else it stays there (or, if combat steering
        left it inside an obstacle, flies out to the nearest free cell)."""
        ship = self.fleet.ships[ship_id]
        goal = ship.get("post") if ship.get("npc") else ship.get("dest")
        if not goal and not self.grid.is_free(x, y):
            goal = (x, y)  # steered into an obstacle: out to the nearest free cell
        waypoints = self.grid.plan((x, y), tuple(goal)) if goal else None
        self.fly(ship, x, y, waypoints or [], at)

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
            ship = self.fleet.ships[ship_id]
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
                self.fly(ship, here[0], here[1], waypoints, t, patrol_i=k)

    def respawn_due(self, at: float) -> None:
        """Destroyed ships whose ``respawn_at`` has come: full hp, at rest at the spawn ring
        (players) or their post (pirates), from ``respawn_at`` on."""
        if not self.dead:
            return
        for ship_id in sorted(self.dead):
            ship = self.fleet.ships.get(ship_id)
            if ship is None:
                self.dead.discard(ship_id)
                continue
            if ship["respawn_at"] > at:
                continue
            x, y = ship["post"] if ship.get("npc") else self.spawn_point(ship_id)
            self.fly(ship, x, y, [], ship["respawn_at"], hp=stats_of(ship)["max_hp"], respawn_at=None, dest=None)
            self.dead.discard(ship_id)
            self.fleet.arrays()
            self.battle.respawn(self.battle.index[ship_id], x, y)

    def disengage(self, ship_id: int, now: float) -> None:
        """Take a ship out of combat at ``now`` (its player left): it flies on from where it is."""
        self.fleet.arrays()
        b = self.battle
        b.end_duels(ship_id)
        i = b.index.get(ship_id)
        if i is not None and b.in_combat[i]:
            b.in_combat[i] = False
            b.state["target_id"][i] = -1
            self.resume(ship_id, float(b.state["x"][i]), float(b.state["y"][i]), now)

    def settle(self, now: float) -> None:
        """Before a write-behind flush: ships in combat are written at rest where they are at
        ``now`` (their legs are stale while the kernel steers them)."""
        if self.fleet is None or not self.battle.in_combat.any():
            return
        s = self.battle.state
        for i in np.flatnonzero(self.battle.in_combat).tolist():
            ship = self.fleet.ships.get(int(self.battle.ids[i]))
            if ship is not None:
                self.fly(ship, float(s["x"][i]), float(s["y"][i]), [], now)

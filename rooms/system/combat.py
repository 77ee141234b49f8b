"""Combat in a solar system: the ships' struct of arrays, teams and duels, pirates, respawns.

**State.** ``Battle`` keeps the 16 arrays of specs/combat.md §1 for every ship of the room
(players and pirates), ordered by ship id, across ticks; it is rebuilt (carrying every value
over) only when a ship is added or removed. Each tick the room calls ``Battle.step`` which runs
``kernels.combat.combat_tick`` on the ships that may fight:

- **eligible** ships: alive (hp > 0) and either a pirate or a ship whose player is connected.
  Ships of players who dropped (seat held) are out of combat: they neither attack nor can be
  attacked, so a room with nobody connected has no combat and can sleep. (Ships of players who
  left are not in the room at all: ``rooms.ships.parking``.)
- **teams**: every player ship is on ``PLAYER_TEAM`` and every pirate on ``PIRATE_TEAM``, in one
  ``combat_tick`` call: pirates and players fight whenever they come within sensor range
  (4 x weapon range, spec targeting), players never fight each other.
- **duels**: a player's ``attack`` on another player opens a duel between the two ships. While
  a duel is *engaged* (the two within the larger of their sensor ranges of each other) its two
  ships are taken out of the main call and fight each other in a ``combat_tick`` call of their
  own (teams ``DUEL_TEAMS``): pirates and other players neither attack them nor are attacked
  by them until it ends. A ship is in at most one duel. A duel ends when either ship is
  destroyed, either player disconnects, or ``DUEL_TIMEOUT`` seconds pass without either
  hitting the other (counted from the attack order).

**Movement.** A ship is *in combat* while the kernel gives it a target; it then moves by the
kernel's steering (velocity), not by its leg. A ship not in combat enters each tick at its
leg's position of the previous tick with the leg's velocity (so steering starts smoothly) and,
unless it found a target, is put back on its leg. When it leaves combat ``step`` reports it
(``StepResult.left``) and the room gives it a new leg from where it is.

**Deaths.** A destroyed ship stays where it died (flagged ``SHIP_DESTROYED``) and respawns
``RESPAWN_DELAY`` seconds later with full hp: players on the spawn ring around the star,
pirates at their post. ``hp`` and ``respawn_at`` live in the ship dicts the room persists
(write-behind), so they survive hibernation; a due respawn is applied on the next tick or
activation (closed form: it only depends on the time).

**Pirates** (``generate_pirates``): 2-4 per system, deterministic from the system id, each
guarding a post 550-880 units from the star (free cells, well clear of obstacles and of each
other). While an online player ship is within ``ALERT_RADIUS`` of a resting pirate it patrols
a small square around its post; otherwise it waits at its post; after a fight it flies home.

The tick number passed to the kernel is the room's tick; the seed is ``combat_seed(system
id)``. Units: world units, seconds, ticks of ``1/TICK_RATE`` s.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

import numpy as np

from .. import protocol
from starhold.kernels.combat import STATE_FIELDS, combat_tick

PLAYER_TEAM = 0
PIRATE_TEAM = 1
DUEL_TEAMS = (2, 3)
NPC_ID_BASE = 1_000_000
"""Pirate ship ids are ``NPC_ID_BASE + k`` (k = 1, 2, ...); players' ids stay below."""
RESPAWN_DELAY = protocol.RESPAWN_DELAY
DUEL_TIMEOUT = 30.0
"""Seconds a duel lasts without a hit between its two ships."""
ALERT_RADIUS = 350.0
"""A resting pirate patrols while an online player ship is this close, world units."""
PATROL_RADIUS = 60.0
"""Half the side of a pirate's patrol square around its post, world units."""
NEVER_FIRED = -1_000_000_000

PLAYER_STATS = {"max_hp": 200, "attack": 30.0, "defense": 10.0, "speed": protocol.SHIP_SPEED,
                "range": 60.0, "fire_rate": 5}
"""A player ship: hp, damage per shot before defence and variance, world units/s, world units,
ticks between shots."""
PIRATE_STATS = {"max_hp": 120, "attack": 20.0, "defense": 6.0, "speed": 40.0, "range": 50.0,
                "fire_rate": 6}
_PIRATE_NAMES = ("Red Corsair", "Black Jack", "Gray Widow", "Rust Baron", "Void Hound", "Ash Marauder")


def combat_seed(system_id: str) -> int:
    """The system's combat seed in [0, 2**64): from a SHA-256 of its id."""
    return int.from_bytes(hashlib.sha256(f"starhold-combat:{system_id}".encode()).digest()[:8], "big")


def stats_of(ship: dict) -> dict:
    """The combat stats of a ship dict (``PIRATE_STATS`` for ``npc`` ships)."""
    return PIRATE_STATS if ship.get("npc") else PLAYER_STATS


def generate_pirates(system_id: str, grid) -> list[dict]:
    """The pirate ship dicts of a system (no leg fields): ``id``, ``name``, ``npc`` True,
    ``player`` None, ``post`` ``[x, y]`` and ``patrol`` (4 ``[x, y]`` corners, each reachable
    in a straight line from the previous and from the post). ``grid``: the system's
    ``navigation.NavGrid``. Deterministic from ``system_id``."""
    digest = hashlib.sha256(f"starhold-pirates:{system_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    count = rng.randint(2, 4)
    pirates: list[dict] = []
    posts: list[tuple[float, float]] = []
    for _ in range(400):
        if len(pirates) == count:
            break
        angle, orbit = rng.uniform(0, 2 * math.pi), rng.uniform(550.0, 880.0)
        x, y = round(orbit * math.cos(angle), 1), round(orbit * math.sin(angle), 1)
        if grid.clearance(x, y) < PATROL_RADIUS * 1.5 + 20.0 or any(math.dist((x, y), p) < 500.0 for p in posts):
            continue
        r = PATROL_RADIUS
        corners = [[round(x + r * cx, 1), round(y + r * cy, 1)] for cx, cy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
        loop = [(x, y)] + [tuple(c) for c in corners] + [tuple(corners[0])]
        if not all(grid.line_of_sight(a, b) for a, b in zip(loop, loop[1:])):
            continue
        k = len(pirates) + 1
        posts.append((x, y))
        pirates.append({"id": NPC_ID_BASE + k, "name": f"{rng.choice(_PIRATE_NAMES)} {k}", "npc": True,
                        "player": None, "post": [x, y], "patrol": corners})
    return pirates


@dataclass
class StepResult:
    """What one ``Battle.step`` did: ``events`` int64 (E, 5) rows ``(kind, tick, a, b, value)``;
    ``left``: indices of ships that left combat this tick (need a new leg; destroyed ships are
    not in it); ``destroyed``: indices of ships destroyed this tick; ``hit``: indices whose hp
    changed."""

    events: np.ndarray
    left: list[int] = field(default_factory=list)
    destroyed: list[int] = field(default_factory=list)
    hit: list[int] = field(default_factory=list)


class Battle:
    """The struct of arrays of a room's ships and the per-tick combat step (module docstring).

    ``ids``: int64 (N,) ship ids, increasing; ``state``: the 16 arrays (specs/combat.md §1);
    ``in_combat``: bool (N,), ships that had a target after the last step; ``npc``: bool (N,);
    ``index``: ship id -> array index; ``duels``: ``{(a, b): expires_at}`` with a < b ship ids.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.ids = np.zeros(0, dtype=np.int64)
        self.index: dict[int, int] = {}
        self.state = _empty_state(0)
        self.in_combat = np.zeros(0, dtype=bool)
        self.npc = np.zeros(0, dtype=bool)
        self.duels: dict[tuple[int, int], float] = {}

    # ---- structure -----------------------------------------------------------------------------
    def rebuild(self, ids: list[int], ships: dict[int, dict]) -> None:
        """Take the ships ``ids`` (increasing) of ``ships`` (id -> ship dict), keeping the arrays'
        values of ships already known (new ones start from their dict: hp, stats, leg end)."""
        old_state, old_index, old_in = self.state, self.index, self.in_combat
        n = len(ids)
        state = _empty_state(n)
        in_combat = np.zeros(n, dtype=bool)
        npc = np.zeros(n, dtype=bool)
        for i, ship_id in enumerate(ids):
            j = old_index.get(ship_id)
            if j is not None:
                for name in STATE_FIELDS:
                    state[name][i] = old_state[name][j]
                in_combat[i] = old_in[j]
            else:
                ship = ships[ship_id]
                stats = stats_of(ship)
                state["id"][i] = ship_id
                state["team"][i] = PIRATE_TEAM if ship.get("npc") else PLAYER_TEAM
                state["x"][i], state["y"][i] = ship["tx"], ship["ty"]
                state["max_hp"][i] = stats["max_hp"]
                state["hp"][i] = ship.get("hp", stats["max_hp"])
                for name in ("attack", "defense", "speed", "range", "fire_rate"):
                    state[name][i] = stats[name]
                state["last_fired"][i] = NEVER_FIRED
                state["target_id"][i] = -1
            npc[i] = bool(ships[ship_id].get("npc"))
        self.ids = np.asarray(ids, dtype=np.int64)
        self.index = {ship_id: i for i, ship_id in enumerate(ids)}
        self.state, self.in_combat, self.npc = state, in_combat, npc
        self.duels = {k: v for k, v in self.duels.items() if k[0] in self.index and k[1] in self.index}

    def hp_table(self) -> dict[int, tuple[int, int]]:
        """Ship id -> ``(hp, max_hp)``, for the frames."""
        return dict(zip(self.ids.tolist(), zip(self.state["hp"].tolist(), self.state["max_hp"].tolist())))

    def alive(self, i: int) -> bool:
        return bool(self.state["hp"][i] > 0)

    # ---- duels ---------------------------------------------------------------------------------
    def duel_of(self, ship_id: int) -> tuple[int, int] | None:
        for pair in self.duels:
            if ship_id in pair:
                return pair
        return None

    def open_duel(self, a: int, b: int, now: float) -> None:
        """Open a duel between ships ``a`` and ``b`` (ending ``a``'s other duel, if any)."""
        mine = self.duel_of(a)
        if mine is not None and set(mine) != {a, b}:
            del self.duels[mine]
        self.duels[(min(a, b), max(a, b))] = now + DUEL_TIMEOUT

    def end_duels(self, ship_id: int) -> None:
        for pair in [p for p in self.duels if ship_id in p]:
            del self.duels[pair]

    # ---- the tick ------------------------------------------------------------------------------
    def step(self, tick: int, now: float, x0, y0, x1, y1, eligible: np.ndarray) -> StepResult:
        """One combat tick at clock time ``now``.

        ``x0, y0``: float64 (N,) the ships' leg positions at the previous tick, ``x1, y1`` at
        this one (world units); ``eligible``: bool (N,), alive ships that may fight (pirates,
        ships of connected players). Updates the arrays and ``in_combat``; returns a
        ``StepResult``. Ships not in combat end at ``(x1, y1)``."""
        s = self.state
        eligible = eligible & (s["hp"] > 0)
        was = self.in_combat
        rest = ~was
        s["x"][rest], s["y"][rest] = x0[rest], y0[rest]
        s["vx"][rest] = (x1[rest] - x0[rest]) * protocol.TICK_RATE
        s["vy"][rest] = (y1[rest] - y0[rest]) * protocol.TICK_RATE
        s["target_id"][~eligible] = -1

        # expired or broken duels end; engaged ones fight apart
        in_duel = np.zeros(len(self.ids), dtype=bool)
        groups: list[tuple[np.ndarray, np.ndarray | None]] = []
        for pair, expires in list(self.duels.items()):
            ia, ib = self.index[pair[0]], self.index[pair[1]]
            if expires <= now or not (eligible[ia] and eligible[ib]):
                del self.duels[pair]
                continue
            d = math.hypot(s["x"][ib] - s["x"][ia], s["y"][ib] - s["y"][ia])
            if d <= 4.0 * max(s["range"][ia], s["range"][ib]):
                in_duel[ia] = in_duel[ib] = True
                groups.append((np.array([ia, ib]), np.array(DUEL_TEAMS, dtype=np.int64)))
        main = np.flatnonzero(eligible & ~in_duel)
        teams = s["team"][main]
        if len(main) > 1 and teams.min() != teams.max():
            groups.append((main, None))
        else:
            s["target_id"][main] = -1

        events = [self._run(idx, team, tick) for idx, team in groups]
        ev = np.concatenate(events) if events else np.zeros((0, 5), dtype=np.int64)

        now_in = eligible & (s["target_id"] != -1)
        result = StepResult(ev)
        if len(ev):
            attacks = ev[ev[:, 0] == protocol.EVENT_ATTACK]
            result.hit = sorted({self.index[int(b)] for b in attacks[:, 3]})
            for a, b in attacks[:, 2:4].tolist():
                pair = (min(a, b), max(a, b))
                if pair in self.duels:
                    self.duels[pair] = now + DUEL_TIMEOUT
            result.destroyed = [self.index[int(a)] for a in ev[ev[:, 0] == protocol.EVENT_DESTROYED][:, 2]]
            for i in result.destroyed:
                now_in[i] = False
                self.end_duels(int(self.ids[i]))
        dead = np.zeros(len(self.ids), dtype=bool)
        dead[result.destroyed] = True
        result.left = np.flatnonzero(was & ~now_in & ~dead).tolist()
        back = ~was & ~now_in & ~dead  # never fought: back on the leg
        s["x"][back], s["y"][back] = x1[back], y1[back]
        self.in_combat = now_in
        return result

    def _run(self, idx: np.ndarray, teams: np.ndarray | None, tick: int) -> np.ndarray:
        """``combat_tick`` on the ships ``idx`` (increasing), with ``teams`` instead of their own."""
        s = self.state
        if len(idx) == len(self.ids) and teams is None:
            return np.asarray(combat_tick(s, int(tick), self.seed), dtype=np.int64).reshape(-1, 5)
        sub = {name: np.ascontiguousarray(array[idx]) for name, array in s.items()}
        if teams is not None:
            sub["team"] = np.ascontiguousarray(teams, dtype=np.int64)
        events = np.asarray(combat_tick(sub, int(tick), self.seed), dtype=np.int64).reshape(-1, 5)
        for name, array in s.items():
            if name != "team":
                array[idx] = sub[name]
        return events

    def respawn(self, i: int, x: float, y: float) -> None:
        """Ship ``i`` back to full hp at ``(x, y)``, at rest, out of combat."""
        s = self.state
        s["hp"][i] = s["max_hp"][i]
        s["x"][i], s["y"][i], s["vx"][i], s["vy"][i] = x, y, 0.0, 0.0
        s["target_id"][i] = -1
        s["last_fired"][i] = NEVER_FIRED
        self.in_combat[i] = False


def _empty_state(n: int) -> dict[str, np.ndarray]:
    from starhold.kernels.combat import INT_FIELDS

    return {name: np.zeros(n, dtype=np.int64 if name in INT_FIELDS else np.float64) for name in STATE_FIELDS}


__all__ = ["Battle", "StepResult", "generate_pirates", "combat_seed", "stats_of", "PLAYER_TEAM", "PIRATE_TEAM",
           "DUEL_TEAMS", "NPC_ID_BASE", "RESPAWN_DELAY", "DUEL_TIMEOUT", "ALERT_RADIUS", "PLAYER_STATS",
           "PIRATE_STATS"]

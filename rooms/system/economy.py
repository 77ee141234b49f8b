"""A system's economy orders: ``scan`` and ``mine``, the fields' deposits, the ledger views
(docs/economy.md §3-5; docs/protocol.md §3 "Economy"). Wrecks, loot and bounties are
``rooms.system.wrecks``.

- **scan** ``{target}`` (``rooms.system.targets``): the ship must be alive and within
  ``SCAN_RANGE`` of the target; it is flagged ``SHIP_SCANNING`` for ``SCAN_SECONDS`` and the
  target must still be within range then. A ``move_to``, ``attack``, ``jump``, ``route``,
  ``mine``, another ``scan``, the ship's destruction or its leaving cancels it. On completion
  the result goes to the scanner and, for a ship with a pilot room, ``discover {scan,
  fragments}`` is posted to it (key ``discover:<scan id>``, scan id ``<system>:<n>``). A
  completed planet scan also lets that ship mine the planet (until it leaves the system).
- **mine** ``{target}``: an asteroid field, or a planet this ship scanned. The ship (alive,
  with a pilot room, out of combat) stops where it is and takes, every ``MINE_CYCLE`` s,
  ``MINE_YIELD`` units (at most the hold's free space in the ledger view) of the resource the
  field has most of now; each cycle depletes the field and posts ``stow`` to the pilot in one
  commit (key ``stow:<system>:<op>``). Mining stops on another order, when the ship moves,
  fights, is destroyed or leaves, or (with an error, seq 0) when it is out of range
  (``ERR_TOO_FAR``: a planet moves on), the hold is full (``ERR_HOLD_FULL``) or the field is
  empty (``ERR_EMPTY``). ``mine {target: null}`` stops it. Scans and mining live in memory:
  they progress while a tick runs (someone is connected) and end silently if the room
  restarts (a crash, or a sleep while their pilots are away); the pilot orders them again.
- **deposits**: per field and resource a ``Deposit`` (amount at a time, closed-form regrowth),
  stored once touched (``eco:field:<n>``: ``{resource: [amount, t0]}``); an untouched field
  is full. ``unstow`` from the pilot puts goods back (up to the capacity: the rest is what the
  field regrew meanwhile).
- **ledger views**: ``rooms.system.views``.
"""

from __future__ import annotations

from starhold import Connection
from .. import protocol
from ..economy.resources import RESOURCES, Deposit
from .targets import ANOMALY, PLANET, Targets
from .views import LedgerViews

PILOT = "pilot"
META_KEY = "eco:meta"
FIELD_PREFIX = "eco:field:"
APPLIED_PREFIX = "eco:applied:"
"""Storage keys of the ``unstow``/``wreck`` post keys the system applied (value: clock s)."""
APPLIED_KEEP = 7 * 86400.0
"""Seconds an applied key is kept (posts come from transactional outboxes: a duplicate arrives
within seconds of the original); older ones are deleted when the room starts."""


class SystemEconomy:
    """The economy orders and state of one ``SolarSystemRoom`` (``room``)."""

    def __init__(self, room, targets: Targets):
        self.room = room
        self.targets = targets
        self.meta = {"op": 0, "scan": 0, "wreck": 0, "kills": {}, "dropped": {}, "expired": {}}
        self.deposits: dict[int, dict[str, Deposit]] = {}
        self.views = LedgerViews(self)
        self.scans: dict[int, dict] = {}  # ship id -> {"target", "ends", "player"}
        self.miners: dict[int, dict] = {}  # ship id -> {"target", "next", "player"}
        self._puts: dict = {}
        self._deletes: set[str] = set()

    # ---- storage -----------------------------------------------------------------------------
    async def load(self) -> None:
        storage = self.room.storage
        self.meta.update(await storage.get(META_KEY) or {})
        for key, stored in (await storage.list(prefix=FIELD_PREFIX)).items():
            field = int(key[len(FIELD_PREFIX):])
            caps = self.targets.capacities(field)
            self.deposits[field] = {r: Deposit(caps[r], float(a), float(t)) for r, (a, t) in stored.items() if r in caps}
        await self.views.load(set(self.room.seats.seats))
        old = self.room.clock.now() - APPLIED_KEEP
        self._deletes.update(k for k, t in (await storage.list(prefix=APPLIED_PREFIX)).items() if t < old)

    def put(self, key: str, value) -> None:
        self._puts[key] = value
        self._deletes.discard(key)

    def delete(self, key: str) -> None:
        self._puts.pop(key, None)
        self._deletes.add(key)

    def meta_changed(self) -> None:
        self.put(META_KEY, self.meta)

    @property
    def dirty(self) -> bool:
        """Whether there are writes to take (the room flushes them in the hook's commit)."""
        return bool(self._puts or self._deletes)

    def take_writes(self) -> tuple[dict, list[str]]:
        puts, deletes = self._puts, sorted(self._deletes)
        self._puts, self._deletes = {}, set()
        return puts, deletes

    def next_op(self) -> int:
        self.meta["op"] += 1
        self.meta_changed()
        return self.meta["op"]

    # ---- sockets -----------------------------------------------------------------------------
    def conn_of(self, player: str | None) -> Connection | None:
        seat = self.room.seats.get(player) if player else None
        conn_id = seat.get("conn") if seat else None
        return next((c for c in self.room.connections if c.id == conn_id), None) if conn_id else None

    def send(self, player: str | None, type_: str, payload: dict, seq: int = 0) -> None:
        conn = self.conn_of(player)
        if conn is not None:
            conn.send(protocol.encode(type_, seq, payload))

    def error(self, player: str | None, code: int, message: str, seq: int = 0) -> None:
        conn = self.conn_of(player)
        if conn is not None:
            conn.send(protocol.error_frame(code, message, seq), allow_unconfirmed=True)

    # ---- deposits ----------------------------------------------------------------------------
    def deposit(self, field: int, name: str, now: float) -> Deposit:
        held = self.deposits.get(field, {}).get(name)
        if held is None:
            capacity = self.targets.capacities(field).get(name, 0)
            held = Deposit(capacity, float(capacity), now)
        return held

    def amounts(self, field: int, now: float) -> dict[str, float]:
        """``{resource: units now}`` of deposits field ``field``."""
        return {name: self.deposit(field, name, now).amount_at(now) for name in self.targets.capacities(field)}

    def _store(self, field: int, name: str, deposit: Deposit) -> None:
        self.deposits.setdefault(field, {})[name] = deposit
        self.put(FIELD_PREFIX + str(field), {r: [d.amount, d.t0] for r, d in self.deposits[field].items()})

    def give_back(self, field: int, goods: dict[str, int], now: float) -> None:
        """``unstow``: ``goods`` go back into deposits field ``field`` (up to each capacity)."""
        caps = self.targets.capacities(field)
        for name, units in goods.items():
            if name in caps:
                held = self.deposit(field, name, now)
                self._store(field, name, Deposit(held.capacity, min(float(held.capacity), held.amount_at(now) + units), now))

    # ---- orders ------------------------------------------------------------------------------
    def _checked(self, conn: Connection, ship: dict, seq: int, *, hold: bool) -> bool:
        """Whether ``ship`` may take an economy order (else ``ERR_SHIP_BUSY`` to ``conn``)."""
        reason = None
        if ship["id"] in self.room.sim.dead:
            reason = "your ship is destroyed"
        elif hold and "checkout" not in ship:
            reason = "this ship has no hold (no pilot)"
        elif hold and self.room.sim.fighting(ship["id"]):
            reason = "your ship is in combat"
        if reason is not None:
            conn.send(protocol.error_frame(protocol.ERR_SHIP_BUSY, reason, seq), allow_unconfirmed=True)
        return reason is None

    def _target(self, conn: Connection, target: str, seq: int) -> tuple[str, int] | None:
        found = self.targets.parse(target)
        if found is None:
            conn.send(protocol.error_frame(protocol.ERR_UNKNOWN_OBJECT, f"no target {target[:64]!r} here", seq),
                      allow_unconfirmed=True)
        return found

    def _distance(self, ship_id: int, kind: str, index: int, now: float) -> float:
        x, y = self.room.sim.where(ship_id, now)
        return self.targets.distance(kind, index, x, y, now)

    def scan(self, conn: Connection, ship: dict, target: str, seq: int) -> None:
        """The ``scan`` order (module docstring)."""
        now = self.room.clock.now()
        found = self._checked(conn, ship, seq, hold=False) and self._target(conn, target, seq)
        if not found:
            return
        if self._distance(ship["id"], *found, now) > protocol.SCAN_RANGE:
            conn.send(protocol.error_frame(protocol.ERR_TOO_FAR, f"{target} is beyond scan range", seq),
                      allow_unconfirmed=True)
            return
        self.cancel(ship["id"], "replaced")
        name = Targets.name(*found)
        ends = now + protocol.SCAN_SECONDS
        self.scans[ship["id"]] = {"target": name, "ends": ends, "player": ship.get("player")}
        conn.send(protocol.encode(protocol.SCAN, seq, {"target": name, "state": "started",
                                                       "ends": ends - self.room.tick_epoch}))

    def mine(self, conn: Connection, ship: dict, target: str | None, seq: int) -> None:
        """The ``mine`` order (module docstring)."""
        if target is None:
            self.cancel(ship["id"], "stopped", scans=False)
            return
        now = self.room.clock.now()
        found = self._checked(conn, ship, seq, hold=True) and self._target(conn, target, seq)
        if not found:
            return
        kind, index = found
        name = Targets.name(kind, index)
        error = None
        if kind == ANOMALY:
            error = protocol.ERR_UNKNOWN_OBJECT, f"{name} cannot be mined"
        elif kind == PLANET and name not in (ship.get("scanned") or ()):
            error = protocol.ERR_UNKNOWN_OBJECT, f"scan {name} before mining it"
        elif self._distance(ship["id"], kind, index, now) > protocol.MINE_RANGE:
            error = protocol.ERR_TOO_FAR, f"{name} is beyond mining range"
        elif self.views.free_space(ship.get("player")) <= 0:
            error = protocol.ERR_HOLD_FULL, "your hold is full"
        elif max(self.amounts(Targets.field_of(kind, index), now).values(), default=0.0) < 1.0:
            error = protocol.ERR_EMPTY, f"{name} has nothing left to mine"
        if error is not None:
            conn.send(protocol.error_frame(*error, seq), allow_unconfirmed=True)
            return
        self.cancel(ship["id"], "replaced")
        self.room.orders.cancel(ship)
        sim = self.room.sim
        x, y = sim.where(ship["id"], now)
        sim.fly(self.room.ships[ship["id"]], x, y, [], now, dest=None)  # stops where it is
        self.miners[ship["id"]] = {"target": name, "next": now + protocol.MINE_CYCLE, "player": ship.get("player")}
        conn.send(protocol.encode(protocol.MINE, seq, {"target": name, "state": "started"}))

    def cancel(self, ship_id: int, reason: str, *, scans: bool = True) -> None:
        """End the scan (if ``scans``) and the mining of ship ``ship_id``, telling its player
        (``scan``/``mine`` with ``state`` ``"cancelled"``/``"stopped"`` and ``reason``)."""
        scan = self.scans.pop(ship_id, None) if scans else None
        if scan is not None:
            self.send(scan["player"], protocol.SCAN, {"target": scan["target"], "state": "cancelled", "reason": reason})
        mining = self.miners.pop(ship_id, None)
        if mining is not None:
            self.send(mining["player"], protocol.MINE, {"target": mining["target"], "state": "stopped", "reason": reason})

    @property
    def busy(self) -> bool:
        """Whether a ship scans or mines (the loop must run)."""
        return bool(self.scans or self.miners)

    def decorate(self, rows: dict) -> None:
        """Add ``SHIP_SCANNING``/``SHIP_MINING`` to frame rows ``{id: (x, y, flags)}``."""
        for ids, flag in ((self.scans, protocol.SHIP_SCANNING), (self.miners, protocol.SHIP_MINING)):
            for ship_id in ids:
                if ship_id in rows:
                    x, y, flags = rows[ship_id]
                    rows[ship_id] = (x, y, flags | flag)

    # ---- the tick ----------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """Scans due complete, mining cycles due run (at clock time ``now``)."""
        for ship_id in [i for i, s in self.scans.items() if s["ends"] <= now]:
            self._complete(ship_id, now)
        for ship_id in [i for i, m in self.miners.items() if m["next"] <= now]:
            self._cycle(ship_id, now)

    def _complete(self, ship_id: int, now: float) -> None:
        scan, ship = self.scans[ship_id], self.room.ships.get(ship_id)
        kind, index = self.targets.parse(scan["target"])
        if ship is None or ship_id in self.room.sim.dead:
            return self.cancel(ship_id, "destroyed")
        if self._distance(ship_id, kind, index, now) > protocol.SCAN_RANGE:
            return self.cancel(ship_id, "out of range")
        del self.scans[ship_id]
        result, fragments = self.targets.scan(kind, index)
        self.meta["scan"] += 1
        self.meta_changed()
        scan_id = f"{self.room.name}:{self.meta['scan']}"
        if "checkout" in ship and ship.get("player"):
            self.room.rooms.post(PILOT, ship["player"], "discover", {"scan": scan_id, "fragments": fragments},
                                 key=f"discover:{scan_id}")
        if kind == PLANET and scan["target"] not in (ship.get("scanned") or ()):
            self.room.fleet.touch({**ship, "scanned": [*(ship.get("scanned") or ()), scan["target"]]})
        self.send(scan["player"], protocol.SCAN, {"target": scan["target"], "state": "done", "scan": scan_id,
                                                  **result, "fragments": fragments})

    def _stop(self, ship_id: int, reason: str, code: int | None = None) -> None:
        player = self.miners[ship_id]["player"]
        self.cancel(ship_id, reason, scans=False)
        if code is not None:
            self.error(player, code, f"mining stopped: {reason}")

    def _cycle(self, ship_id: int, now: float) -> None:
        mining, ship, sim = self.miners[ship_id], self.room.ships.get(ship_id), self.room.sim
        kind, index = self.targets.parse(mining["target"])
        if ship is None or ship_id in sim.dead:
            return self._stop(ship_id, "destroyed")
        if sim.fighting(ship_id) or self.room.fleet.position(ship, now)[2]:
            return self._stop(ship_id, "combat" if sim.fighting(ship_id) else "moved")
        if self._distance(ship_id, kind, index, now) > protocol.MINE_RANGE:
            return self._stop(ship_id, "out of range", protocol.ERR_TOO_FAR)
        free = self.views.free_space(mining["player"])
        if free <= 0:
            return self._stop(ship_id, "hold full", protocol.ERR_HOLD_FULL)
        field = Targets.field_of(kind, index)
        amounts = self.amounts(field, now)
        name = max(RESOURCES, key=lambda r: (amounts.get(r, -1.0), -RESOURCES.index(r)))
        taken, deposit = self.deposit(field, name, now).mine(min(protocol.MINE_YIELD, free), now)
        if taken < 1:
            return self._stop(ship_id, "empty", protocol.ERR_EMPTY)
        self._store(field, name, deposit)
        goods = {name: taken}
        op = self.next_op()
        self.room.rooms.post(PILOT, mining["player"], "stow",
                             {"goods": goods, "source": "mine", "from": mining["target"]},
                             key=f"stow:{self.room.name}:{op}")
        self.send(mining["player"], protocol.MINE, {"target": mining["target"], "state": "mined", "goods": goods})
        self.views.stowed(mining["player"], goods)
        mining["next"] += protocol.MINE_CYCLE
        if mining["next"] <= now:  # the tick came late (or the loop rested): no catching up
            mining["next"] = now + protocol.MINE_CYCLE

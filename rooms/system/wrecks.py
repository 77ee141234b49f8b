"""A system's wrecks, pirate bounties and loot (docs/economy.md §4-5).

- **Kills** (``kills``, from ``SystemSim.take_kills`` each tick): a destroyed pirate pays
  ``loot.BOUNTY`` of its class to the player whose ship dealt the killing blow (the last hit of
  that tick; a ship with a pilot room): ``bounty {credits, pirate}`` posted to the pilot, key
  ``bounty:<system>:<pirate>:<kill n>`` (n counts that pirate's destructions, durably), and
  leaves a wreck with ``loot.pirate_loot`` where it died (counted in ``dropped``). A destroyed
  player ship with a pilot room gets a wreck id and ``destroyed {wreck, x, y}`` is posted to
  its pilot (key ``destroyed:<system>:<wreck id>``); the pilot posts ``wreck`` back with the
  goods lost, and the wreck appears then (``wreck_posted``).
- **Wrecks** (``eco:wreck:<id>``: ``{"id", "x", "y", "goods", "expires", "kind"}``, ``expires``
  in clock seconds) last ``WRECK_TTL`` s; then what is left is destroyed and counted in
  ``expired`` (a deadline of the room's ticker, and at every tick). Every change sends
  ``wrecks`` to every socket.
- **loot** ``{wreck}``: a ship (alive, with a pilot room) within ``LOOT_RANGE`` of the wreck
  takes everything that fits the free space of its ledger view, goods in ``RESOURCES`` order;
  ``stow {goods, source: "loot", from: "wreck:<id>"}`` is posted (key ``stow:<system>:<op>``)
  in the commit that takes the goods out of the wreck; an emptied wreck disappears.
- ``unstow`` from the pilot (``unstow``) puts goods back where they came from: a field or
  planet (``SystemEconomy.give_back``), or the wreck, or counts them ``expired`` if the wreck is
  gone. ``audit`` is the system's ``GET economy``.
"""

from __future__ import annotations

import math

from starhold import Connection
from .. import protocol
from ..economy.loot import bounty_for, pirate_loot
from ..economy.resources import RESOURCES
from .economy import PILOT, SystemEconomy
from .targets import Targets
from .views import goods_of

PREFIX = "eco:wreck:"


def _add(counter: dict, goods: dict[str, int]) -> None:
    for name, units in goods.items():
        counter[name] = counter.get(name, 0) + units


class SystemWrecks:
    """The wrecks of one ``SolarSystemRoom`` (``room``), kept with its ``economy``."""

    def __init__(self, room, economy: SystemEconomy):
        self.room = room
        self.economy = economy
        self.wrecks: dict[int, dict] = {}
        self.changed = False
        """Whether the wrecks changed since the last ``broadcast`` (and the deadline moved)."""

    async def load(self) -> None:
        self.wrecks = {w["id"]: w for w in (await self.room.storage.list(prefix=PREFIX)).values()}
        self.expire(self.room.clock.now())

    def _put(self, wreck: dict) -> None:
        self.wrecks[wreck["id"]] = wreck
        self.economy.put(f"{PREFIX}{wreck['id']}", wreck)
        self.changed = True

    def _remove(self, wreck_id: int) -> None:
        self.wrecks.pop(wreck_id, None)
        self.economy.delete(f"{PREFIX}{wreck_id}")
        self.changed = True

    def _new_id(self) -> int:
        meta = self.economy.meta
        meta["wreck"] += 1
        self.economy.meta_changed()
        return meta["wreck"]

    def create(self, wreck_id: int, x: float, y: float, goods: dict[str, int], kind: str) -> None:
        lim = protocol.WORLD_LIMIT
        self._put({"id": wreck_id, "x": min(max(float(x), -lim), lim), "y": min(max(float(y), -lim), lim),
                   "goods": goods, "expires": self.room.clock.now() + protocol.WRECK_TTL, "kind": kind})

    # ---- kills -------------------------------------------------------------------------------
    def kills(self, kills: list[tuple[int, int | None, float, float]]) -> None:
        """Ships destroyed this tick: ``(victim id, killer id or None, x, y)`` each."""
        room, economy = self.room, self.economy
        for victim, killer, x, y in kills:
            economy.cancel(victim, "destroyed")
            ship = room.ships.get(victim)
            if ship is None:
                continue
            if ship.get("npc"):
                kills_of = economy.meta["kills"]
                n = kills_of[str(victim)] = kills_of.get(str(victim), 0) + 1
                economy.meta_changed()
                loot = pirate_loot(room.name, victim, n, economy.targets.region)
                _add(economy.meta["dropped"], loot)
                self.create(self._new_id(), x, y, loot, "pirate")
                hunter = room.ships.get(killer) if killer is not None else None
                if hunter is not None and not hunter.get("npc") and "checkout" in hunter and hunter.get("player"):
                    room.rooms.post(PILOT, hunter["player"], "bounty", {"credits": bounty_for(ship), "pirate": victim},
                                    key=f"bounty:{room.name}:{victim}:{n}")
            elif "checkout" in ship and ship.get("player"):
                wreck_id = self._new_id()
                room.rooms.post(PILOT, ship["player"], "destroyed", {"wreck": wreck_id, "x": x, "y": y},
                                key=f"destroyed:{room.name}:{wreck_id}")

    def wreck_posted(self, body: dict) -> bool:
        """The pilot's ``wreck {wreck, goods, x, y}``: the wreck appears with the goods (if
        any). Goods that cannot be placed (a wreck id this system did not issue or already
        has, a position that is not a number) are destroyed and counted in ``expired``, so
        that the books balance. Returns whether the wreck was created."""
        goods = goods_of(body.get("goods"))
        try:
            wreck_id, x, y = int(body.get("wreck")), float(body.get("x", 0.0)), float(body.get("y", 0.0))
            valid = 0 < wreck_id <= self.economy.meta["wreck"] and wreck_id not in self.wrecks \
                and math.isfinite(x) and math.isfinite(y)
        except (TypeError, ValueError):
            valid = False
        if not goods:
            return False
        if not valid:
            _add(self.economy.meta["expired"], goods)
            self.economy.meta_changed()
            return False
        self.create(wreck_id, x, y, goods, "ship")
        return True

    # ---- loot --------------------------------------------------------------------------------
    def loot(self, conn: Connection, ship: dict, wreck_id: int, seq: int) -> None:
        """The ``loot`` order (module docstring)."""
        economy, now = self.economy, self.room.clock.now()
        if not economy._checked(conn, ship, seq, hold=True):
            return
        self.expire(now)
        wreck = self.wrecks.get(wreck_id)
        player = ship.get("player")
        error = None
        if wreck is None:
            error = protocol.ERR_UNKNOWN_OBJECT, f"no wreck {wreck_id} here"
        elif math.dist(self.room.sim.where(ship["id"], now), (wreck["x"], wreck["y"])) > protocol.LOOT_RANGE:
            error = protocol.ERR_TOO_FAR, f"wreck {wreck_id} is beyond loot range"
        elif not wreck["goods"]:
            error = protocol.ERR_EMPTY, f"wreck {wreck_id} is empty"
        elif economy.views.free_space(player) <= 0:
            error = protocol.ERR_HOLD_FULL, "your hold is full"
        if error is not None:
            conn.send(protocol.error_frame(*error, seq), allow_unconfirmed=True)
            return
        free, taken, left = economy.views.free_space(player), {}, dict(wreck["goods"])
        for name in RESOURCES:
            units = min(left.get(name, 0), free)
            if units > 0:
                taken[name] = units
                free -= units
                left[name] -= units
                if not left[name]:
                    del left[name]
        if left:
            self._put({**wreck, "goods": left})
        else:
            self._remove(wreck_id)
        op = economy.next_op()
        self.room.rooms.post(PILOT, player, "stow", {"goods": taken, "source": "loot", "from": f"wreck:{wreck_id}"},
                             key=f"stow:{self.room.name}:{op}")
        conn.send(protocol.encode(protocol.LOOT, seq, {"wreck": wreck_id, "goods": taken}))
        economy.views.stowed(player, taken)

    def give_back(self, wreck_id: int, goods: dict[str, int]) -> None:
        """``unstow`` to ``wreck:<id>``: back into the wreck, or destroyed if it is gone."""
        wreck = self.wrecks.get(wreck_id)
        if wreck is None:
            _add(self.economy.meta["expired"], goods)
            self.economy.meta_changed()
            return
        merged = dict(wreck["goods"])
        _add(merged, goods)
        self._put({**wreck, "goods": {n: merged[n] for n in RESOURCES if merged.get(n)}})

    def unstow(self, body: dict, now: float) -> bool:
        """The pilot's ``unstow {from, goods}``: the goods go back to the field, planet or wreck
        they came from (``SystemEconomy.give_back``, ``give_back``). Returns whether ``from``
        named one (else nothing happens)."""
        goods, source = goods_of(body.get("goods")), str(body.get("from") or "")
        kind, _, index = source.partition(":")
        if not goods or not index.isdigit():
            return False
        if kind == "wreck":
            self.give_back(int(index), goods)
            return True
        found = self.economy.targets.parse(source)
        field = Targets.field_of(*found) if found else None
        if field is None:
            return False
        self.economy.give_back(field, goods, now)
        return True

    def audit(self, now: float) -> dict:
        """``GET economy``: ``{"region", "fields": {target: {resource: units now}}, "wrecks":
        [...] (as in ``payload``), "dropped": {good: units}, "expired": {good: units}}``."""
        economy = self.economy
        fields = {Targets.name(k, i): economy.amounts(Targets.field_of(k, i), now) for k, i in economy.targets.mineable()}
        return {"region": economy.targets.region, "fields": fields, "wrecks": self.payload()["wrecks"],
                "dropped": dict(economy.meta["dropped"]), "expired": dict(economy.meta["expired"])}

    # ---- expiry and the wire -------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Wrecks whose time has come are destroyed with what they hold (``expired``)."""
        for wreck in [w for w in self.wrecks.values() if w["expires"] <= now]:
            _add(self.economy.meta["expired"], wreck["goods"])
            self.economy.meta_changed()
            self._remove(wreck["id"])

    def next_expiry(self) -> float | None:
        return min((w["expires"] for w in self.wrecks.values()), default=None)

    def payload(self) -> dict:
        """The ``wrecks`` message: ``{"wrecks": [{"id", "x", "y", "goods", "expires" (game s)}]}``."""
        epoch = self.room.tick_epoch
        return {"wrecks": [{"id": w["id"], "x": w["x"], "y": w["y"], "goods": w["goods"], "expires": w["expires"] - epoch}
                           for w in sorted(self.wrecks.values(), key=lambda w: w["id"])]}

    def send(self, conn: Connection) -> None:
        conn.send(protocol.encode(protocol.WRECKS, 0, self.payload()))

    def broadcast(self) -> None:
        """If the wrecks changed: ``wrecks`` to every socket."""
        if self.changed:
            self.changed = False
            for conn in self.room.connections:
                self.send(conn)

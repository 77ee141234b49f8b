"""A system's side of the pilot rooms (``rooms.pilot.room``): where a joining player's ship
comes from, where a leaving one's goes, and jumps out.

- **Join** (``acquire``): a player whose seat still has its ship keeps it. Otherwise the
  system calls the pilot's ``checkout``: 200 gives the ship's state (placed at this system's
  jump point toward the system it came from when it just arrived, at the station for a new
  ship, else where it docked), 409 says the ship is elsewhere: the client gets an
  ``elsewhere`` message, error ``ERR_ELSEWHERE`` and close ``CLOSE_ELSEWHERE``. A pilot room
  that cannot be reached fails the join (the client retries).
- **Leave** (``release``): the seat is released; the ship leaves the fleet and is posted back
  (``checkin``) in the same transaction, and the pilot is listed as docked here. Its state is
  also kept locally (``docked:<player>``) so that a rejoin before the checkin is delivered
  takes the newer local state (the pilot's ``previous`` checkout ids tell).
- **Jump** (``depart``): in the same transaction the ship leaves the fleet and the seat, the
  ``depart`` post (the commit point) is queued with a ``departing:<player>`` record, the
  player's socket gets ``jump`` and is closed with ``CLOSE_JUMPED``. A crash before the commit
  loses none of it (the ship is still here, the jump did not happen); after it, the outbox
  delivers the post whatever happens, and until the pilot room confirms it (``departed``) a
  join of that pilot here is sent on to the transit, so the jump completes.

Players without an identity (``anon-*``: a room used without a gateway) keep the local
behaviour of ``ShipRoom``: no pilot room.
"""

from __future__ import annotations

import uuid

from starhold import Connection, ConnectRequest
from .. import protocol
from ..pilot.inbox import chat_payload
from ..pilot.room import KIND as PILOT
from ..ships.room import GAME_EPOCH
from .travel import transit_seconds

DOCKED_STATE = "dockstate:"
"""Storage key prefix of the local copy of a docked ship's state: ``dockstate:<player>``,
deleted when the pilot takes the ship again. A ship docks in one system at a time, so these
records number at most one per pilot across the galaxy."""
DEPARTING = "departing:"
"""Storage key prefix of a jump out of this system that its pilot room has not confirmed yet:
``departing:<player>`` -> ``{"jump", "to", "arrive" (clock s)}``, written with the departure
and deleted when the pilot room posts ``departed``. While it exists a join of that pilot here
is sent on to the transit: a committed departure always completes."""
SHIP_STATE_KEYS = ("id", "system", "name", "x0", "y0", "tx", "ty", "t0", "hp", "respawn_at", "path", "dest", "route")
"""What a system hands the pilot room of a ship; ``id`` and ``system`` let the same system give
the ship its old id back (ids only grow, so a free old id is still this ship's)."""


def has_pilot(player: str) -> bool:
    """Whether ``player`` has a pilot room (an identity from a gateway, not ``anon-*``)."""
    return bool(player) and not player.startswith("anon-")


class PilotLink:
    """The pilot-room side of one ``SolarSystemRoom`` (``room``)."""

    def __init__(self, room):
        self.room = room
        self.inbox: list[dict] = []
        """Direct messages the last checkout handed over, for ``sent_inbox``."""

    # ---- join ----------------------------------------------------------------------------
    async def acquire(self, conn: Connection, request: ConnectRequest, player: str, name: str) -> dict | None:
        room = self.room
        seat = room.seats.get(player)
        if seat is not None and seat["ship"] in room.ships:
            return room.ships[seat["ship"]]
        departing = await room.storage.get(DEPARTING + player)
        if departing is not None:  # the ship left; its pilot room has not heard yet (a crash)
            now = room.clock.now()
            self._refuse(conn, request, {"system": None, "transit": {
                "jump": departing["jump"], "from": room.name, "to": departing["to"],
                "arrive": departing["arrive"] - GAME_EPOCH, "wait": max(0.0, departing["arrive"] - now)}})
            return None
        # RoomUnavailable fails the join (error 8, close 4503): the client retries.
        answer = await room.rooms.call(PILOT, player, "checkout", {"system": room.name, "name": name,
                                                                   "region": room.region})
        if answer.status == 409:
            self._refuse(conn, request, answer.body)
            return None
        if answer.status != 200:
            raise RuntimeError(f"pilot checkout answered {answer.status}: {answer.body!r}")
        body = answer.body
        local = await room.storage.get(DOCKED_STATE + player)
        state = body.get("ship")
        if local is not None and local.get("checkout") in body.get("previous", ()):
            state = local["ship"]  # our checkin is still on its way: ours is newer
        ship = self._place(player, name, state, body.get("arrived_from"))
        ship["checkout"] = body["checkout"]
        ship["route"] = list(body.get("route") or [])
        room.fleet.touch(ship)
        room.unpark(ship)
        room.docked.undock(player)
        room.pending_writes.pop(DOCKED_STATE + player, None)
        await room.storage.delete(DOCKED_STATE + player)
        self.inbox = body.get("inbox") or []
        room.economy.views.set(player, body.get("ledger"), send=False)  # sent after the welcome
        return room.ships[ship["id"]]

    @staticmethod
    def _refuse(conn: Connection, request: ConnectRequest, where: dict) -> None:
        """The ship is not here: ``elsewhere``, error 20, close 4110."""
        conn.send(protocol.encode(protocol.ELSEWHERE, request.seq, where))
        conn.send(protocol.error_frame(protocol.ERR_ELSEWHERE, "your ship is elsewhere", request.seq))
        conn.close(protocol.CLOSE_ELSEWHERE, "ship elsewhere")

    async def departed(self, player: str, jump: str) -> None:
        """The pilot room applied (or refused) departure ``jump``: forget its record."""
        key = DEPARTING + player
        record = self.room.pending_writes.get(key) or await self.room.storage.get(key)
        if record is not None and record.get("jump") == jump:
            self.room.pending_writes.pop(key, None)
            await self.room.storage.delete(key)

    def _place(self, player: str, name: str, state: dict | None, arrived_from: str | None) -> dict:
        """A fleet ship for ``player`` from the pilot's ``state`` (None: a new ship)."""
        room = self.room
        now = room.clock.now()
        ship = {"player": player, "name": name}
        if state:
            ship.update({k: state[k] for k in SHIP_STATE_KEYS if k in state})
        old_id = ship.pop("id", None) if ship.pop("system", None) == room.name else None
        ship["id"] = room.fleet.take_id(old_id)
        lane = room.lanes.get(arrived_from) if arrived_from else None
        if lane is not None or not state:
            x, y = (lane["x"], lane["y"]) if lane is not None else room.station
            ship.update({"x0": x, "y0": y, "tx": x, "ty": y, "t0": now, "path": None, "dest": None})
        ship["name"] = name or ship.get("name") or player
        return ship

    def sent_inbox(self, conn: Connection) -> list[int]:
        """Send the direct messages the checkout handed over; their ids."""
        messages, self.inbox = self.inbox, []
        for message in messages:
            conn.send(protocol.encode(protocol.CHAT, 0, chat_payload(message)))
        return [m["id"] for m in messages]

    # ---- leave -----------------------------------------------------------------------------
    def ship_state(self, ship: dict) -> dict:
        """What the pilot keeps of a ship leaving this system (positions are clock-based)."""
        record = {**self.room.park_record(ship), "system": self.room.name}
        return {k: record[k] for k in SHIP_STATE_KEYS if k in record}

    def release(self, seat: dict, ship: dict) -> None:
        """The seat is gone: the ship docks here; the pilot is told (``checkin``)."""
        room = self.room
        state = self.ship_state(ship)
        hp, max_hp = room.sim.battle.hp_table().get(ship["id"], (None, None))
        room.fleet.remove(ship["id"])
        room.rooms.post(PILOT, ship["player"], "checkin",
                        {"checkout": ship["checkout"], "ship": state, "hp": hp, "max_hp": max_hp,
                         "route": ship.get("route") or []}, key=f"checkin:{ship['checkout']}")
        room.docked.dock(ship["player"], ship.get("name", ""), room.clock.now())
        room.pending_writes[DOCKED_STATE + ship["player"]] = {"checkout": ship["checkout"], "ship": state}

    # ---- jump ------------------------------------------------------------------------------
    def depart(self, ship: dict, lane: dict) -> None:
        """``ship`` (seated, at the jump point of ``lane``) jumps: out of the room, seat freed,
        the ``depart`` post queued, the player's socket told and closed."""
        room = self.room
        player, now = ship["player"], room.clock.now()
        jump = uuid.uuid4().hex
        wait = transit_seconds(lane["parsecs"])
        route = list(ship.get("route") or [])
        route = route[1:] if route and route[0] == lane["id"] else []  # the autopilot's next hops
        state = {**self.ship_state(ship), "path": None, "dest": None, "route": route}
        hp, max_hp = room.sim.battle.hp_table().get(ship["id"], (None, None))
        seat = room.seats.get(player)
        conn_id = seat.get("conn") if seat else None
        room.fleet.remove(ship["id"])  # first: releasing the seat then finds no ship to dock
        if seat is not None:
            room.seats.release(seat)
        room.pending_writes[DEPARTING + player] = {"jump": jump, "to": lane["id"], "arrive": now + wait}
        room.rooms.post(PILOT, player, "depart",
                        {"checkout": ship["checkout"], "jump": jump, "to": lane["id"], "parsecs": lane["parsecs"],
                         "wait": wait, "depart_at": now, "ship": state, "hp": hp, "max_hp": max_hp, "route": route}, key=f"depart:{jump}")
        for conn in room.connections:
            if conn.id == conn_id:
                conn.send(protocol.encode(protocol.JUMP, 0, {
                    "jump": jump, "from": room.name, "to": lane["id"], "parsecs": lane["parsecs"], "wait": wait,
                    "arrive": now + wait - GAME_EPOCH, "route": route}))
                conn.close(protocol.CLOSE_JUMPED, "jumped")

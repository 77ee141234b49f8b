"""Rooms where every player flies one ship at 10 Hz: seats, acks, deltas, seat holds.

``ShipRoom`` is the shared base of the solar system room and the game session room. It keeps

- **ships** (``ship:<id>`` keys): owner, name and the current straight-line leg
  ``x0, y0 -> tx, ty`` started at clock time ``t0``. A ship's position is a closed-form
  function of time (``starhold.kernels.motion``), so a tick writes nothing and a room that slept
  an hour knows where its ships arrived;
- **seats** (``seat:<player>`` keys): which ship a player flies, the socket it flies it from,
  the last input ``ack`` applied, and the seat token that resumes it. When a player's socket
  drops (any close but a normal 1000 leave) the seat is **held** for ``seat_hold`` seconds
  (default ``protocol.SEAT_HOLD``): the ship waits, flagged ``SHIP_HELD``, and a ``join`` with
  ``resume: <seat token>`` on any gateway takes it back with its ack, even after the room
  hibernated or moved to another node (seats are in the room's database). Colyseus's
  ``allowReconnection``, surviving process boundaries;
- **parked ships** (``keep_ships`` rooms, i.e. systems): when a seat is released (a 1000 leave,
  or its hold expired) its ship leaves ``ships``, the frames (a delta's ``removed``) and the
  tick's arrays, and is kept as a per-player record (``rooms.ships.parking``: ``parked:<player>``,
  expiring after ``park_ttl`` seconds, at most ``max_parked`` of them) until that player joins
  again and gets it back where it was going. So the room's live state is bounded by the players
  who are there or hold a seat, however many came and went;
- **the 10 Hz loop** on the room's alarm while players are connected and something happens:
  each tick encodes one delta (``rooms.ships.sync.FrameSync``) and sends it to every seated client
  with its own ack spliced in; clients that need a full snapshot get the tick's keyframe.
  When no ship moves and no input came for ``LINGER`` seconds the loop stops (the last frame
  stands) and the alarm is left at the next seat-hold expiry, if any.

Inputs are applied in memory and written behind, once a second (``FLUSH_INTERVAL``) in one
statement: an input is acknowledged in a frame before its write is durable (frames are sent
with ``allow_unconfirmed``), so a crash loses at most the last second's orders (the clients
resend what the resumed seat's ack does not cover). Joins, leaves and
seat expiries commit before their output is released.

Subclasses set ``kind``, override ``room_info()`` (the welcome's room description) and may
override ``spawn_point(ship_id)``, ``on_seat_released(seat)`` and ``limit``/``max_players``.
Rooms with more game state (``solar_system.SolarSystemRoom``: combat, obstacles) also set
``combat_frames`` (frames carry ``hp`` and ``events``, see ``rooms.ships.sync``) and override
``ship_order()``, ``frame_extras()``, ``order_move()`` and ``order_attack()``.
"""

from __future__ import annotations

import hmac
import math
import secrets

import msgpack
import numpy as np

from starhold import AlarmInfo, ConnectRequest, Connection, HttpRequest, HttpResponse, Room
from .. import protocol
from starhold.kernels.motion import position_at, positions_at
from .parking import MAX_PARKED, PARK_TTL, PREFIX as PARKED_PREFIX, ParkingLot
from .sync import FrameSync

GAME_EPOCH = 1_767_225_600.0
"""Game time zero: 2026-01-01T00:00:00Z, Unix seconds. Game time = clock time - GAME_EPOCH."""
LINGER = 2.0
"""Seconds the loop keeps sending frames after the last input or join when nothing moves."""
FLUSH_INTERVAL = 1.0
"""Seconds between write-behind flushes of orders and acks while the loop runs (joins,
leaves and seat changes are written at once; a stopping loop flushes)."""
CLOSE_LEAVE = protocol.CLOSE_NORMAL
"""A socket closed with this code left on purpose: its seat is released at once, not held."""


class ShipRoom(Room):
    """Base class: one ship per seated player, frames at ``protocol.TICK_RATE`` Hz.

    Params (room creation, all optional): ``seat_hold`` seconds (float), ``max_players``,
    ``park_ttl`` seconds a parked ship is kept (default ``parking.PARK_TTL``, 7 days) and
    ``max_parked`` (default ``parking.MAX_PARKED``, 10,000).
    """

    kind = "ships"
    messages = protocol.GAME_MESSAGES
    coalesce = frozenset({protocol.MOVE_TO})
    keep_ships = True
    """Whether a ship stays in the room after its seat is released (systems: yes, the player
    comes back to it; game sessions: no, a player who left is out of the game)."""
    limit = protocol.WORLD_LIMIT
    """Coordinates of ``move_to`` targets are clamped to ``[-limit, limit]`` world units."""
    max_players: int | None = None
    combat_frames = False
    """Whether frames carry the ``hp`` and ``events`` keys (``protocol.COMBAT_FRAME_KEYS``)."""

    # ---- activation ------------------------------------------------------------------------
    async def on_start(self) -> None:
        self.seat_hold = float(self.params.get("seat_hold", protocol.SEAT_HOLD))
        self.tick_offset = protocol.tick_offset(f"{self.kind}/{self.name}")
        if self.params.get("max_players"):
            self.max_players = int(self.params["max_players"])
        stored = await self.storage.list(prefix="ship:")
        self.ships: dict[int, dict] = {s["id"]: s for s in stored.values()}
        self.seats: dict[str, dict] = {s["player"]: s for s in (await self.storage.list(prefix="seat:")).values()}
        self.parked = ParkingLot(float(self.params.get("park_ttl", PARK_TTL)),
                                 int(self.params.get("max_parked", MAX_PARKED)))
        if self.keep_ships:
            self.parked.load(await self.storage.list(prefix=PARKED_PREFIX), self.clock.now())
            seated = {s["ship"] for s in self.seats.values()}
            for ship in [s for s in self.ships.values() if s.get("player") and s["id"] not in seated]:
                self._park(ship)  # stored by an older version, which kept parked ships in the room
        self.next_ship_id = int(await self.storage.get("next_ship_id") or 1)
        self.by_conn: dict[str, str] = {}  # connection id -> player
        self.need_keyframe: set[str] = set()
        self.sync = FrameSync(combat=self.combat_frames)
        self.dirty: set[str] = set()
        self.flushed_at = self.clock.now()
        self._soa = None
        self.last_input = self.clock.now()
        self.last_tick = 0
        self.next_tick: int | None = None  # the tick the alarm is set for while the loop runs
        conns = {c.id: c for c in self.connections}
        for seat in self.seats.values():
            conn_id = seat.get("conn")
            if conn_id is not None and conn_id in conns:  # restored from hibernation or a reset
                self.by_conn[conn_id] = seat["player"]
                self.need_keyframe.add(conn_id)
            elif conn_id is not None:  # its socket did not survive (crash): hold the seat
                self._hold(seat)
        for conn in conns.values():
            if conn.id not in self.by_conn:
                conn.close(protocol.CLOSE_ROOM_UNAVAILABLE, "seat lost; rejoin")
        await self._flush()
        await self._schedule()

    # ---- time ------------------------------------------------------------------------------
    def game_time(self) -> float:
        """Game time now, seconds."""
        return self.clock.now() - GAME_EPOCH

    def current_tick(self) -> int:
        """The tick now: ``floor((game_time - tick_offset) * TICK_RATE)``, tolerant of float
        rounding at a tick boundary (an alarm set for a boundary fires exactly on it)."""
        return math.floor((self.game_time() - self.tick_offset) * protocol.TICK_RATE + 1e-6)

    def tick_time(self, tick: int) -> float:
        """Clock time of ``tick``'s boundary, seconds: ticks are ``1/TICK_RATE`` s apart,
        offset by the room's ``protocol.tick_offset`` so rooms do not all tick at once."""
        return GAME_EPOCH + self.tick_offset + tick / protocol.TICK_RATE

    # ---- subclass hooks ----------------------------------------------------------------------
    def room_info(self) -> dict:
        """Extra keys of the welcome payload describing the room (e.g. ``{"system": ...}``)."""
        return {}

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        """Where a new ship appears, world units."""
        return 0.0, 0.0

    def ship_order(self) -> list[int]:
        """The ship ids in the order of the cached arrays (``_arrays``): insertion order."""
        return list(self.ships)

    def frame_extras(self) -> tuple:
        """Extra arguments of ``FrameSync.step``/``reset`` for this frame: ``()``, or
        ``(hp, events)`` in a room with ``combat_frames``."""
        return ()

    # ---- ships -----------------------------------------------------------------------------
    def _arrays(self):
        """(ship ids list, (N, 5) float64 array of x0, y0, tx, ty, t0), cached until a ship is
        added or removed (orders update the array in place)."""
        if self._soa is None:
            ids = self.ship_order()
            cols = np.array([[s["x0"], s["y0"], s["tx"], s["ty"], s["t0"]] for s in map(self.ships.__getitem__, ids)],
                            dtype=np.float64).reshape(-1, 5)
            self._soa = (ids, cols, {ship_id: i for i, ship_id in enumerate(ids)})
        return self._soa

    def position(self, ship: dict, at: float) -> tuple[float, float, bool]:
        """One ship's ``(x, y, moving)`` at clock time ``at`` (the kernel's twin, bit-identical)."""
        return position_at(ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"], protocol.SHIP_SPEED, at)

    def rows_at(self, at: float) -> tuple[dict[int, tuple[float, float, int]], bool]:
        """Every ship's quantized ``(x, y, flags)`` at clock time ``at``, and whether any moves."""
        ids, cols, _ = self._arrays()
        if not ids:
            return {}, False
        x, y, moving = positions_at(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4],
                                    protocol.SHIP_SPEED, at)
        status = {}
        for seat in self.seats.values():
            status[seat["ship"]] = protocol.SHIP_HELD if seat.get("conn") is None else protocol.SHIP_ONLINE
        q = protocol.quantize
        xs, ys, ms = x.tolist(), y.tolist(), moving.tolist()
        rows = {ship_id: (q(xs[i]), q(ys[i]), status.get(ship_id, 0) | (protocol.SHIP_MOVING if ms[i] else 0))
                for i, ship_id in enumerate(ids)}
        return rows, any(ms)

    def names(self) -> dict[int, str]:
        return {ship_id: s["name"] for ship_id, s in self.ships.items()}

    def _touch_ship(self, ship: dict) -> None:
        self.ships[ship["id"]] = ship
        self.dirty.add(f"ship:{ship['id']}")
        ids, cols, index = self._soa or (None, None, None)
        if index is not None and ship["id"] in index:
            cols[index[ship["id"]]] = (ship["x0"], ship["y0"], ship["tx"], ship["ty"], ship["t0"])
        else:
            self._soa = None

    def _new_ship(self, owner: str, name: str) -> dict:
        ship_id = self.next_ship_id
        self.next_ship_id += 1
        self.dirty.add("next_ship_id")
        x, y = self.spawn_point(ship_id)
        ship = {"id": ship_id, "player": owner, "name": name, "x0": x, "y0": y, "tx": x, "ty": y,
                "t0": self.clock.now()}
        self._touch_ship(ship)
        return ship

    def _remove_ship(self, ship_id: int) -> None:
        if self.ships.pop(ship_id, None) is not None:
            self._soa = None
            self.dirty.add(f"ship:{ship_id}")

    async def _flush(self) -> None:
        """Write what changed since the last flush in one statement (write-behind)."""
        self.flushed_at = self.clock.now()
        if not self.dirty and not self.parked.pending:
            return
        puts, deletes = {}, []
        for key in self.dirty:
            if key == "next_ship_id":
                puts[key] = self.next_ship_id
            elif key.startswith("ship:"):
                ship = self.ships.get(int(key[5:]))
                (puts.__setitem__(key, ship) if ship is not None else deletes.append(key))
            elif key.startswith("seat:"):
                seat = self.seats.get(key[5:])
                (puts.__setitem__(key, seat) if seat is not None else deletes.append(key))
        self.dirty.clear()
        parked, unparked = self.parked.take_writes()
        puts.update(parked)
        deletes += unparked
        if puts:
            await self.storage.put(puts)
        if deletes:
            await self.storage.delete(deletes)

    # ---- seats -----------------------------------------------------------------------------
    def _hold(self, seat: dict) -> None:
        seat["conn"] = None
        seat["held_until"] = self.clock.now() + self.seat_hold
        self.dirty.add(f"seat:{seat['player']}")

    def _release(self, seat: dict) -> None:
        """The seat is gone (left, or its hold expired): its ship leaves the room, parked for
        its player (``keep_ships``) or gone."""
        self.seats.pop(seat["player"], None)
        self.dirty.add(f"seat:{seat['player']}")
        ship = self.ships.get(seat["ship"])
        if self.keep_ships and ship is not None:
            self._park(ship)
        else:
            self._remove_ship(seat["ship"])

    def _park(self, ship: dict) -> None:
        """Take ``ship`` out of the room into its player's parked record."""
        self.parked.park(ship["player"], self.park_record(ship), self.clock.now())
        self._remove_ship(ship["id"])

    def park_record(self, ship: dict) -> dict:
        """The parked record of a ship leaving the room (a ship dict); subclasses add the
        state they keep elsewhere (a system: combat)."""
        return dict(ship)

    def unpark(self, ship: dict) -> None:
        """Put a parked ship (the dict ``park_record`` made) back into the room."""
        self._touch_ship(ship)

    def _expire_seats(self) -> None:
        now = self.clock.now()
        for seat in list(self.seats.values()):
            if seat.get("conn") is None and seat.get("held_until") is not None and seat["held_until"] <= now:
                self._release(seat)

    async def _ship_of_player(self, player: str) -> dict | None:
        """The ship of ``player``'s seat, else its parked ship (taken back into the room), else None."""
        seat = self.seats.get(player)
        if seat is not None and seat["ship"] in self.ships:
            return self.ships[seat["ship"]]
        ship = await self.parked.take(player, self.storage, self.clock.now())
        if ship is not None:
            self.unpark(ship)
        return ship

    # ---- the loop ----------------------------------------------------------------------------
    async def _schedule(self) -> None:
        """Set the alarm: the next tick boundary while ticking, else the next seat-hold expiry."""
        if self.by_conn and (self.clock.now() - self.last_input < LINGER or self._any_moving()):
            self.next_tick = max(self.current_tick(), self.last_tick) + 1
            await self.storage.set_alarm(self.tick_time(self.next_tick))
            return
        self.next_tick = None
        holds = [s["held_until"] for s in self.seats.values() if s.get("conn") is None and s.get("held_until")]
        if holds:
            await self.storage.set_alarm(min(holds))
        else:
            await self.storage.delete_alarm()

    def _any_moving(self) -> bool:
        return any(row[2] & protocol.SHIP_MOVING for row in self.sync.rows.values())

    async def on_alarm(self, info: AlarmInfo) -> None:
        """One tick: expire held seats, broadcast a delta (keyframes where needed), write
        behind, re-arm."""
        self.next_tick = None
        self._expire_seats()
        if self.by_conn:
            tick = max(self.current_tick(), self.last_tick + 1)
            self.last_tick = tick
            self.broadcast_frame(tick)
        await self._schedule()
        if self.next_tick is None or self.clock.now() - self.flushed_at >= FLUSH_INTERVAL:
            await self._flush()  # the loop stops, or a second passed

    def broadcast_frame(self, tick: int) -> None:
        """Encode this tick's delta once and send every seated connection its frame."""
        rows, _ = self.rows_at(self.tick_time(tick))
        delta = self.sync.step(tick, self.tick_time(tick) - GAME_EPOCH, rows, self.names(), *self.frame_extras())
        prefix = protocol.frame_prefix(tick, self.sync.keys)
        packb = msgpack.packb
        heads, key_heads = [], []
        for conn in self.connections:
            player = self.by_conn.get(conn.id)
            if player is None:
                continue
            head = prefix + packb(self.seats[player]["ack"])
            (key_heads if conn.id in self.need_keyframe else heads).append((conn, head))
        self.send_spliced(delta, heads)
        if key_heads:
            self.send_spliced(self.sync.keyframe(), key_heads)
        self.need_keyframe.clear()

    def send_keyframe(self, conn: Connection) -> None:
        """Send ``conn`` a full snapshot of the last frame now (a join, a resync). When no other
        client depends on the last frame (none, or all awaiting keyframes) the snapshot is
        taken now instead, so it shows what changed while the loop rested."""
        if self.sync.tick is None or all(c == conn.id or c in self.need_keyframe for c in self.by_conn):
            tick = self.current_tick()
            rows, _ = self.rows_at(self.tick_time(tick))
            self.sync.reset(tick, self.tick_time(tick) - GAME_EPOCH, rows, self.names(), *self.frame_extras())
        seat = self.seats[self.by_conn[conn.id]]
        head = protocol.frame_prefix(self.sync.tick, self.sync.keys) + msgpack.packb(seat["ack"])
        # Through the output gate, so that it follows the welcome sent in the same hook.
        self.send_spliced(self.sync.keyframe(), [(conn, head)], allow_unconfirmed=False)
        self.need_keyframe.discard(conn.id)

    # ---- hooks -----------------------------------------------------------------------------
    async def on_connect(self, conn: Connection, request: ConnectRequest) -> None:
        player = request.player or f"anon-{conn.id}"
        name = request.payload.get("name") or request.name or player[:protocol.MAX_NAME_LENGTH]
        seat = self.seats.get(player)
        if seat is None and self.max_players is not None and len(self.seats) >= self.max_players:
            conn.send(protocol.error_frame(protocol.ERR_ROOM_FULL, f"room is full ({self.max_players} players)",
                                           request.seq))
            conn.close(protocol.CLOSE_ROOM_FULL, "room full")
            return
        token = request.payload.get("resume")
        resumed = bool(seat and token and hmac.compare_digest(token, seat["token"]))
        if seat is not None and seat.get("conn") is not None:
            for other in self.connections:  # the same player on another socket: replaced
                if other.id == seat["conn"] and other.id != conn.id:
                    self.by_conn.pop(other.id, None)
                    other.close(protocol.CLOSE_REPLACED, "the same player joined from another socket")
        ship = await self._ship_of_player(player)
        if ship is None:
            ship = self._new_ship(player, name)
        elif name != ship["name"] and request.payload.get("name"):
            self._touch_ship({**ship, "name": name})
        if seat is None or not resumed:
            seat = {"player": player, "ship": ship["id"], "token": secrets.token_urlsafe(24),
                    "ack": request.seq}
        seat.update(conn=conn.id, held_until=None)
        self.seats[player] = seat
        self.dirty.add(f"seat:{player}")
        self.by_conn[conn.id] = player
        conn.attachment = {"player": player}
        self.last_input = self.clock.now()
        tick = self.current_tick()
        conn.send(protocol.encode(protocol.WELCOME, request.seq, {
            "ship": ship["id"], "player": player, "name": self.ships[ship["id"]]["name"],
            "seat": seat["token"], "seat_hold": self.seat_hold, "resumed": resumed, "ack": seat["ack"],
            "tick": tick, "time": self.tick_time(tick) - GAME_EPOCH, "tick_rate": protocol.TICK_RATE,
            "world_limit": self.limit, **self.room_info(),
        }))
        self.send_keyframe(conn)
        await self._flush()
        await self._schedule()

    async def on_message(self, conn: Connection, message: protocol.ClientMessage) -> None:
        player = self.by_conn.get(conn.id)
        if player is None:
            return
        seat = self.seats[player]
        if message.type == protocol.MOVE_TO:
            ship = self.ships.get(seat["ship"])
            if ship is None:
                return
            lim = self.limit
            tx = min(max(message.payload.x, -lim), lim)
            ty = min(max(message.payload.y, -lim), lim)
            self.order_move(conn, ship, tx, ty, message.seq)
        elif message.type == protocol.RESYNC:
            self.need_keyframe.add(conn.id)
        elif message.type == protocol.ATTACK:
            self.order_attack(conn, seat, message.payload.target, message.seq)
        else:
            return
        seat["ack"] = max(seat["ack"], message.seq)
        self.dirty.add(f"seat:{player}")
        self.last_input = self.clock.now()
        if self.next_tick is None:  # the loop rests: start it
            await self._schedule()

    def order_move(self, conn: Connection, ship: dict, x: float, y: float, seq: int) -> None:
        """Apply a ``move_to`` (target already clamped): a straight leg from where the ship is."""
        now = self.clock.now()
        x0, y0, _ = self.position(ship, now)
        self._touch_ship({**ship, "x0": x0, "y0": y0, "tx": x, "ty": y, "t0": now})

    def order_attack(self, conn: Connection, seat: dict, target: int, seq: int) -> None:
        """Apply an ``attack``; this room has no combat: an ``ERR_INVALID_TARGET`` error."""
        conn.send(protocol.error_frame(protocol.ERR_INVALID_TARGET, "there is no combat in this room", seq),
                  allow_unconfirmed=True)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        player = self.by_conn.pop(conn.id, None)
        self.need_keyframe.discard(conn.id)
        seat = self.seats.get(player) if player else None
        if seat is not None and seat.get("conn") == conn.id:
            if code == CLOSE_LEAVE:
                self._release(seat)
            else:
                self._hold(seat)
            self.last_input = self.clock.now()  # broadcast the change
        await self._flush()
        await self._schedule()

    async def on_hibernate(self) -> None:
        await self._flush()

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or request.path not in ("", "/", "state"):
            return HttpResponse(404, {"error": "not found"})
        rows, _ = self.rows_at(self.clock.now())
        return HttpResponse(200, {
            "tick": self.current_tick(), "time": self.game_time(), **self.room_info(),
            "players": sum(1 for s in self.seats.values() if s.get("conn") is not None),
            "ships": [{"id": i, "x": r[0], "y": r[1], "flags": r[2], "name": self.ships[i]["name"]}
                      for i, r in rows.items()],
        })

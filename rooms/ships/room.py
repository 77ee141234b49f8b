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
- **the 10 Hz loop** (the framework's ``starhold.Ticker``, ``self.ticker``, on the room's alarm)
  while players are connected and something happens: each tick encodes one delta
  (``rooms.ships.sync.FrameSync``) and sends it to every seated client with its own ack spliced
  in; clients that need a full snapshot get the tick's keyframe. When no ship moves and no
  input came for ``LINGER`` seconds the loop stops (the last frame stands) and the alarm is
  left at the next seat-hold expiry (the ``starhold.Seats`` deadline), if any.

Ships are a ``rooms.ships.fleet.Fleet`` (``self.fleet``), seats a ``starhold.Seats``
(``self.seats``): both composed, not inherited.

Inputs are applied in memory at once and committed with the next tick (group commit per
tick: the tick's ship and seat changes as one record of the tick journal, ``rooms.ships.journal``,
folded into the ``ship:``/``seat:`` keys every ``journal.FOLD_INTERVAL`` seconds (in the tick,
after its frame has been handed to the gateways: a fold is the tick's longest write), before
any other write of them, and when the room starts; without inputs the rest of the state is written
behind, once a second, ``FLUSH_INTERVAL``). A frame's ``ack`` is the last input of that
player whose commit is **durable** (``Room.durable_mark``: committed, and replicated off the
node when the store replicates), so an acknowledged input is never lost, whatever crashes;
the frame's positions may already show inputs not yet acknowledged (frames are sent with
``allow_unconfirmed``). Clients keep their inputs until acknowledged and resend the ones the
resumed seat's ack does not cover. A joining client gets no frame before its ``welcome``
(which waits for its commit to be durable); it then gets a keyframe. Joins, leaves and seat
expiries commit before their output is released.

Subclasses set ``kind``, override ``room_info()`` (the welcome's room description) and may
override ``spawn_point(ship_id)`` and ``limit``/``max_players``. Rooms with more game state
(``rooms.system.room.SolarSystemRoom``: combat, obstacles) also set ``combat_frames`` (frames
carry ``hp`` and ``events``, see ``rooms.ships.sync``) and override the public hooks, each
documented below: ``ship_order()``, ``arrays_rebuilt(ids)``, ``ship_removed(ship_id)``,
``simulate(tick, missed)``, ``rows_at(at)``, ``frame_extras()``, ``before_flush()``,
``park_record(ship)``/``unpark(ship)``, ``acquire_ship()``/``release_ship()`` (where a
joining player's ship comes from and where a leaving one's goes: a system asks the pilot
room, ``rooms.system.pilots``), ``order_move()`` and ``order_attack()``.
"""

from __future__ import annotations

import asyncio

import msgpack

from starhold import AlarmInfo, ConnectRequest, Connection, HttpRequest, HttpResponse, Room, Seats
from starhold.kernels.frames import frame_heads
from starhold.kernels.motion import ship_rows, steer
from .. import protocol
from .fleet import Fleet, PREFIX as SHIP_PREFIX
from .journal import Journal
from .parking import MAX_PARKED, PARK_TTL, PREFIX as PARKED_PREFIX, ParkingLot
from .sync import FrameSync

GAME_EPOCH = 1_767_225_600.0
"""Game time zero: 2026-01-01T00:00:00Z, Unix seconds. Game time = clock time - GAME_EPOCH."""
LINGER = 2.0
"""Seconds the loop keeps sending frames after the last input or join when nothing moves."""
FLUSH_INTERVAL = 1.0
"""Seconds between write-behind flushes of orders and acks while the loop runs (joins,
leaves and seat changes are written at once; a stopping loop flushes)."""
ACK_WAIT = 0.02
"""Seconds a tick that applied inputs waits for their commit to be replicated before it sends
its frame (which acknowledges what is durable by then; the rest is acknowledged next tick)."""
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
    batched = frozenset({protocol.MOVE_TO})
    """``move_to`` arrives in runs (``on_messages``): the bulk of a ticked room's inputs, applied
    without a hook call each; a subclass changes how a move is applied in ``order_move``."""
    tick_rate = protocol.TICK_RATE
    tick_epoch = GAME_EPOCH
    seat_hold = protocol.SEAT_HOLD
    keep_ships = True
    """Whether a ship stays in the room after its seat is released (systems: yes, the player
    comes back to it; game sessions: no, a player who left is out of the game)."""
    limit = protocol.WORLD_LIMIT
    """Coordinates of ``move_to`` targets are clamped to ``[-limit, limit]`` world units."""
    combat_frames = False
    """Whether frames carry the ``hp`` and ``events`` keys (``protocol.COMBAT_FRAME_KEYS``)."""

    # ---- activation ------------------------------------------------------------------------
    async def on_start(self) -> None:
        self.journal = Journal(self.storage, resolve=lambda ship_id: self.fleet.ships.get(ship_id))
        await self.journal.load(self.clock.now())  # an earlier activation's last ticks, into their keys
        stored = await self.storage.list(prefix=SHIP_PREFIX)
        self.fleet = Fleet({s["id"]: s for s in stored.values()}, int(await self.storage.get("next_ship_id") or 1),
                           order=self.ship_order, on_rebuild=self.arrays_rebuilt, on_remove=self.ship_removed)
        self.seats = Seats(self, on_release=self._seat_released, on_expired=self._holds_expired)
        self._status: dict[int, int] = {}  # ship id -> SHIP_HELD/SHIP_ONLINE (rows_at), as of seats.version
        self._status_version = -1
        restored = await self.seats.load()
        self.parked = ParkingLot(float(self.params.get("park_ttl", PARK_TTL)),
                                 int(self.params.get("max_parked", MAX_PARKED)))
        if self.keep_ships:
            self.parked.load(await self.storage.list(prefix=PARKED_PREFIX), self.clock.now())
            seated = {s["ship"] for s in self.seats.seats.values()}
            for ship in [s for s in self.ships.values() if s.get("player") and s["id"] not in seated]:
                self._park(ship)  # stored by an older version, which kept parked ships in the room
        self.need_keyframe: set[str] = set(restored)
        self._durable_acks: dict[str, int] = {p: seat["ack"] for p, seat in self.seats.seats.items()}
        self._ack_marks: list[tuple[int, dict[str, int]]] = []  # (commit mark, acks it makes durable)
        self._welcome_marks: dict[str, int] = {}  # conn id -> commit mark of its join
        self.acks_dirty = False
        self.sync = FrameSync(combat=self.combat_frames)
        self.flushed_at = self.clock.now()
        self.last_input = self.clock.now()
        await self._flush()
        await self._pace()

    @property
    def ships(self) -> dict[int, dict]:
        """Ship id -> ship dict (``self.fleet.ships``)."""
        return self.fleet.ships

    def game_time(self) -> float:
        """Game time now, seconds."""
        return self.clock.now() - GAME_EPOCH

    # ---- public hooks (override) -----------------------------------------------------------
    def room_info(self) -> dict:
        """Extra keys of the welcome payload describing the room (e.g. ``{"system": ...}``)."""
        return {}

    def spawn_point(self, ship_id: int) -> tuple[float, float]:
        """Where a new ship appears, world units."""
        return 0.0, 0.0

    def ship_order(self) -> list[int]:
        """The ship ids in the order of the fleet's arrays (``Fleet.arrays``): insertion order."""
        return list(self.ships)

    def arrays_rebuilt(self, ids: list[int]) -> None:
        """The fleet's arrays were rebuilt with the ships ``ids`` (in ``ship_order()``)."""

    def ship_removed(self, ship_id: int) -> None:
        """Ship ``ship_id`` left the room (parked or gone; also called for an absent id)."""

    def simulate(self, tick: int, missed: int) -> None:
        """Advance the room's own simulation to ``tick`` before its frame is encoded;
        ``missed`` ticks before it went by undelivered (``on_tick``). Default: nothing (ships
        move in closed form)."""

    def frame_extras(self) -> tuple:
        """Extra arguments of ``FrameSync.step``/``reset`` for this frame: ``()``, or
        ``(hp, events)`` in a room with ``combat_frames``."""
        return ()

    def frame_sent(self) -> None:
        """A tick's frame was sent (e.g. clear the tick's events)."""

    def before_flush(self) -> None:
        """Called before each write-behind flush: settle in-memory state into the ship dicts
        (``self.fleet.touch``/``mark``) so that it is written."""

    def park_record(self, ship: dict) -> dict:
        """The parked record of a ship leaving the room (a ship dict); subclasses add the
        state they keep elsewhere (a system: combat)."""
        return dict(ship)

    def unpark(self, ship: dict) -> None:
        """Put a parked ship (the dict ``park_record`` made) back into the room."""
        self.fleet.touch(ship)

    # ---- ships -----------------------------------------------------------------------------
    def position(self, ship: dict, at: float) -> tuple[float, float, bool]:
        """One ship's ``(x, y, moving)`` at clock time ``at`` (the kernel's twin, bit-identical)."""
        return self.fleet.position(ship, at)

    def rows_at(self, at: float) -> tuple[dict[int, tuple[float, float, int]], bool]:
        """Every ship's quantized ``(x, y, flags)`` at clock time ``at``, and whether any moves."""
        ids, legs, _ = self.fleet.arrays()
        if not ids:
            return {}, False
        if self._status_version != self.seats.version:  # each ship's online/held flag, until a seat changes
            held, online = protocol.SHIP_HELD, protocol.SHIP_ONLINE
            self._status = {seat["ship"]: held if seat.get("conn") is None else online
                            for seat in self.seats.seats.values()}
            self._status_version = self.seats.version
        return ship_rows(legs, ids, self._status, protocol.SHIP_SPEED, at, protocol.SHIP_MOVING)

    def names(self) -> dict[int, str]:
        """Ship id -> name (``Fleet.names``: the same dict until a name changes; do not change it)."""
        return self.fleet.names()

    async def _flush(self, journal: bool = False) -> None:
        """Write what changed since the last flush (write-behind). With ``journal`` (a tick's
        group commit) the ships' and seats' changes go to one journal entry
        (``rooms.ships.journal``), even when a fold is due (``on_tick`` folds after the frame);
        otherwise the journal is folded first and they are written as keys."""
        self.before_flush()
        now = self.flushed_at = self.clock.now()
        self.acks_dirty = False
        self._settle_acks(self.durable_mark())
        if journal:  # ships whose leg alone changed (moves) apart: their legs, packed
            puts, deletes, moved = self.fleet.take_changes()
        else:
            puts, deletes = self.fleet.take_writes()
        more_puts, more_deletes, acked = self.seats.take_changes()
        durable = self._durable_acks  # acks change only in seats written now (a seat's ack only grows)
        changed = {seat["player"]: seat["ack"] for seat in more_puts.values()
                   if seat["ack"] != durable.get(seat["player"])}
        acks = {}  # (journal) seats whose ack alone changed: just the ack
        for key, seat in acked.items():
            ack = seat["ack"]
            if journal:
                acks[key] = ack
            if ack != durable.get(seat["player"]):
                changed[seat["player"]] = ack
        puts.update(more_puts)
        deletes += more_deletes
        if journal:  # (a due fold waits for after the frame)
            await self.journal.append(puts, deletes, values=acked, packed_legs=moved, acks=acks)
            puts, deletes = {}, []
        else:
            puts.update(acked)
            await self.journal.fold(now)  # before these writes of the same keys
        more_puts, more_deletes = self.parked.take_writes()
        puts.update(more_puts)
        deletes += more_deletes
        if puts:
            await self.storage.put(puts)
        if deletes:
            await self.storage.delete(deletes)
        if changed:
            self._ack_marks.append((self.commit_mark(), changed))  # the commit that writes them

    # ---- seats -----------------------------------------------------------------------------
    def _settle_acks(self, durable: int) -> None:
        """Move the acks whose commit is durable (``durable_mark`` ``durable``) to the frames'."""
        marks = self._ack_marks
        while marks and marks[0][0] <= durable:
            self._durable_acks.update(marks.pop(0)[1])

    def _seat_released(self, seat: dict) -> None:
        """The seat is gone (left, or its hold expired): ``release_ship``."""
        self._durable_acks.pop(seat["player"], None)
        self.release_ship(seat, self.ships.get(seat["ship"]))

    def release_ship(self, seat: dict, ship: dict | None) -> None:
        """Hook: ``seat`` was released (its player left, or the hold expired) and ``ship``
        (None if it is already gone) must leave the room. Default: parked for its player
        (``keep_ships``) or removed. Runs inside the hook that released the seat, whose
        writes are flushed before it returns."""
        if self.keep_ships and ship is not None:
            self._park(ship)
        else:
            self.fleet.remove(seat["ship"])

    async def _holds_expired(self, released: list[dict]) -> None:
        """Seat holds ran out (a deadline of the alarm): write it now, and show it."""
        await self._flush()
        if self.seats.by_conn:
            await self.ticker.start()  # a frame in this alarm; the loop then rests if idle

    def _park(self, ship: dict) -> None:
        """Take ``ship`` out of the room into its player's parked record."""
        self.parked.park(ship["player"], self.park_record(ship), self.clock.now())
        self.fleet.remove(ship["id"])

    async def acquire_ship(self, conn: Connection, request: ConnectRequest, player: str, name: str) -> dict | None:
        """Hook: the ship ``player`` flies from ``conn`` (joining as ``name``), now in the fleet,
        or None to refuse the join (send the client why and close ``conn``). Default: the
        ship of the player's seat, else its parked ship, else a new one at ``spawn_point``."""
        ship = await self._ship_of_player(player)
        if ship is None:
            x, y = self.spawn_point(self.fleet.peek_id())
            ship = self.fleet.new(player, name, x, y, self.clock.now())
        return ship

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
    async def _pace(self) -> None:
        """Run the loop while players are connected and something happens, else let it rest."""
        if self.seats.by_conn and (self.clock.now() - self.last_input < LINGER or self._any_moving()
                                   or self._ack_marks or self._welcome_marks):
            await self.ticker.start()
        else:
            await self.ticker.stop()

    def _any_moving(self) -> bool:
        return any(row[2] & protocol.SHIP_MOVING for row in self.sync.rows.values())

    async def on_alarm(self, info: AlarmInfo) -> None:
        """Deadlines (seat holds) then a tick (``on_tick``): ``self.ticker`` owns the alarm."""
        await self.ticker.on_alarm(info)

    async def on_tick(self, tick: int, missed: int) -> None:
        """One tick: simulate, broadcast a delta (keyframes where needed), write behind."""
        if self.seats.by_conn:
            self.simulate(tick, missed)
            if self.acks_dirty:  # group commit of the tick's inputs, so that this frame acks them
                await self._flush(journal=True)
                await self.commit_now(ACK_WAIT)
            self.broadcast_frame(tick)
            self.frame_sent()
        await self._pace()
        now = self.clock.now()
        fold = self.journal.due(now)
        if fold or self.acks_dirty or not self.ticker.running or now - self.flushed_at >= FLUSH_INTERVAL:
            if fold:  # the journal's fold, the tick's longest write, after the frame: let its push go first
                await asyncio.sleep(0)
            await self._flush()  # a fold is due, inputs came (group commit), the loop stops, or a second passed

    def broadcast_frame(self, tick: int) -> None:
        """Encode this tick's delta once and send every seated connection its frame."""
        at = self.ticker.tick_time(tick)
        rows, _ = self.rows_at(at)
        delta = self.sync.step(tick, at - GAME_EPOCH, rows, self.names(), *self.frame_extras())
        prefix = protocol.frame_prefix(tick, self.sync.keys)
        durable = self.durable_mark()
        self._settle_acks(durable)
        # Seated connections only; one whose welcome is not released yet gets nothing before it.
        heads, key_heads, waiting = frame_heads(prefix, self.connections, self.seats.by_conn, self._durable_acks,
                                                self._welcome_marks, durable, self.need_keyframe)
        self.send_spliced(delta, heads)
        if key_heads:
            self.send_spliced(self.sync.keyframe(), key_heads)
        self.need_keyframe = waiting  # they get a keyframe once welcomed

    def send_keyframe(self, conn: Connection) -> None:
        """Send ``conn`` a full snapshot of the last frame now (a join, a resync). When no other
        client depends on the last frame (none, or all awaiting keyframes) the snapshot is
        taken now instead, so it shows what changed while the loop rested."""
        if self.sync.tick is None or all(c == conn.id or c in self.need_keyframe for c in self.seats.by_conn):
            tick = self.ticker.current_tick()
            at = self.ticker.tick_time(tick)
            rows, _ = self.rows_at(at)
            self.sync.reset(tick, at - GAME_EPOCH, rows, self.names(), *self.frame_extras())
        seat = self.seats.seat_of(conn.id)
        head = protocol.frame_prefix(self.sync.tick, self.sync.keys) + msgpack.packb(seat["ack"])
        # Through the output gate, so that it follows the welcome sent in the same hook.
        self.send_spliced(self.sync.keyframe(), [(conn, head)], allow_unconfirmed=False)
        self.need_keyframe.discard(conn.id)

    # ---- hooks -----------------------------------------------------------------------------
    async def on_connect(self, conn: Connection, request: ConnectRequest) -> None:
        player = request.player or f"anon-{conn.id}"
        name = request.payload.get("name") or request.name or player[:protocol.MAX_NAME_LENGTH]
        admitted = self.seats.admit(conn, request, player)
        if admitted is None:  # the room is full: refused
            return
        _, resumed = admitted
        ship = await self.acquire_ship(conn, request, player, name)
        if ship is None:  # refused: acquire_ship told the client why and closed the socket
            return
        if name != ship["name"] and request.payload.get("name"):
            self.fleet.touch({**ship, "name": name})
        seat = await self.seats.occupy(conn, player, request.seq, resumed, ship=ship["id"])
        self.last_input = self.clock.now()
        tick = self.ticker.current_tick()
        conn.send(protocol.encode(protocol.WELCOME, request.seq, {
            "ship": ship["id"], "player": player, "name": self.ships[ship["id"]]["name"],
            "seat": seat["token"], "seat_hold": self.seats.hold, "resumed": resumed, "ack": seat["ack"],
            "tick": tick, "time": self.ticker.tick_time(tick) - GAME_EPOCH, "tick_rate": protocol.TICK_RATE,
            "world_limit": self.limit, **self.room_info(),
        }))
        self.send_keyframe(conn)
        await self.after_join(conn, player, self.ships[ship["id"]])
        await self._flush()
        if self.commit_mark() > self.durable_mark():
            self._welcome_marks[conn.id] = self.commit_mark()
        await self._pace()

    async def after_join(self, conn: Connection, player: str, ship: dict) -> None:
        """Hook: ``player`` was seated on ``conn`` with ``ship`` and sent its welcome and
        keyframe (send more here: chat history, presence...). Default: nothing."""

    async def on_messages(self, batch: list[tuple[Connection, protocol.ClientMessage]]) -> None:
        """A run of ``move_to`` (``batched``): each as ``on_message`` would apply it
        (``order_move`` with the target clamped to ``limit``, the seat's ack), with the
        bookkeeping after the last (the inputs to commit with the next tick, the loop started)."""
        seats = self.seats
        by_conn, seat_map, lim = seats.by_conn, seats.seats, self.limit
        applied = False
        if type(self).order_move is ShipRoom.order_move:
            # The default order_move, for the whole run in one kernel call on the fleet's arrays
            # (one clock read per run: the run is applied at one instant).
            applied = self.fleet.steer_moves(batch, by_conn, seat_map, seats.acked, lim, self.clock.now(),
                                             protocol.SHIP_SPEED) > 0
        else:
            order_move, ships = self.order_move, self.fleet.ships
            for conn, message in batch:
                player = by_conn.get(conn.id)
                if player is None:
                    continue
                ship = ships.get(seat_map[player]["ship"])
                if ship is None:
                    continue
                x, y = message.payload.x, message.payload.y
                x = -lim if x < -lim else lim if x > lim else x
                y = -lim if y < -lim else lim if y > lim else y
                order_move(conn, ship, x, y, message.seq)
                seats.ack(player, message.seq)
                applied = True
        if applied:
            self.acks_dirty = True
            self.last_input = self.clock.now()
            if not self.ticker.running:  # the loop rests: start it
                await self._pace()

    async def on_message(self, conn: Connection, message: protocol.ClientMessage) -> None:
        if message.type == protocol.MOVE_TO:  # (the runtime sends moves to on_messages; a subclass may not)
            await self.on_messages([(conn, message)])
            return
        seats = self.seats
        player = seats.by_conn.get(conn.id)
        if player is None:
            return
        seat = seats.seats[player]
        if message.type == protocol.RESYNC:
            self.need_keyframe.add(conn.id)
        elif message.type == protocol.ATTACK:
            self.order_attack(conn, seat, message.payload.target, message.seq)
        else:
            return
        seats.ack(player, message.seq)
        self.acks_dirty = True
        self.last_input = self.clock.now()
        if not self.ticker.running:  # the loop rests: start it
            await self._pace()

    def order_move(self, conn: Connection, ship: dict, x: float, y: float, seq: int) -> None:
        """Apply a ``move_to`` (target already clamped): a straight leg from where the ship is
        (``kernels.motion.steer``)."""
        self.fleet.touch(steer(ship, x, y, self.clock.now(), protocol.SHIP_SPEED))

    def order_attack(self, conn: Connection, seat: dict, target: int, seq: int) -> None:
        """Apply an ``attack``; this room has no combat: an ``ERR_INVALID_TARGET`` error."""
        conn.send(protocol.error_frame(protocol.ERR_INVALID_TARGET, "there is no combat in this room", seq),
                  allow_unconfirmed=True)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.need_keyframe.discard(conn.id)
        self._welcome_marks.pop(conn.id, None)
        if await self.seats.leave(conn, code) is not None:
            self.last_input = self.clock.now()  # broadcast the change
        await self._flush()
        await self._pace()

    async def on_hibernate(self) -> None:
        await self._flush()

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or request.path not in ("", "/", "state"):
            return HttpResponse(404, {"error": "not found"})
        rows, _ = self.rows_at(self.clock.now())
        return HttpResponse(200, {
            "tick": self.ticker.current_tick(), "time": self.game_time(), **self.room_info(),
            "players": sum(1 for _ in self.seats.online()),
            "ships": [{"id": i, "x": r[0], "y": r[1], "flags": r[2], "name": self.ships[i]["name"]}
                      for i, r in rows.items()],
        })

"""Seats and seat holds: a dropped player gets their place back (Colyseus ``allowReconnection``).

A **seat** is a player's place in the room: a dict stored under ``seat:<player>`` in the
room's database, ``{"player", "token", "ack", "conn", "held_until", ...}`` plus whatever the
room keeps with it (the game: ``"ship"``). ``token`` is the seat token a client sends back as
``join {resume: token}``; ``ack`` the last input sequence number the room applied for the
player (the welcome and frames carry it, and a resumed seat keeps it, so the client resends
only what it does not cover); ``conn`` the connection id that holds the seat, or None while
it is **held**; ``held_until`` the clock time (seconds) a held seat expires.

- **Join** (``admit`` then ``occupy``): a player without a seat in a full room (``max_players``
  seats taken, held ones included) is refused: error frame ``ERR_ROOM_FULL`` (12) and close
  ``CLOSE_ROOM_FULL`` (4003). A ``resume`` token equal to the seat's (constant-time compare)
  takes the seat back with its ``ack``; any other join of a seated player gets a new seat
  (new token, ``ack`` = the join's seq) and, if another socket of the player holds the seat,
  that socket is closed with ``CLOSE_REPLACED`` (4009).
- **Close** (``leave``): a normal close (1000) releases the seat at once; any other close
  holds it for ``hold`` seconds (``Room.seat_hold``, or the room param ``seat_hold``), or
  releases it at once when ``hold`` is None.
- **Expiry**: the service registers the earliest ``held_until`` as a deadline with the
  room's ticker (``starhold.ticker``: the one alarm, which wakes a sleeping room), and releases
  the seats whose hold ran out when it falls due.
- **Hibernation and crashes** (``load``, in ``on_start``): the seats are read back; a seat
  whose connection was handed back to the activation is occupied again; a seat whose
  connection did not survive (a crash) is held; a restored connection without a seat is
  closed with ``CLOSE_ROOM_UNAVAILABLE`` (4503, "rejoin").

Releasing a seat calls the room's ``on_release(seat)`` (the game parks the seat's ship).
Changes are written behind: ``take_writes()`` gives the pending puts and deletes for the
room's own flush (one storage statement with its other state; ``take_changes()`` keeps the
seats whose ack alone changed apart), or ``flush()`` writes them.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Awaitable, Callable, Iterator

from . import protocol

if TYPE_CHECKING:
    from .connection import Connection
    from .room import ConnectRequest, Room

__all__ = ["Seats", "PREFIX"]

PREFIX = "seat:"
"""Storage key prefix of seats: ``seat:<player>``."""
DEADLINE = "starhold.seats"
"""The ticker deadline key of seat-hold expiry."""
TOKEN_BYTES = 24
"""Random bytes of a seat token (32 URL-safe characters)."""


class Seats:
    """The seats of one room activation.

    ``room``: the ``Room`` (its ``params``, ``clock``, ``storage``, ``connections``,
    ``ticker``); ``on_release(seat)``: called (synchronously) when a seat is released, after
    it left ``seats``; ``on_expired(released)``: awaited after holds expired at a deadline,
    with the released seats (e.g. to broadcast the change). ``hold`` (seconds or None) and
    ``max_players`` (int or None) come from the room params ``seat_hold``/``max_players``, else
    the class attributes ``Room.seat_hold``/``Room.max_players``; both may be changed later.
    """

    def __init__(self, room: "Room", *, on_release: Callable[[dict], None] | None = None,
                 on_expired: Callable[[list[dict]], Awaitable[None]] | None = None):
        self.room = room
        params = room.params
        self.hold: float | None = float(params["seat_hold"]) if params.get("seat_hold") is not None else (
            None if room.seat_hold is None else float(room.seat_hold))
        self.max_players: int | None = int(params["max_players"]) if params.get("max_players") else room.max_players
        self.on_release = on_release
        self.on_expired = on_expired
        self.seats: dict[str, dict] = {}
        """player -> seat dict."""
        self.by_conn: dict[str, str] = {}
        """connection id -> player, for the connections that hold a seat."""
        self._dirty: set[str] = set()
        self._acked: set[str] = set()  # players whose seat changed since the last take, maybe only its ack
        self.version = 0
        """Counts the changes of anything but acks: seats taken, held, released or updated, and
        ``load``. What a room derives from the seats (e.g. each ship's online/held flag) may be
        kept until it changes."""

    # ---- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.seats)

    def get(self, player: str) -> dict | None:
        """``player``'s seat, or None."""
        return self.seats.get(player)

    def player_of(self, conn_id: str) -> str | None:
        """The player whose seat connection ``conn_id`` holds, or None."""
        return self.by_conn.get(conn_id)

    def seat_of(self, conn_id: str) -> dict | None:
        """The seat connection ``conn_id`` holds, or None."""
        player = self.by_conn.get(conn_id)
        return None if player is None else self.seats.get(player)

    def online(self) -> Iterator[dict]:
        """The seats held by a connection (not held for a dropped player)."""
        return (s for s in self.seats.values() if s.get("conn") is not None)

    def next_expiry(self) -> float | None:
        """The earliest ``held_until`` of the held seats (clock seconds), or None."""
        return min((s["held_until"] for s in self.seats.values()
                    if s.get("conn") is None and s.get("held_until")), default=None)

    # ---- lifecycle -----------------------------------------------------------------------
    async def load(self) -> list[str]:
        """Read the stored seats and reattach the activation's connections (``on_start``):
        returns the ids of the connections that hold their seat again (restored from
        hibernation or a reset). Seats whose connection is gone are held; connections without
        a seat are closed with ``CLOSE_ROOM_UNAVAILABLE``. Registers the expiry deadline."""
        stored = await self.room.storage.list(prefix=PREFIX)
        self.version += 1
        self.seats = {s["player"]: s for s in stored.values()}
        self.by_conn = {}
        conns = {c.id: c for c in self.room.connections}
        restored = []
        for seat in self.seats.values():
            conn_id = seat.get("conn")
            if conn_id is not None and conn_id in conns:
                self.by_conn[conn_id] = seat["player"]
                restored.append(conn_id)
            elif conn_id is not None:  # its socket did not survive (crash): hold the seat
                self._hold(seat)
        for conn in conns.values():
            if conn.id not in self.by_conn:
                conn.close(protocol.CLOSE_ROOM_UNAVAILABLE, "seat lost; rejoin")
        await self.schedule()
        return restored

    def admit(self, conn: "Connection", request: "ConnectRequest", player: str) -> tuple[dict | None, bool] | None:
        """First half of a join of ``player`` on ``conn``: None when the room is full for
        them (``conn`` was sent ``ERR_ROOM_FULL`` and closed with ``CLOSE_ROOM_FULL``); else
        ``(seat, resumed)``: the player's current seat (None if none) and whether the join's
        ``resume`` token matches it. Another socket holding the seat is closed with
        ``CLOSE_REPLACED``."""
        seat = self.seats.get(player)
        if seat is None and self.max_players is not None and len(self.seats) >= self.max_players:
            conn.send(protocol.error_frame(protocol.ERR_ROOM_FULL, f"room is full ({self.max_players} players)",
                                           request.seq))
            conn.close(protocol.CLOSE_ROOM_FULL, "room full")
            return None
        token = request.payload.get("resume")
        resumed = bool(seat and token and hmac.compare_digest(token, seat["token"]))
        if seat is not None and seat.get("conn") is not None:
            for other in self.room.connections:  # the same player on another socket: replaced
                if other.id == seat["conn"] and other.id != conn.id:
                    self.by_conn.pop(other.id, None)
                    other.close(protocol.CLOSE_REPLACED, "the same player joined from another socket")
        return seat, resumed

    async def occupy(self, conn: "Connection", player: str, seq: int, resumed: bool, **data) -> dict:
        """Second half of a join: seat ``player`` on ``conn``. A resumed seat keeps its token
        and ack; else a new seat ``{"player", "token", "ack": seq, **data}`` replaces any
        other. Sets ``conn.attachment = {"player": player}``; returns the seat."""
        seat = self.seats.get(player)
        if seat is None or not resumed:
            seat = {"player": player, **data, "token": secrets.token_urlsafe(TOKEN_BYTES), "ack": seq}
        seat.update(conn=conn.id, held_until=None)
        self.version += 1
        self.seats[player] = seat
        self._dirty.add(player)
        self.by_conn[conn.id] = player
        conn.attachment = {"player": player}
        await self.schedule()
        return seat

    def ack(self, player: str, seq: int) -> int:
        """Record that ``player``'s input ``seq`` was applied; returns the seat's ack (the
        largest such seq). Raises ``KeyError`` for a player without a seat."""
        seat = self.seats[player]
        if seq > seat["ack"]:
            seat["ack"] = seq
            self._acked.add(player)
        return seat["ack"]

    @property
    def acked(self) -> set[str]:
        """Players whose ``ack`` changed since the changes were last taken (``take_changes``).
        Code that raises seats' acks itself (a compiled kernel applying a run of inputs,
        ``rooms.ships.fleet.Fleet.steer_moves``) adds their players here, as ``ack`` does."""
        return self._acked

    def ack_many(self, acks: list[tuple[str, int]]) -> None:
        """``ack(player, seq)`` for each ``(player, seq)`` of ``acks``, in order. Raises
        ``KeyError`` for a player without a seat (the acks before it are recorded)."""
        seats, acked = self.seats, self._acked
        for player, seq in acks:
            seat = seats[player]
            if seq > seat["ack"]:
                seat["ack"] = seq
                acked.add(player)

    def update(self, player: str, **data) -> dict:
        """Change the room's own fields of ``player``'s seat (written behind). ``KeyError``
        when there is none."""
        seat = self.seats[player]
        seat.update(data)
        self.version += 1
        self._dirty.add(player)
        return seat

    async def leave(self, conn: "Connection", code: int) -> dict | None:
        """``conn`` closed with ``code``: its seat is released (1000, or no holds) or held
        for ``hold`` seconds. Returns that seat, or None when ``conn`` held none (never
        seated, or replaced by another socket of its player)."""
        player = self.by_conn.pop(conn.id, None)
        seat = self.seats.get(player) if player else None
        if seat is None or seat.get("conn") != conn.id:
            return None
        if code == protocol.CLOSE_NORMAL or self.hold is None:
            self.release(seat)
        else:
            self._hold(seat)
        await self.schedule()
        return seat

    def release(self, seat: dict) -> None:
        """Free ``seat`` now (its player is gone): it leaves ``seats`` and ``on_release``
        runs."""
        self.version += 1
        self.seats.pop(seat["player"], None)
        if seat.get("conn") is not None:
            self.by_conn.pop(seat["conn"], None)
        self._dirty.add(seat["player"])
        if self.on_release is not None:
            self.on_release(seat)

    def expire(self, now: float) -> list[dict]:
        """Release the held seats whose ``held_until`` is at or before ``now`` (clock
        seconds); returns them."""
        released = [s for s in list(self.seats.values())
                    if s.get("conn") is None and s.get("held_until") is not None and s["held_until"] <= now]
        for seat in released:
            self.release(seat)
        return released

    async def schedule(self) -> None:
        """Register the next hold expiry with the room's ticker (or remove the deadline)."""
        await self.room.ticker.wake_at(DEADLINE, self.next_expiry(), self._deadline)

    async def _deadline(self) -> None:
        released = self.expire(self.room.clock.now())
        await self.schedule()
        if self.on_expired is not None:
            await self.on_expired(released)

    def _hold(self, seat: dict) -> None:
        self.version += 1
        seat["conn"] = None
        seat["held_until"] = self.room.clock.now() + self.hold
        self._dirty.add(seat["player"])

    # ---- write-behind --------------------------------------------------------------------
    def take_writes(self) -> tuple[dict[str, dict], list[str]]:
        """The changed seats as ``({key: seat}, [keys to delete])``; clears them."""
        puts, deletes, acked = self.take_changes()
        puts.update(acked)
        return puts, deletes

    def take_changes(self) -> tuple[dict[str, dict], list[str], dict[str, dict]]:
        """Like ``take_writes``, with the seats whose only change is their ``ack`` apart:
        ``({key: seat}, [keys to delete], {key: seat whose ack alone changed})``, so that a
        write-behind can store just the ack of those (``rooms.ships.journal`` patches);
        clears them."""
        puts, deletes = {}, []
        for player in self._dirty:
            seat = self.seats.get(player)
            if seat is None:
                deletes.append(PREFIX + player)
            else:
                puts[PREFIX + player] = seat
        acked = {PREFIX + player: self.seats[player] for player in self._acked
                 if player not in self._dirty and player in self.seats}
        self._dirty.clear()
        self._acked.clear()
        return puts, deletes, acked

    async def flush(self) -> None:
        """Write the changed seats now (for a room without a write-behind of its own)."""
        puts, deletes = self.take_writes()
        if puts:
            await self.room.storage.put(puts)
        if deletes:
            await self.room.storage.delete(deletes)

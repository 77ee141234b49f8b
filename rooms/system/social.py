"""A system's chat channel, direct messages and presence (docs/protocol.md §3 "Chat").

- ``say {text}``: the text is cleaned (``rooms.social.text.clean_text``: control characters
  removed, 1-280 characters, else ``ERR_OUT_OF_RANGE``), rate limited per player (burst 5,
  one more every 2 s, shared with ``tell``, else ``ERR_RATE_LIMITED``) and broadcast to every
  connection of the system as a ``chat`` message (channel ``system``). The last 20 are kept
  (``chat:`` keys) and sent to each joining player with ``history: true``.
- ``tell {to, text}``: the same checks, then a ``call`` to the recipient's pilot room (``dm``),
  which keeps the message for 7 days and posts it to the system holding the recipient's ship
  if they are online (``deliver``). Unknown player: ``ERR_UNKNOWN_PLAYER``. The sender gets its
  message back as a ``chat`` (channel ``dm``).
- ``presence``: the pilots seated here (online or held) and docked here, sent in full to a
  joining player and to everyone when it changes, at most once a second.
"""

from __future__ import annotations

from starhold import Connection, RoomUnavailable
from .. import protocol
from ..pilot.inbox import chat_payload
from ..pilot.room import KIND as PILOT, PLAYER_ID
from ..social.history import PREFIX as CHAT_PREFIX, ChatHistory
from ..social.limiter import ChatLimiter
from ..social.presence import PREFIX as DOCKED_PREFIX, DockedIndex, Presence
from ..social.text import clean_text


class SystemSocial:
    """Chat and presence of one ``SolarSystemRoom`` (``room``)."""

    def __init__(self, room):
        self.room = room
        self.history = ChatHistory()
        self.limiter = ChatLimiter()
        self.presence = Presence(room.name)
        self.docked = DockedIndex()
        self.next_check = 0.0  # clock s: the next tick that builds the presence list

    async def load(self) -> None:
        storage = self.room.storage
        self.history.load(await storage.list(prefix=CHAT_PREFIX))
        self.docked.load(await storage.list(prefix=DOCKED_PREFIX))

    def take_writes(self) -> tuple[dict, list]:
        puts, deletes = self.history.take_writes()
        more_puts, more_deletes = self.docked.take_writes()
        return {**puts, **more_puts}, deletes + more_deletes

    def _check(self, conn: Connection, player: str, text: str, seq: int) -> str | None:
        try:
            text = clean_text(text)
        except ValueError as exc:
            conn.send(protocol.error_frame(protocol.ERR_OUT_OF_RANGE, f"text: {exc}", seq), allow_unconfirmed=True)
            return None
        if not self.limiter.allow(player, self.room.clock.now()):
            wait = self.limiter.retry_after(player, self.room.clock.now())
            conn.send(protocol.error_frame(protocol.ERR_RATE_LIMITED, f"chat rate limit: wait {wait:.1f} s", seq),
                      allow_unconfirmed=True)
            return None
        return text

    def name_of(self, player: str) -> str:
        seat = self.room.seats.get(player)
        ship = self.room.ships.get(seat["ship"]) if seat else None
        return ship["name"] if ship else player

    def say(self, conn: Connection, player: str, text: str, seq: int) -> None:
        text = self._check(conn, player, text, seq)
        if text is None:
            return
        payload = {"id": self.history.next_id, "channel": "system", "from": player, "name": self.name_of(player),
                   "to": None, "text": text, "time": self.room.game_time(), "history": False}
        self.history.add(payload)
        self.room.broadcast(protocol.encode(protocol.CHAT, 0, payload))

    async def tell(self, conn: Connection, player: str, to: str, text: str, seq: int) -> None:
        if not PLAYER_ID.match(to):  # no pilot room is created for an id no gateway issues
            conn.send(protocol.error_frame(protocol.ERR_UNKNOWN_PLAYER, f"no pilot {to!r}", seq), allow_unconfirmed=True)
            return
        text = self._check(conn, player, text, seq)
        if text is None:
            return
        try:
            answer = await self.room.rooms.call(PILOT, to, "dm", {"from": player, "name": self.name_of(player),
                                                                  "text": text}, timeout=5.0)
        except (RoomUnavailable, ValueError) as exc:
            code = protocol.ERR_UNKNOWN_PLAYER if isinstance(exc, ValueError) else protocol.ERR_ROOM_ERROR
            conn.send(protocol.error_frame(code, f"cannot reach {to}", seq), allow_unconfirmed=True)
            return
        if answer.status != 200:
            conn.send(protocol.error_frame(protocol.ERR_UNKNOWN_PLAYER, f"no pilot {to!r}", seq), allow_unconfirmed=True)
            return
        conn.send(protocol.encode(protocol.CHAT, seq, chat_payload(answer.body["message"])))

    def deliver(self, player: str, message: dict) -> bool:
        """A direct message for ``player`` (from its pilot room): sent if they are here."""
        seat = self.room.seats.get(player)
        for conn in self.room.connections:
            if seat is not None and conn.id == seat.get("conn"):
                conn.send(protocol.encode(protocol.CHAT, 0, chat_payload(message)))
                return True
        return False

    def joined(self, conn: Connection) -> None:
        """A player joined: the recent channel lines, then the pilots here."""
        for payload in self.history.recent():
            conn.send(protocol.encode(protocol.CHAT, 0, payload))
        conn.send(protocol.encode(protocol.PRESENCE, 0, self.presence.full(self.entries())))

    def entries(self) -> list[dict]:
        room = self.room
        out = list(self.docked.entries())
        for seat in room.seats.seats.values():
            ship = room.ships.get(seat["ship"])
            if ship is None:
                continue
            out.append({"player": seat["player"], "name": ship["name"], "ship": ship["id"],
                        "status": "online" if seat.get("conn") else "held", "combat": room.sim.fighting(ship["id"])})
        return out

    def tick(self) -> None:
        """Each tick: broadcast the presence if it changed; it is sent at most once a second,
        so the list (docked pilots included) is only built once a second too."""
        now = self.room.clock.now()
        if now < self.next_check:
            return
        self.next_check = now + self.presence.interval
        payload = self.presence.due(self.entries(), now)
        if payload is not None:
            self.room.broadcast(protocol.encode(protocol.PRESENCE, 0, payload), allow_unconfirmed=True)


__all__ = ["SystemSocial"]

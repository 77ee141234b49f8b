"""The Room API: the Durable Object analogue that game authors subclass (DESIGN §3).

A room is a single-threaded actor that owns its state. The runtime calls its async hooks one
event at a time (the input gate), so hook code needs no locks. Room code never imports Ray or
aiohttp and never reads the system clock: it uses ``self.clock`` and ``self.storage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .connection import Connection, as_bytes

__all__ = ["AlarmInfo", "ConnectRequest", "HttpRequest", "HttpResponse", "Room"]

if TYPE_CHECKING:
    from .storage.sqlite_store import RoomStorage
    from .clock import Clock
    from ._runtime.runtime import RoomRuntime
    from .ticker import Ticker
    from .calls import RoomCalls


@dataclass(frozen=True)
class ConnectRequest:
    """What a client asked for when it connected: ``payload`` is the validated join payload
    (a dict), ``seq`` the join message's sequence number; ``player``, ``name`` and
    ``account`` (``"user"`` or ``"guest"``) are the identity the gateway verified from the
    client's token (empty when the room is used without a gateway)."""

    payload: dict = field(default_factory=dict)
    seq: int = 0
    player: str = ""
    name: str = ""
    account: str = ""


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request routed to the room: ``method`` ("GET"...), ``path`` below the room's
    URL, ``query`` (dict of str), ``body`` (bytes).

    ``sender`` is ``"<kind>/<id>"`` of the room that sent it (``self.rooms.call`` or
    ``self.rooms.post``, ``starhold.calls``) and ``""`` for a request from a gateway or a test:
    a room serves its room-only paths only when ``sender`` is set (clients cannot set it).
    ``key`` is the idempotency key of a ``post`` (``""`` otherwise): a post may arrive more than
    once (at-least-once delivery), and the room applies each key once."""

    method: str = "GET"
    path: str = ""
    query: dict = field(default_factory=dict)
    body: bytes = b""
    sender: str = ""
    key: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body). Raises ``ValueError`` for a
        body that is not JSON."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass(frozen=True)
class HttpResponse:
    """A room's answer to ``on_request``: ``status`` code and a JSON-serialisable ``body``."""

    status: int = 200
    body: Any = None


@dataclass(frozen=True)
class AlarmInfo:
    """Passed to ``on_alarm``: ``retry_count`` is 0 on first delivery; ``is_retry`` likewise."""

    scheduled_time: float
    retry_count: int = 0

    @property
    def is_retry(self) -> bool:
        return self.retry_count > 0


class Room:
    """Base class of every room. Override the async hooks you need; all are no-ops here.

    Attributes set by the runtime before ``on_start``: ``name`` (the room id, str), ``kind``
    (class attribute), ``params`` (dict given at creation; plain data), ``storage``
    (``RoomStorage`` on the room's own SQLite file), ``clock`` (``Clock``; seconds).
    """

    kind: str = "room"
    """The kind's name, 1-32 characters of ``[a-z0-9_-]``: rooms are addressed as
    ``(kind, id)``; ``starhold.define_room`` registers the class under it."""
    messages: dict[str, type] = {}
    """The client message types of this kind: type name -> a ``msgspec.Struct`` subclass that
    validates its payload (field names and types; ranges and lengths with ``msgspec.Meta``),
    e.g. ``{"move_to": MoveTo}``. Subclasses inherit it (extend with ``{**Base.messages, ...}``).

    The gateway validates every client message against it before the room sees it
    (``starhold.messages``): a type not declared here is answered with error 2
    (``ERR_UNKNOWN_TYPE``), a missing field or a value of the wrong type with error 3
    (``ERR_INVALID_FIELD``), a value outside a declared constraint (NaN included) with error 4
    (``ERR_OUT_OF_RANGE``); unknown payload keys are ignored. The protocol's own ``join``,
    ``ping`` and ``resync`` need no entry and may not be redeclared (``define_room`` raises
    ``TypeError``). The room validates again on arrival (a gateway with other schemas), and the
    test harness validates with the same function."""
    coalesce: frozenset = frozenset()
    """Client message types where only the latest per connection in a batch matters (e.g.
    ``{"move_to"}``: a newer target replaces an older one). The runtime delivers only that
    latest one to ``on_message``; acknowledging its ``seq`` covers the superseded ones."""
    batched: frozenset = frozenset()
    """Client message types delivered in runs to ``on_messages`` instead of one by one to
    ``on_message`` (e.g. ``{"move_to"}`` in a room that applies a tick's inputs in bulk). A run
    is the consecutive messages of these types in one batch (a gateway's flush point); any
    other event in between (another type, a connect, a close) ends it, so the order of
    everything is kept. Default: none."""
    tick_rate: float | None = None
    """Hz of the room's loop (``on_tick``, driven by ``self.ticker``: ``starhold.ticker``), or
    None for a room without one."""
    tick_epoch: float = 0.0
    """Clock seconds of tick 0 before the room's offset (``starhold.ticker``): tick ``k``'s
    boundary is ``tick_epoch + offset + k / tick_rate``. Default: the Unix epoch."""
    seat_hold: float | None = None
    """Seconds a dropped player's seat is held for ``join.resume``, or None for no seat holds
    (``starhold.seats.Seats``; the room param ``seat_hold`` overrides it per room)."""
    max_players: int | None = None
    """Most players seated at once (a full room refuses a ``join`` with error 12 and close
    4003), or None for no limit (``starhold.seats.Seats``; the room param ``max_players``
    overrides it per room)."""
    wake_on_http: bool = False
    """Whether an HTTP request without a token may wake the room when it sleeps (else such a
    request is answered only by an awake room, and 401 otherwise)."""

    def __init__(self, runtime: "RoomRuntime", name: str, params: dict, storage: "RoomStorage", clock: "Clock"):
        self._runtime = runtime
        self.name = name
        self.params = params
        self.storage = storage
        self.clock = clock

    # ---- services -----------------------------------------------------------------------
    @property
    def connections(self) -> list[Connection]:
        """The room's open connections, in connection order."""
        return self._runtime.connection_list()

    def get_connections(self, tag: str | None = None) -> list[Connection]:
        """Open connections carrying ``tag`` (all when ``tag`` is None)."""
        return [c for c in self.connections if tag is None or tag in c.tags]

    def broadcast(self, message: Any, exclude: Iterable[str] = (), *, allow_unconfirmed: bool = False) -> None:
        """Send ``message`` to every connection except the ids in ``exclude``; encoded once."""
        skip = set(exclude)
        targets = [c for c in self.connections if c.id not in skip and not c.closed]
        if targets:
            self._runtime.emit(targets, as_bytes(message), allow_unconfirmed)

    def send_spliced(self, tail: bytes, heads: list[tuple[Connection, bytes]], *, allow_unconfirmed: bool = True) -> None:
        """Send each connection ``head + tail`` (bytes): for frames that are the same for every
        client but a few bytes (its ack). ``tail`` is shipped once per gateway, not per client."""
        if heads:
            self._runtime.emit_spliced(tail, heads, allow_unconfirmed)

    def commit_mark(self) -> int:
        """A number (int) for the writes this room has made so far: they are durable once
        ``durable_mark() >= commit_mark()``. Use it for output sent with
        ``allow_unconfirmed`` that must not claim more than is durable (the ship rooms'
        frames carry the ``ack`` of the last durable input)."""
        return self._runtime.commit_mark()

    def durable_mark(self) -> int:
        """Every write up to this mark (``commit_mark``) is durable: committed, and, when the
        room's snapshot store replicates (S3), replicated off the node, so it survives the
        loss of the node. Grows as commits are replicated."""
        return self._runtime.durable_mark()

    async def commit_now(self, wait: float = 0.0) -> bool:
        """Commit the writes made so far in this hook now (they no longer roll back with
        it), then wait up to ``wait`` seconds for them to be durable (replicated off the
        node, when the store replicates). Returns whether they are. Output the hook sent is
        still released when the hook returns. Raises ``StorageError`` when the commit fails.
        The ship rooms call it each tick that applied inputs, before the frame, so that the
        frame can acknowledge them (``durable_mark``)."""
        return await self._runtime.commit_now(wait)

    @property
    def rooms(self) -> "RoomCalls":
        """Requests to other rooms (``starhold.calls.RoomCalls``): ``await self.rooms.call(kind,
        id, path, body)`` waits for the other room's answer; ``self.rooms.post(kind, id, path,
        body, key=...)`` sends once this hook's writes commit, exactly once in effect."""
        calls = self.__dict__.get("_calls")
        if calls is None:
            from .calls import RoomCalls

            calls = self.__dict__["_calls"] = RoomCalls(self._runtime)
        return calls

    @property
    def ticker(self) -> "Ticker":
        """The room's loop and alarm owner (``starhold.ticker.Ticker`` at ``tick_rate`` Hz),
        created on first use in each activation. A room that uses it leaves
        ``storage.set_alarm`` to it (deadlines: ``ticker.wake_at``)."""
        ticker = self.__dict__.get("_ticker")
        if ticker is None:
            from .ticker import Ticker

            ticker = self.__dict__["_ticker"] = Ticker(self)
        return ticker

    # ---- hooks (override) -------------------------------------------------------------------
    async def on_start(self) -> None:
        """Once per activation, after storage is open and before any other hook."""

    async def on_connect(self, conn: Connection, request: ConnectRequest) -> None:
        """A client joined. Raising rejects it (the client gets an error and a 4503 close)."""

    async def on_message(self, conn: Connection, message: Any) -> None:
        """A validated client message from ``conn``, a ``starhold.protocol.ClientMessage``:
        ``message.type`` (str, a key of ``messages`` or ``"resync"``), ``message.seq`` (the
        client's sequence number, int in ``[0, 2^53-1]``; acknowledge it in your frames) and
        ``message.payload``, an instance of ``messages[message.type]`` (a ``msgspec.Struct``:
        read its fields as attributes, ``message.payload.x``; ``protocol.Resync()`` for a
        ``resync``). Of the messages of ``Room.coalesce`` only the latest per connection in a
        batch arrives. Raising sends ``conn`` error 8 (``ERR_ROOM_ERROR``) and calls
        ``on_error``; the room carries on."""

    async def on_messages(self, batch: list[tuple[Connection, Any]]) -> None:
        """A run of validated client messages whose types are in ``batched``: a list of
        ``(conn, message)`` (``message`` a ``ClientMessage`` as ``on_message`` gets it), in
        arrival order, at least one, from connections of this activation. Raising sends each
        connection of the run error 8 (``ERR_ROOM_ERROR``, with the ``seq`` of its last message
        in the run) and calls ``on_error(None, exc)``; what the hook wrote before it raised is
        committed with the batch, as for ``on_message``, and the room carries on. Default:
        ``on_message`` for each, in order (the first that raises ends the run)."""
        for conn, message in batch:
            await self.on_message(conn, message)

    async def on_close(self, conn: Connection, code: int, reason: str) -> None:
        """``conn`` is gone (``code``/``reason`` as the WebSocket close gave them)."""

    async def on_error(self, conn: Connection | None, exc: BaseException) -> None:
        """A hook raised ``exc`` while handling ``conn``'s event; the room carries on."""

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        """HTTP to the room (its state endpoint). Default: 404."""
        return HttpResponse(404, {"error": "not found"})

    async def on_alarm(self, info: AlarmInfo) -> None:
        """The room's alarm (``storage.set_alarm``) fell due. Default: a room with a
        ``tick_rate`` or a ticker in use delivers it to ``self.ticker`` (deadlines, then
        ``on_tick``); else nothing."""
        if self.tick_rate or "_ticker" in self.__dict__:
            await self.ticker.on_alarm(info)

    async def on_tick(self, tick: int, missed: int) -> None:
        """One tick of the loop (``self.ticker``, ``tick_rate`` Hz): ``tick`` is the tick's
        number (its boundary is ``self.ticker.tick_time(tick)``, seconds), ``missed`` how
        many ticks before it went by undelivered (0 while the room keeps up; after a late
        alarm, a sleep or a crash with the loop running: catch up on them)."""

    async def on_hibernate(self) -> None:
        """Best effort, just before eviction. Never the only place state is saved."""

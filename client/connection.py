"""The Python client of protocol v2 (docs/protocol.md): connect, join, play, come back.

::

    async with StarholdClient.for_system("http://127.0.0.1:8000", "Sol", name="Ada") as client:
        welcome = await client.join()
        seq = await client.move_to(100.0, 0.0)
        await client.wait_for(lambda c: c.ack >= seq)
        print(client.ships[client.ship_id])        # [x, y, flags]
        await client.attack(pirate_id)             # a ship id from client.ships (flag SHIP_NPC)
        print(client.hp[client.ship_id])           # [hp, max_hp]

**Tokens.** Every socket carries a token (``?token=`` in the URL). Pass ``token=`` (from
``POST /api/auth/login``, or ``client.token`` of another client to be the same player), or
let the client take a guest token from ``POST /api/auth/guest`` with ``name`` on connect.

**Reconnection.** Once joined, a socket that closes unexpectedly (a dropped network, 1006, a
restarting gateway 1001, a migrating room 4503, a slow consumer 4008, a server that stopped
answering the client's pings for ``heartbeat`` seconds, ...) is reopened
after a partysocket-style delay (``client.backoff``: 1-5 s, then x1.3 per failed attempt, at
most 10 s; reset after a connection held ``MIN_UPTIME`` seconds), and the client joins with
``resume: <seat token>`` from its last ``welcome``: within the seat hold (30 s) it gets the
same ship and its ``ack`` back (``welcome.resumed``). Closes that a retry cannot fix are
final (``NO_RECONNECT``: 1009, 4000, 4001, 4003, 4004, 4009, 4029, after §5 of the
protocol); so is ``close()``, which sends 1000: the room releases the seat at once.
``close_codes`` keeps the history, ``reconnects`` counts successful rejoins.

**The offline queue.** While there is no joined socket (before the first join when not
connected, and between a drop and the rejoin) ``move_to()`` does not fail: the command is
numbered and queued (at most ``queue_limit``, default 256; beyond that the oldest is dropped
and counted in ``dropped``). Inputs sent but not yet acknowledged stay in the same queue.
After a (re)join the queue is sent in order: inputs the room acknowledged (``seq <=
welcome.ack`` of a resumed seat) are not sent again, the others are, above the welcome's ack
(a seq that would not be is renumbered, keeping the order; this only happens when resuming
a seat another process held). A reconnect's ``join`` carries the last ack the client saw as
its seq, so a fresh seat (the hold expired) acknowledges nothing the client had not already
seen acknowledged, and ``ack >= seq`` stays a correct test that the room applied ``seq``.

**Frames and prediction.** Frames go through ``WorldState`` (``client.state``): keyframes
replace, deltas apply on their base; a delta that does not apply makes the client send
``resync`` (once until the keyframe arrives). ``client.predictor`` (a ``Predictor``) keeps
the pending ``move_to`` orders: ``client.predicted_position()`` is where the own ship is
about to be, before the server's frames show it (client-side prediction, server
reconciliation with every frame's ack).

Times are seconds of ``clock`` (``time.monotonic`` unless injected); positions world units.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import warnings
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import aiohttp

from ..rooms import protocol
from .backoff import Backoff
from .economy import Economy
from .http import (DEFAULT_GUEST_NAME, ClientClosed, StarholdHTTPError, create_game, game_path,  # noqa: F401
                   guest_token, http_base, system_path, ws_base)
from .inputs import _Input, plan_resend  # noqa: F401  (tests reach them here)
from .receiving import NO_RECONNECT, Receiver  # noqa: F401
from .travel import MAX_FOLLOWS, Travel
from .state import PendingInput, Predictor, WorldState

log = logging.getLogger("starhold.client")

QUEUE_LIMIT = 256
"""Default bound of the offline queue (commands, oldest dropped first)."""
HEARTBEAT = 15.0
"""Seconds without any message before the client pings (WebSocket ping); no pong within half of
it and the socket counts as dropped (a half-open connection the server would only notice later)."""


class StarholdClient(Economy, Travel, Receiver):
    """One player's connection to one room (a solar system or a game) on a Starhold gateway.

    ``base_url``: the gateway (``http://127.0.0.1:8000``). ``room``: a system id, name or alias
    (``"Sol"``), or a WebSocket path starting with ``/`` (``"/api/game/<id>/ws"``; see
    ``for_system``, ``for_game``). Keywords: ``token`` (else a guest token for ``name`` is
    taken on connect), ``name`` (display name sent in ``join``), ``session`` (an
    ``aiohttp.ClientSession`` to share; closed by us only if we made it), ``reconnect``
    (default True), ``seat`` (a seat token to resume on the first join), ``backoff`` (a
    ``Backoff``), ``queue_limit``, ``clock`` (seconds), ``sleep`` (coroutine function, for
    tests), ``max_reconnect_attempts`` (None: forever, like partysocket), ``heartbeat``
    (seconds of silence before a WebSocket ping; a socket whose pong does not come within half
    of it is dropped (1006) and reconnected; None: rely on the server's pings), ``connect_timeout``,
    ``join_timeout`` (seconds, for rejoins).

    State: ``ship_id``, ``player``, ``seat``, ``welcome`` (the last welcome payload),
    ``system`` / ``game`` (the welcome's room description), ``state`` (``WorldState``) with the
    shortcuts ``tick``, ``time``, ``ack``, ``ships`` ({id: [x, y, flags]}), ``names``, ``hp``
    ({id: [hp, max_hp]}, rooms with combat), ``events`` (the last frame's combat events);
    ``predictor``; ``errors`` (error payloads, with their ``seq``), ``close_codes``,
    ``close_code`` (the last), ``reconnects``, ``frames``, ``resyncs``, ``dropped``; and the
    travel and chat state of ``client.travel.Travel`` (``jumps``, ``elsewhere``, ``chat``,
    ``presence``, ``routes``): the client follows its ship from system to system unless
    ``follow=False``; and the economy state of ``client.economy.Economy`` (``cargo``,
    ``credits``, ``hold``, ``wrecks``, ``scans``, ``scan_results``, ``last_scan``; orders
    ``scan``, ``mine``, ``loot``; ``market_api()`` for the HTTP side).
    """

    def __init__(self, base_url: str, room: str = "Sol", *, token: str | None = None, name: str | None = None,
                 session: aiohttp.ClientSession | None = None, reconnect: bool = True, seat: str | None = None,
                 backoff: Backoff | None = None, queue_limit: int = QUEUE_LIMIT,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 max_reconnect_attempts: int | None = None, heartbeat: float | None = HEARTBEAT,
                 connect_timeout: float = 10.0, join_timeout: float = 10.0,
                 no_reconnect: frozenset[int] = NO_RECONNECT, player: str | None = None, follow: bool = True):
        if player is not None:
            warnings.warn("StarholdClient(player=...) is protocol v1: the token names the player now; "
                          "pass token=<the other client's .token> to be the same player",
                          DeprecationWarning, stacklevel=2)
        self.base_url = http_base(base_url)
        self.path = room if room.startswith("/") else system_path(room)
        self.token = token
        self.auth: dict | None = None
        self.name = name
        self.reconnect = reconnect
        self.seat = seat
        self.backoff = backoff if backoff is not None else Backoff()
        self.queue_limit = queue_limit
        self.clock = clock
        self._sleep = sleep
        self.max_reconnect_attempts = max_reconnect_attempts
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.join_timeout = join_timeout
        self.no_reconnect = no_reconnect
        self._session = session
        self._own_session = session is None

        self.state = WorldState()
        self.predictor = Predictor()
        self.outbox: collections.deque[_Input] = collections.deque()
        self.ship_id: int | None = None
        self.player: str | None = None
        self.welcome: dict | None = None
        self.system: dict | None = None
        self.game: dict | None = None
        self.errors: list[dict] = []
        self.close_codes: list[int | None] = []
        self.close_code: int | None = None
        self.reconnects = 0
        self.frames = 0
        self.resyncs = 0
        self.dropped = 0
        self.messages: collections.deque = collections.deque(maxlen=1024)
        self.received = 0
        self.frame_arrivals: collections.deque = collections.deque(maxlen=256)

        self._seq = 1
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._readers: set[asyncio.Task] = set()
        self._joined_ws: aiohttp.ClientWebSocketResponse | None = None  # the socket a welcome arrived on
        self._joined_at = 0.0
        self._want_joined = False  # joined once: rejoin after drops
        self._rejoining = False  # a (re)join is in progress: queue commands
        self._reconnect_task: asyncio.Task | None = None
        self._closing = False
        self._finished = False
        self._resync_pending = False
        self._changed: asyncio.Future | None = None
        self._ended: set = set()  # sockets whose reader has finished
        self._tasks: set[asyncio.Task] = set()
        self._travel_init(follow)
        self._economy_init()

    # ---- constructors ----------------------------------------------------------------------
    @classmethod
    def for_system(cls, base_url: str, system: str, **kwargs: Any) -> "StarholdClient":
        """A client of the solar system ``system`` (id, name or alias): ``/api/systems/{system}/ws``."""
        return cls(base_url, system_path(system), **kwargs)

    @classmethod
    def for_game(cls, base_url: str, game_id: str, **kwargs: Any) -> "StarholdClient":
        """A client of the game session ``game_id`` (from ``create_game``): ``/api/game/{id}/ws``."""
        return cls(base_url, game_path(game_id), **kwargs)

    # ---- state shortcuts -------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        """The WebSocket URL, token included (None-token: without)."""
        url = ws_base(self.base_url) + self.path
        return url + ("?token=" + quote(self.token, safe="") if self.token else "")

    @property
    def tick(self) -> int:
        """Tick of the last applied frame (0 before the first)."""
        return self.state.tick if self.state.tick is not None else 0

    @property
    def time(self) -> float:
        """Game time of the last applied frame, seconds."""
        return self.state.time

    @property
    def ack(self) -> int:
        """The last input seq of ours the room has applied (welcome or frame)."""
        return self.state.ack

    @property
    def ships(self) -> dict[int, list]:
        """Ship id -> ``[x, y, flags]`` (world units, ``protocol.SHIP_*`` bits)."""
        return self.state.ships

    @property
    def names(self) -> dict[int, str]:
        return self.state.names

    @property
    def hp(self) -> dict[int, list]:
        """Ship id -> ``[hp, max_hp]`` (solar systems; empty in a game session)."""
        return self.state.hp

    @property
    def events(self) -> list:
        """The last applied frame's combat events ``[kind, a, b, value]`` (``protocol.EVENT_*``)."""
        return self.state.events

    @property
    def closed(self) -> bool:
        """No open socket right now (not connected yet, reconnecting, or finished)."""
        return self._ws is None or self._ws.closed

    @property
    def connected(self) -> bool:
        """Joined on an open socket, commands go out at once."""
        return self._online() and self._joined_ws is self._ws

    @property
    def finished(self) -> bool:
        """Closed for good: no reconnection will follow."""
        return self._finished

    @property
    def pending(self) -> int:
        """Commands queued or in flight (not yet acknowledged)."""
        return len(self.outbox)

    def predicted_position(self, at: float | None = None) -> tuple[float, float] | None:
        """Our ship's predicted position at ``at`` (default now, ``clock``), world units; None
        before our ship is known. See ``Predictor.predict``."""
        row = self.ships.get(self.ship_id) if self.ship_id is not None else None
        if row is None:
            return None
        return self.predictor.predict(row, self.clock() if at is None else at)

    # ---- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> "StarholdClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def connect(self) -> None:
        """Take a guest token if we have none, then open the WebSocket (no join yet)."""
        if self._finished:
            raise ClientClosed(self.close_code, "client closed")
        if self.token is None:
            self.auth = await guest_token(self.base_url, self.name or DEFAULT_GUEST_NAME, session=self._http())
            self.token = self.auth["token"]
            self.player = self.auth.get("player")
        await self._open()

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        ws = await asyncio.wait_for(
            self._http().ws_connect(self.ws_url, autoping=True, heartbeat=self.heartbeat, max_msg_size=0),
            self.connect_timeout)
        self._ended.clear()  # only the current socket's end matters
        self._ws = ws
        reader = asyncio.create_task(self._read_loop(ws))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        self._notify()
        return ws

    async def close(self, code: int = protocol.CLOSE_NORMAL) -> None:
        """Leave: close with ``code`` (1000: the room releases the seat at once), stop
        reconnecting, and close our HTTP session if we made it."""
        self._closing = True
        if self._reconnect_task is not None and self._reconnect_task is not asyncio.current_task():
            self._reconnect_task.cancel()
            try:
                await self._reconnect_task
            except (asyncio.CancelledError, Exception):
                pass
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await asyncio.wait_for(ws.close(code=code), 5)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass
        for reader in list(self._readers):
            try:
                await asyncio.wait_for(asyncio.shield(reader), 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                reader.cancel()
        self._finished = True
        self._notify()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ---- sending ---------------------------------------------------------------------------
    def next_seq(self) -> int:
        """Take the next input sequence number."""
        seq = self._seq
        self._seq += 1
        return seq

    def _online(self) -> bool:
        return self._ws is not None and not self._ws.closed and not self._rejoining and not self._finished

    async def send(self, type_: str, payload: dict, seq: int | None = None) -> int:
        """Send one envelope now (not queued, not resent); returns its seq. Raises
        ``ClientClosed`` if there is no open socket."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ClientClosed(self.close_code)
        seq = self.next_seq() if seq is None else seq
        await ws.send_bytes(protocol.encode(type_, seq, payload))
        return seq

    async def send_raw(self, data: bytes | str) -> None:
        """Send raw bytes (or a text frame): for tests of bad input."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ClientClosed(self.close_code)
        if isinstance(data, str):
            await ws.send_str(data)
        else:
            await ws.send_bytes(data)

    async def ping(self) -> int:
        """Send ``ping`` (answered by ``pong`` from the gateway); returns its seq."""
        return await self.send(protocol.PING, {})

    async def resync(self) -> int | None:
        """Ask for a keyframe; returns the seq, or None when offline (a keyframe follows
        every welcome anyway)."""
        if not self._online():
            return None
        self._resync_pending = True
        self.resyncs += 1
        try:
            return await self.send(protocol.RESYNC, {})
        except (ClientClosed, ConnectionError, RuntimeError):
            return None

    async def move_to(self, x: float, y: float) -> int:
        """Order our ship to fly to ``(x, y)`` world units; returns the input's seq.

        Sent at once when joined; queued while offline (see the module docstring) and sent
        after the next (re)join. Raises ``ClientClosed`` after the client finished."""
        return await self.command(protocol.MOVE_TO, {"x": float(x), "y": float(y)})

    async def attack(self, target: int) -> int:
        """Attack the ship ``target`` (an id from ``ships``): a pirate, or another player's
        ship (a duel); returns the input's seq. Queued while offline like ``move_to``. The room
        answers an invalid target with an error frame (``ERR_UNKNOWN_TARGET``,
        ``ERR_INVALID_TARGET``: see ``errors``). Raises ``ClientClosed`` after the client finished."""
        return await self.command(protocol.ATTACK, {"target": int(target)})

    async def command(self, type_: str, payload: dict) -> int:
        """Send (or queue while offline) an input that must reach the room; returns its seq."""
        if self._finished or self._closing:
            raise ClientClosed(self.close_code, "client closed")
        entry = _Input(self.next_seq(), type_, payload)
        if type_ == protocol.MOVE_TO:
            self.predictor.add(entry.seq, payload["x"], payload["y"], self.clock())
        ws = self._ws
        if self._online() and not self._want_joined:
            # Connected but never joined: send as is (the server answers NOT_JOINED); not kept.
            await ws.send_bytes(protocol.encode(type_, entry.seq, payload))
            return entry.seq
        self._enqueue(entry)
        if self._online():
            await self._write(ws, entry)
        return entry.seq

    def _enqueue(self, entry: _Input) -> None:
        if len(self.outbox) >= self.queue_limit:
            self.outbox.popleft()
            self.dropped += 1
        self.outbox.append(entry)

    async def _write(self, ws: aiohttp.ClientWebSocketResponse, entry: _Input) -> bool:
        try:
            await ws.send_bytes(protocol.encode(entry.type, entry.seq, entry.payload))
        except (ConnectionError, RuntimeError):
            return False  # the socket is going away: the entry stays queued, unsent
        entry.sent, entry.sent_at = True, self.clock()
        return True

    # ---- joining ---------------------------------------------------------------------------
    async def join(self, timeout: float = 30.0) -> dict:
        """Send ``join`` (with ``resume`` if we hold a seat token) and wait for ``welcome``;
        returns its payload and sends the queued commands. Connects first if needed. Raises
        ``protocol.ProtocolError`` (an error frame answered the join), ``ClientClosed`` or
        ``TimeoutError``."""
        for _ in range(MAX_FOLLOWS):
            if self._ws is None or self._ws.closed:
                await self.connect()
            try:
                welcome = await self._join(self._ws, self.next_seq(), timeout)
            except protocol.ProtocolError as exc:
                if exc.code != protocol.ERR_ELSEWHERE or not self.follow:
                    raise
                await self._go_where_the_ship_is(protocol.CLOSE_ELSEWHERE)  # then join there
                await self._ws.close()
                self._finished = False  # the refused socket's close ended nothing: we go on
                continue
            self._want_joined = True
            return welcome
        raise ClientClosed(protocol.CLOSE_ELSEWHERE, "the ship keeps being elsewhere")

    async def _join(self, ws: aiohttp.ClientWebSocketResponse, seq: int, timeout: float) -> dict:
        self._rejoining = True
        try:
            payload: dict[str, str] = {}
            if self.name:
                payload["name"] = self.name
            if self.seat:
                payload["resume"] = self.seat
            since = self.received
            await ws.send_bytes(protocol.encode(protocol.JOIN, seq, payload))
            welcome = await self._await_answer(ws, protocol.WELCOME, seq, since, timeout)
            self._joined_ws, self._joined_at = ws, self.clock()
            await self._flush(ws, welcome)
            return welcome
        finally:
            self._rejoining = False
            self._notify()

    async def _await_answer(self, ws, type_: str, seq: int, since: int, timeout: float) -> dict:
        found: list = []

        def answered(_: Any) -> bool:
            for index, t, s, payload in self.messages:
                if index < since or s != seq:
                    continue
                if t == type_:
                    found.append(payload)
                    return True
                if t == protocol.ERROR:
                    raise protocol.ProtocolError(payload.get("code", 0), payload.get("message", ""), s)
            if ws in self._ended or ws is not self._ws:
                raise ClientClosed(ws.close_code)
            return False

        await self._wait(answered, timeout, stop_on_finish=False)
        return found[0]

    async def _flush(self, ws: aiohttp.ClientWebSocketResponse, welcome: dict) -> None:
        """After a welcome on ``ws``: send the queue (see ``plan_resend``), including commands
        queued while it is being sent."""
        floor = welcome["ack"]
        entries, self._seq = plan_resend(list(self.outbox), floor, max(self._seq, floor + 1))
        self.outbox = collections.deque(entries)
        for entry in entries:
            entry.sent = False
        while True:
            unsent = [e for e in self.outbox if not e.sent]
            if not unsent:
                break
            for entry in unsent:
                if not await self._write(ws, entry):
                    raise ClientClosed(ws.close_code, "closed while sending the queue")
        # The room applies the resent orders from now on: predict from their new send times.
        self.predictor.replace(PendingInput(e.seq, e.payload["x"], e.payload["y"], e.sent_at)
                               for e in self.outbox if e.type == protocol.MOVE_TO)


__all__ = ["StarholdClient", "ClientClosed", "StarholdHTTPError", "NO_RECONNECT", "QUEUE_LIMIT",
           "create_game", "guest_token", "plan_resend", "system_path", "game_path"]

"""The receiving half of ``StarholdClient`` (``client.connection``): the read loop, welcomes,
frames and acks, closes and the reconnection loop, and waiting for a state of the client.

``Receiver`` is a mixin of ``StarholdClient``: it uses the client's socket bookkeeping
(``_ws``, ``_joined_ws``, ``_tasks``), its state (``state``, ``predictor``, ``outbox``, ``welcome``...)
and its ``_open``/``_join``; see ``StarholdClient`` for the attributes' meaning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

import aiohttp

from .. import protocol
from .backoff import MIN_UPTIME
from ..rooms import protocol as game
from .http import ClientClosed

__all__ = ["NO_RECONNECT", "Receiver"]

if TYPE_CHECKING:
    from .connection import StarholdClient

log = logging.getLogger("starhold.client")

NO_RECONNECT = frozenset({
    protocol.CLOSE_MESSAGE_TOO_BIG, protocol.CLOSE_PROTOCOL_ERROR, protocol.CLOSE_UNAUTHORIZED,
    protocol.CLOSE_ROOM_FULL, protocol.CLOSE_UNKNOWN_ROOM, protocol.CLOSE_REPLACED, protocol.CLOSE_RATE_LIMITED,
})
"""Close codes from the server after which the client does not reconnect (docs/protocol.md §5):
a client bug (1009, 4000, 4029), no valid token (4001), a full game (4003), an unknown room
(4004), or the same player joined elsewhere (4009). Our own ``close()`` (1000, "I leave") never
reconnects either; a 1000 *from the server* is not a leave (the room held the seat), so it
reconnects like any other drop."""
QUICK_RETRY = frozenset({protocol.CLOSE_ROOM_UNAVAILABLE})
"""Close codes after which the first reconnection waits only a moment: 4503 comes from a room
that is back (a new activation after a crash or a node's loss that does not know the socket;
docs/protocol.md §5), so waiting the usual 1-5 s would only lengthen the player's gap."""
QUICK_RETRY_JITTER = 0.5
"""Seconds: the first reconnection after a ``QUICK_RETRY`` code waits uniformly up to this."""


class Receiver:
    """Receiving, reconnecting and waiting (see the module docstring)."""

    # ---- receiving -------------------------------------------------------------------------
    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    try:
                        type_, seq, payload = protocol.decode_server(msg.data)
                    except Exception:  # a broken server message: skip it
                        log.warning("undecodable server message (%d bytes)", len(msg.data))
                        continue
                    self._on_message(ws, type_, seq, payload)
        except Exception:  # noqa: BLE001 - a reader must always report the close
            log.exception("reader failed")
        finally:
            self._on_closed(ws, ws.close_code)

    def _on_message(self, ws, type_: str, seq: int, payload: Any) -> None:
        if ws is not self._ws:
            return  # a late message of a replaced socket
        if type_ == protocol.FRAME:
            self.frames += 1
            self.frame_arrivals.append(self.clock())
            if self.state.apply(payload):
                if payload.get("base") is None:
                    self._resync_pending = False
                self._acked(self.state.ack)
            elif not self._resync_pending:
                self._resync_pending = True
                task = asyncio.ensure_future(self._send_resync(ws))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif type_ == protocol.WELCOME:
            self._on_welcome(payload)
        elif type_ == protocol.ERROR:
            self.errors.append({**payload, "seq": seq})
        elif not self._on_economy_message(type_, payload):
            self._on_travel_message(type_, payload)
        self.messages.append((self.received, type_, seq, payload))
        self.received += 1
        self._notify()

    def _on_welcome(self, welcome: dict) -> None:
        self.welcome = welcome
        self.ship_id = welcome.get("ship")
        self.player = welcome.get("player", self.player)
        self.seat = welcome.get("seat", self.seat)
        self.system = welcome.get("system", self.system)
        self.game = welcome.get("session", self.game)
        if welcome.get("world_limit"):
            self.predictor.limit = float(welcome["world_limit"])
        self.state.ack = welcome.get("ack", self.state.ack)
        self._seq = max(self._seq, self.state.ack + 1)

    def _acked(self, ack: int) -> None:
        outbox = self.outbox
        while outbox and outbox[0].sent and outbox[0].seq <= ack:
            outbox.popleft()
        self.predictor.on_ack(ack)

    async def _send_resync(self, ws) -> None:
        if ws is not self._ws or ws.closed:
            return
        self.resyncs += 1
        try:
            await ws.send_bytes(protocol.encode(protocol.RESYNC, self.next_seq(), {}))
        except (ConnectionError, RuntimeError):
            pass

    def _on_closed(self, ws, code: int | None) -> None:
        self.close_codes.append(code)
        self.close_code = code
        if ws is not self._ws:
            self._notify()
            return
        was_joined = self._joined_ws is ws
        self._joined_ws = None
        self._resync_pending = False
        self._ended.add(ws)
        if self._reconnect_task is not None and not self._reconnect_task.done():
            pass  # a reconnection in progress deals with its own sockets
        elif was_joined and not self._closing and self._moves_on(code):
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(moved=code))
        elif was_joined and self.reconnect and not self._closing and code not in self.no_reconnect:
            if self.clock() - self._joined_at >= MIN_UPTIME:
                self.backoff.reset()
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(quick=code in QUICK_RETRY))
        else:  # never joined on it, a final close code, or we are leaving
            self._finished = True
        self._notify()

    async def _reconnect_loop(self, moved: int | None = None, quick: bool = False) -> None:
        """Reopen and rejoin with ``resume`` until it works, a close says stop, or
        ``max_reconnect_attempts`` is reached. ``moved``: the close code that said the ship
        is elsewhere (``CLOSE_JUMPED``...): go there first (``client.travel``). ``quick``:
        the first attempt waits only up to ``QUICK_RETRY_JITTER`` s (the room is back)."""
        attempts = 0
        if moved is not None:
            await self._go_where_the_ship_is(moved)
            self.backoff.reset()
        while not self._closing:
            if self.max_reconnect_attempts is not None and attempts >= self.max_reconnect_attempts:
                break
            attempts += 1
            if attempts == 1 and moved is not None:
                delay = 0.0
            elif attempts == 1 and quick:
                delay = self.backoff.rng.random() * QUICK_RETRY_JITTER
            else:
                delay = self.backoff.next_delay()
            log.info("reconnecting to %s in %.2f s (attempt %d)", self.path, delay, attempts)
            await self._sleep(delay)
            if self._closing:
                return
            try:
                ws = await self._open()
                # The join's seq is the last ack seen: a fresh seat acknowledges nothing new.
                await self._join(ws, self.state.ack, self.join_timeout)
            except ClientClosed as exc:
                if exc.code in self.no_reconnect:
                    break
            except protocol.ProtocolError as exc:
                self.errors.append({"code": exc.code, "message": str(exc), "seq": exc.seq})
                if exc.code == game.ERR_ELSEWHERE and self.follow:
                    await self._go_where_the_ship_is(game.CLOSE_ELSEWHERE)
                    attempts = 0
                    self.backoff.reset()
                elif exc.code in (protocol.ERR_UNAUTHORIZED, protocol.ERR_ROOM_FULL, protocol.ERR_UNKNOWN_ROOM):
                    break
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                log.info("reconnect attempt %d failed: %r", attempts, exc)
            else:
                self.reconnects += 1
                self._reconnect_task = None
                self._notify()
                return
            ws = self._ws
            if ws is not None and not ws.closed:
                await ws.close()
        self._finished = True
        self._reconnect_task = None
        self._notify()

    # ---- waiting ---------------------------------------------------------------------------
    def _notify(self) -> None:
        fut, self._changed = self._changed, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _changed_future(self) -> asyncio.Future:
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    async def _wait(self, predicate: Callable[["StarholdClient"], bool], timeout: float | None,
                    stop_on_finish: bool = True) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if stop_on_finish and self._finished:
                    raise ClientClosed(self.close_code)
                # Shielded: the future is shared by every waiter, and a waiter that is cancelled
                # (its own timeout) must not cancel it under the others.
                await asyncio.shield(self._changed_future())

    async def wait_for(self, predicate: Callable[["StarholdClient"], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every message and connection
        change). Raises ``TimeoutError``, or ``ClientClosed`` once the client has finished
        (closed for good: reconnections are waited through)."""
        await self._wait(predicate, timeout)

    async def next_message(self, type_: str | None = None, timeout: float = 10.0, after_seq: int | None = None,
                           since: int | None = None) -> tuple:
        """The next message (of ``type_`` if given) received from now on, or since the
        ``since``-th message (``self.received`` read before sending): ``(type, seq, payload)``.
        An error frame answering ``after_seq`` while waiting for another type raises
        ``ProtocolError``; ``TimeoutError`` after ``timeout`` seconds."""
        start = self.received if since is None else since
        found: list = []

        def match(_: Any) -> bool:
            for index, t, seq, payload in self.messages:
                if index < start:
                    continue
                if t == protocol.ERROR and after_seq is not None and seq == after_seq and type_ != protocol.ERROR:
                    raise protocol.ProtocolError(payload.get("code", 0), payload.get("message", ""), seq)
                if type_ is None or t == type_:
                    found.append((t, seq, payload))
                    return True
            return False

        await self.wait_for(match, timeout)
        return found[0]


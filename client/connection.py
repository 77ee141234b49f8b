"""The Python client: connect, join, send, receive (docs/protocol.md).

Used by bots, load tests and pytest::

    async with StarholdClient("http://127.0.0.1:8000", "Sol", name="Ada") as client:
        welcome = await client.join()
        seq = await client.move_to(100.0, 0.0)
        await client.wait_for(lambda c: c.ack >= seq)
        print(client.ships[client.ship_id])
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from typing import Any, Callable
from urllib.parse import quote

import aiohttp

from .. import protocol


class ClientClosed(ConnectionError):
    """The socket closed; ``code`` is the WebSocket close code (None if unknown)."""

    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class StarholdClient:
    """One WebSocket to one system on a Starhold gateway.

    ``base_url`` is the gateway's HTTP URL (``http://127.0.0.1:8000``); ``system`` an id or a
    name. State kept from received messages: ``ship_id``, ``player`` (the key to rejoin with),
    ``system`` (welcome ``system`` dict), ``tick``, ``time`` (game seconds), ``ack``, ``ships``
    (id -> ``[id, x, y, flags, name]`` of the latest frame), ``errors`` (error payloads),
    ``frames`` (count), ``close_code``.
    """

    def __init__(self, base_url: str, system: str, *, player: str | None = None, name: str | None = None,
                 session: aiohttp.ClientSession | None = None):
        self.url = base_url.rstrip("/").replace("http", "ws", 1) + f"/api/systems/{quote(system)}/ws"
        self.player = player
        self.name = name
        self._session = session
        self._own_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None
        self._seq = itertools.count(1)
        self._changed = asyncio.Condition()
        self.messages: collections.deque = collections.deque(maxlen=1024)
        self.received = 0
        self.ship_id: int | None = None
        self.system: dict | None = None
        self.tick = 0
        self.time = 0.0
        self.ack = 0
        self.ships: dict[int, list] = {}
        self.errors: list[dict] = []
        self.frames = 0
        self.close_code: int | None = None
        self.frame_arrivals: collections.deque = collections.deque(maxlen=256)

    async def __aenter__(self) -> "StarholdClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def connect(self) -> None:
        """Open the WebSocket (no join yet)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url, autoping=True, heartbeat=None, max_msg_size=0)
        self._reader = asyncio.create_task(self._read_loop())

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ---- sending ---------------------------------------------------------------------------
    def next_seq(self) -> int:
        return next(self._seq)

    async def send(self, type_: str, payload: dict, seq: int | None = None) -> int:
        """Send one envelope; returns its seq. Raises ``ClientClosed`` if the socket is closed."""
        if self.closed:
            raise ClientClosed(self.close_code)
        seq = self.next_seq() if seq is None else seq
        await self._ws.send_bytes(protocol.encode(type_, seq, payload))
        return seq

    async def send_raw(self, data: bytes | str) -> None:
        """Send raw bytes (or a text frame): for tests of bad input."""
        if isinstance(data, str):
            await self._ws.send_str(data)
        else:
            await self._ws.send_bytes(data)

    async def join(self, timeout: float = 30.0) -> dict:
        """Send ``join`` and wait for ``welcome``; returns its payload. Raises ``ClientClosed``
        or ``asyncio.TimeoutError``."""
        payload = {k: v for k, v in (("player", self.player), ("name", self.name)) if v}
        since = self.received
        seq = await self.send(protocol.JOIN, payload)
        _, _, welcome = await self.next_message(protocol.WELCOME, timeout=timeout, after_seq=seq, since=since)
        return welcome

    async def move_to(self, x: float, y: float) -> int:
        """Order our ship to fly to ``(x, y)`` world units; returns the input's seq."""
        return await self.send(protocol.MOVE_TO, {"x": float(x), "y": float(y)})

    # ---- receiving -------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                type_, seq, payload = protocol.decode_server(msg.data)
                self._apply(type_, seq, payload)
                async with self._changed:
                    self.messages.append((self.received, type_, seq, payload))
                    self.received += 1
                    self._changed.notify_all()
        finally:
            self.close_code = self._ws.close_code
            async with self._changed:
                self._changed.notify_all()

    def _apply(self, type_: str, seq: int, payload: dict) -> None:
        if type_ == protocol.FRAME:
            self.frames += 1
            self.frame_arrivals.append(time.monotonic())
            self.tick, self.time, self.ack = payload["tick"], payload["time"], payload["ack"]
            self.ships = {row[0]: row for row in payload["ships"]}
        elif type_ == protocol.WELCOME:
            self.ship_id, self.player, self.system = payload["ship"], payload["player"], payload["system"]
            self.tick, self.time = payload["tick"], payload["time"]
            self.ships = {row[0]: row for row in payload["ships"]}
        elif type_ == protocol.ERROR:
            self.errors.append({**payload, "seq": seq})

    async def wait_for(self, predicate: Callable[["StarholdClient"], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every message). Raises
        ``asyncio.TimeoutError``, or ``ClientClosed`` if the socket closes first."""
        async def wait() -> None:
            async with self._changed:
                while not predicate(self):
                    if self._reader is None or self._reader.done():
                        raise ClientClosed(self.close_code)
                    await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def next_message(self, type_: str | None = None, timeout: float = 10.0, after_seq: int | None = None,
                           since: int | None = None) -> tuple:
        """The next message (of ``type_`` if given) received from now on, or since the
        ``since``-th message (``self.received`` read before sending): ``(type, seq, payload)``.
        An error frame answering ``after_seq`` while waiting for another type raises
        ``ProtocolError``; ``asyncio.TimeoutError`` after ``timeout`` seconds."""
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

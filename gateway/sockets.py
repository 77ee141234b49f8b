"""WebSocket termination: one ``ClientSocket`` per player socket (DESIGN §6).

The gateway validates every message with ``starhold.protocol`` before anything reaches a
room: malformed or invalid input gets an error frame (and, after
``MAX_CONSECUTIVE_ERRORS`` rejected messages in a row, a 4000 close), oversized frames a
1009 close (aiohttp's ``max_msg_size``), pings a pong without involving the room. Outgoing
bytes go through a bounded queue drained by a writer task; a client that falls
``SEND_QUEUE_LIMIT`` messages behind is closed with 4008 rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .. import protocol

if TYPE_CHECKING:
    from .app import Gateway
    from .room_link import RoomLink

log = logging.getLogger("starhold.gateway")

HEARTBEAT = 20.0
"""Seconds between WebSocket pings from the server; a client that misses a pong is dropped."""
_ids = itertools.count(1)


class ClientSocket:
    """One player's WebSocket on this gateway, joined to at most one room."""

    def __init__(self, gateway: "Gateway", ws: web.WebSocketResponse, kind: str, room_id: str):
        self.gateway = gateway
        self.ws = ws
        self.kind = kind
        self.room_id = room_id
        self.conn_id = f"{gateway.gateway_id}:{next(_ids)}"
        self.connected = False  # the room has applied our connect event
        self.joined = False  # we sent a connect event
        self.link: RoomLink | None = None
        self._errors = 0
        self._queue: asyncio.Queue[bytes | tuple] = asyncio.Queue(maxsize=protocol.SEND_QUEUE_LIMIT)
        self._writer = asyncio.create_task(self._write_loop())
        self.close_code: int | None = None

    # ---- outgoing --------------------------------------------------------------------------
    def deliver(self, data: bytes) -> None:
        """Queue bytes for the client; closes a client that has fallen too far behind."""
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.close_soon(protocol.CLOSE_SLOW_CONSUMER, "too far behind")

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what is already queued has been sent."""
        if self.close_code is None:
            self.close_code = code
            while True:  # make room for the close marker
                try:
                    self._queue.put_nowait(("close", code, reason))
                    break
                except asyncio.QueueFull:
                    self._queue.get_nowait()

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, tuple):
                    await self.ws.close(code=item[1], message=item[2].encode()[:120])
                    return
                self.gateway.stats["messages_out"] += 1
                self.gateway.stats["bytes_out"] += len(item)
                await self.ws.send_bytes(item)
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the read loop ends too

    def _error(self, code: int, message: str, seq: int = 0) -> None:
        self._errors += 1
        self.gateway.stats["errors_sent"] += 1
        self.deliver(protocol.error_frame(code, message, seq))
        if self._errors >= protocol.MAX_CONSECUTIVE_ERRORS:
            self.close_soon(protocol.CLOSE_PROTOCOL_ERROR, "too many invalid messages")

    # ---- incoming --------------------------------------------------------------------------
    def receive(self, data: bytes | str) -> None:
        """Validate one client message and route it."""
        self.gateway.stats["messages_in"] += 1
        if isinstance(data, str):
            return self._error(protocol.ERR_MALFORMED, "text frames are not accepted; send binary msgpack")
        try:
            msg = protocol.parse_client_message(data)
        except protocol.ProtocolError as exc:
            return self._error(exc.code, str(exc), exc.seq)
        if msg.type == protocol.PING:
            self._errors = 0
            return self.deliver(protocol.encode(protocol.PONG, msg.seq, {"time": time.time()}))
        if msg.type == protocol.JOIN:
            if self.joined:
                return self._error(protocol.ERR_ALREADY_JOINED, "already joined", msg.seq)
            self._errors = 0
            self.joined = True
            self.link = self.gateway.link(self.kind, self.room_id)
            self.link.attach(self)
            self.link.submit(("connect", self.conn_id, {"payload": msg.payload, "seq": msg.seq}))
            return
        if not self.joined or self.link is None:
            return self._error(protocol.ERR_NOT_JOINED, "send join first", msg.seq)
        self._errors = 0
        self.link.submit(("message", self.conn_id, msg))

    async def run(self) -> None:
        """Read until the socket closes, then tell the room."""
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    self.receive(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self.receive(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
                if self.close_code is not None:
                    break
        finally:
            code = self.ws.close_code or self.close_code or protocol.CLOSE_NORMAL
            if self.link is not None:
                self.link.detach(self.conn_id, code, "closed")
            if self.close_code is not None:
                try:  # let the writer flush the error frame and the close
                    await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
                except (asyncio.TimeoutError, Exception):
                    pass
            self._writer.cancel()
            if not self.ws.closed:
                await self.ws.close()

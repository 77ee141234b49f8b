"""A bare protocol client for gateway tests: raw aiohttp WebSockets, no reconnection, no
state, so tests see exactly what the server sends (``starhold.client`` is tested on its own)."""

from __future__ import annotations

import asyncio

import aiohttp

from starhold.rooms import protocol as P


async def guest_token(session: aiohttp.ClientSession, url: str, name: str = "Tester") -> str:
    async with session.post(url + "/api/auth/guest", json={"name": name}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]


class Wire:
    """One WebSocket: ``send(type, seq, payload)``, ``recv(type)`` (skips other types),
    ``close_code()`` (waits for the server's close)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.seen: list[tuple] = []

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: str, path: str, token: str | None) -> "Wire":
        query = f"?token={token}" if token else ""
        return cls(await session.ws_connect(url.replace("http", "ws", 1) + path + query))

    async def send(self, type_: str, seq: int, payload: dict | None = None) -> None:
        await self.ws.send_bytes(P.encode(type_, seq, payload or {}))

    async def recv(self, type_: str | None = None, timeout: float = 5.0, where=None) -> tuple:
        async def one():
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    raise ConnectionError(f"socket closed ({self.ws.close_code}): {msg}")
                decoded = P.decode_server(msg.data)
                self.seen.append(decoded)
                if (type_ is None or decoded[0] == type_) and (where is None or where(decoded[2])):
                    return decoded

        return await asyncio.wait_for(one(), timeout)

    async def join(self, seq: int = 1, timeout: float = 5.0, **payload) -> tuple[dict, dict]:
        """Join (waiting up to ``timeout`` s for the welcome); returns (welcome payload,
        keyframe payload)."""
        await self.send(P.JOIN, seq, payload)
        welcome = (await self.recv(P.WELCOME, timeout=timeout))[2]
        keyframe = (await self.recv(P.FRAME, timeout=timeout))[2]
        assert keyframe["base"] is None
        return welcome, keyframe

    async def close_code(self, timeout: float = 5.0) -> int | None:
        async def wait():
            while True:
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    return msg.data  # the code in the server's close frame
                if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.seen.append(P.decode_server(msg.data))

        return await asyncio.wait_for(wait(), timeout)

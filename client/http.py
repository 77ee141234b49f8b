"""The client's HTTP side: server URLs, guest tokens, game creation, and the errors the client
raises (``ClientClosed`` for a socket closed for good, ``StarholdHTTPError`` for an HTTP
answer that is not 2xx)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import quote

import aiohttp

__all__ = ["ClientClosed", "create_game", "DEFAULT_GUEST_NAME", "game_path", "guest_token",
           "http_base", "StarholdHTTPError", "system_path", "ws_base"]

DEFAULT_GUEST_NAME = "guest"


class ClientClosed(ConnectionError):
    """The connection is closed for good (or was never joined); ``code`` is the last WebSocket
    close code (None if unknown)."""

    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class StarholdHTTPError(RuntimeError):
    """An HTTP API call failed: ``status`` and the JSON ``body`` (``{"error": ...}``)."""

    def __init__(self, status: int, body: Any):
        message = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def http_base(base_url: str) -> str:
    """``base_url`` without a trailing slash, ``ws(s)://`` turned into ``http(s)://``."""
    base = base_url.rstrip("/")
    return "http" + base[2:] if base.startswith("ws") else base


def ws_base(base_url: str) -> str:
    """``base_url`` with ``http(s)://`` turned into ``ws(s)://``."""
    base = http_base(base_url)
    return "ws" + base[4:] if base.startswith("http") else base


def system_path(system: str) -> str:
    """The WebSocket path of a solar system (id, name or alias)."""
    return f"/api/systems/{quote(system, safe='')}/ws"


def game_path(game_id: str) -> str:
    """The WebSocket path of a game session."""
    return f"/api/game/{quote(game_id, safe='')}/ws"


async def _post_json(session: aiohttp.ClientSession, url: str, body: dict, token: str | None = None,
                     ok: tuple[int, ...] = (200, 201)) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with session.post(url, json=body, headers=headers) as resp:
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = {"error": (await resp.text())[:200]}
        if resp.status not in ok:
            raise StarholdHTTPError(resp.status, data)
        return data


async def _with_session(session: aiohttp.ClientSession | None, call: Callable[[aiohttp.ClientSession], Awaitable]):
    if session is not None:
        return await call(session)
    async with aiohttp.ClientSession() as own:
        return await call(own)


async def guest_token(base_url: str, name: str = DEFAULT_GUEST_NAME, *,
                      session: aiohttp.ClientSession | None = None) -> dict:
    """``POST /api/auth/guest``: ``{"token", "expires", "player", "name", "kind"}``. Raises
    ``StarholdHTTPError``."""
    url = http_base(base_url) + "/api/auth/guest"
    return await _with_session(session, lambda s: _post_json(s, url, {"name": name}))


async def create_game(base_url: str, token: str, seed: int | None = None, max_players: int | None = None, *,
                      session: aiohttp.ClientSession | None = None) -> dict:
    """``POST /api/game/new``: a new game session, ``{"id", "seed", "max_players", "ws",
    "state"}``; join it with ``StarholdClient.for_game(base_url, answer["id"])``. Raises
    ``StarholdHTTPError``."""
    body: dict[str, int] = {}
    if seed is not None:
        body["seed"] = int(seed)
    if max_players is not None:
        body["max_players"] = int(max_players)
    url = http_base(base_url) + "/api/game/new"
    return await _with_session(session, lambda s: _post_json(s, url, body, token=token))

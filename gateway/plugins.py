"""Mounting the HTTP routes of room kinds (``starhold.http.define_routes``) on a gateway.

Each registered route function gets a ``PluginAPI``, the gateway's side of
``starhold.http.GatewayAPI``: a narrow view of one ``Gateway`` (reach rooms, verify and issue
tokens, serve sockets, declare ids and params of kinds, background contexts), never the
``Gateway`` itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..http import GatewayAPI, Identity, route_plugins
from ..room import HttpRequest, HttpResponse
from .auth import token_answer

if TYPE_CHECKING:
    from .app import Gateway

_SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PluginAPI(GatewayAPI):
    """``starhold.http.GatewayAPI`` over one ``Gateway`` (see there for each method)."""

    def __init__(self, gateway: "Gateway", app: web.Application):
        self._gateway = gateway
        self._app = app
        self.gateway_id = gateway.gateway_id
        self.data_dir = Path(gateway.data_dir)
        self.options: Mapping[str, Any] = gateway.options

    def room_ids(self, kind: str, resolve: Callable[[str], str | None]) -> None:
        self._gateway.resolvers[kind] = resolve

    def room_params(self, kind: str, params: Callable[[str], dict]) -> None:
        self._gateway.params[kind] = params

    def add_cleanup_ctx(self, ctx: Callable[[], AsyncIterator[None]]) -> None:
        async def run(app: web.Application):
            async with contextlib.asynccontextmanager(ctx)():
                yield

        self._app.cleanup_ctx.append(run)

    def identity(self, request: web.Request) -> Identity:
        return self._gateway.identity(request)

    def issue_token(self, player: str, name: str, kind: str = "user") -> dict:
        return token_answer(self._gateway.tokens, player, name, kind)

    def shared_secret(self, name: str) -> bytes:
        if not isinstance(name, str) or not _SECRET_NAME.fullmatch(name):
            raise ValueError(f"secret name {name!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        return self._gateway.shared_secret(name)

    async def call_room(self, kind: str, room_id: str, request: HttpRequest, *,
                        wake: bool = True) -> HttpResponse | None:
        return await self._gateway.call_room(kind, room_id, request, wake=wake)

    async def forward(self, request: web.Request, kind: str, room_id: str, path: str) -> web.Response:
        return await self._gateway.forward(request, kind, room_id, path)

    async def serve_socket(self, request: web.Request, kind: str, room_id: str | None,
                           unknown: str = "unknown room") -> web.WebSocketResponse:
        return await self._gateway.serve_socket(request, kind, room_id, unknown)

    async def is_active(self, kind: str, room_id: str) -> bool:
        return await self._gateway.directory.is_active(kind, room_id)

    def players(self, kind: str) -> dict[str, int]:
        return self._gateway.players(kind)


def mount_route_plugins(app: web.Application, gateway: "Gateway") -> None:
    """Call every registered route function with a ``PluginAPI`` and add the route
    definitions it returns to ``app``'s router."""
    for routes in route_plugins():
        app.router.add_routes(list(routes(PluginAPI(gateway, app))))

"""HTTP routes of room kinds: the gateway's plugin API (docs/rooms.md, "HTTP routes").

A module of room kinds (what ``starhold serve --rooms`` names, or the ``starhold.rooms`` entry
point) declares the HTTP routes of its kinds with ``define_routes``, next to its
``define_room`` calls (PartyServer's ``onRequest``, Colyseus's express ``app``)::

    from starhold import define_routes

    @define_routes
    def routes(api):
        from aiohttp import web   # imported when a gateway mounts the routes, not by room hosts

        async def count(request):
            answer = await api.call_room("counter", request.match_info["id"], HttpRequest("GET", "count"))
            return web.json_response(answer.body, status=answer.status)

        return [web.get("/api/counters/{id}", count)]

Every gateway calls each registered function once when it builds its application, with a
``GatewayAPI``, and mounts the aiohttp route definitions it returns (``web.get(...)``,
``web.RouteTableDef``...). The function runs on the gateway's event loop: it must not block;
loading data belongs in a context registered with ``api.add_cleanup_ctx`` (run at startup,
before the gateway accepts a request, and closed at shutdown; blocking work in it goes to a
thread). The gateway itself owns only the framework's routes: ``/rooms/{kind}/{id}/ws`` (any
hosted kind), ``/api/auth/guest``, ``/api/auth/me``, ``/api/rooms``, ``/metrics``,
``/healthz`` and the static web client.

This module imports neither aiohttp nor the gateway: room hosts import the modules of room
kinds, and with them this one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .errors import RoomUnavailable  # one class: a gateway's call_room and a room's rooms.call raise it
from .room import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["AuthError", "GatewayAPI", "HttpError", "Identity", "RETRY_AFTER", "RoomUnavailable", "RoutesFunction",
           "check_display_name", "define_routes", "read_json", "route_plugins"]

NAME_MAX = 32
"""Longest display name (a token's ``name``), characters."""


class AuthError(Exception):
    """A token was missing or refused. ``status`` (401) and ``message`` (safe to show)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.message = message
        self.status = status


RETRY_AFTER = 5
"""Seconds of the ``Retry-After`` header of a 503 answered because a room cannot be reached
or woken (its snapshot store is unreachable, or it keeps going away): the gateway's routes
(``GatewayAPI.forward``) and the game's (``/api/auth/register|login``...) use it."""


class HttpError(Exception):
    """An HTTP error to answer as JSON ``{"error": message}`` with ``status`` and extra
    ``headers`` (e.g. ``Retry-After``)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = dict(headers or {})

    @classmethod
    def unavailable(cls, message: str) -> "HttpError":
        """A 503 with ``Retry-After: RETRY_AFTER``: what to answer for ``RoomUnavailable``."""
        return cls(503, message, {"Retry-After": str(RETRY_AFTER)})


@dataclass(frozen=True)
class Identity:
    """Who a valid token speaks for: ``player`` id, display ``name``, ``kind`` (``"user"`` |
    ``"guest"``) and ``expires`` (the token's ``exp``, Unix seconds)."""

    player: str
    name: str
    kind: str
    expires: float

    def to_json(self) -> dict:
        return asdict(self)


def check_display_name(value: Any, field: str = "name") -> str:
    """A display name: a str of 1-``NAME_MAX`` (32) printable characters once surrounding
    whitespace is stripped. Returns the stripped name; raises ``ValueError`` with a message
    safe to show. The gateway's guest tokens and the game's accounts obey this one rule."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX or not name.isprintable():
        raise ValueError(f"{field} must be 1-{NAME_MAX} printable characters")
    return name


async def read_json(request: "web.Request", limit: int) -> dict:
    """The body of an aiohttp ``request`` as a JSON object. Raises ``HttpError`` 413 beyond
    ``limit`` bytes (read no further) and 400 when it is not a JSON object."""
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, f"body larger than {limit} bytes")
    data = bytearray()
    while chunk := await request.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            raise HttpError(413, f"body larger than {limit} bytes")
    try:
        body = json.loads(bytes(data))
    except ValueError:
        raise HttpError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HttpError(400, "body must be a JSON object")
    return body


class GatewayAPI(Protocol):
    """What a gateway offers the route functions of room kinds. One per gateway application;
    the route handlers keep it (a closure) and use it on the gateway's event loop."""

    gateway_id: str
    """This gateway process's id (``gw-`` + 8 hex)."""
    data_dir: Path
    """The directory of the gateway's shared key files (``shared_secret``)."""
    options: Mapping[str, Any]
    """Options of the room kinds' routes, as given to ``create_app(options=...)`` (``starhold
    serve`` passes its game settings: ``session_key``, ``games_per_hour``, ``live_games``,
    ``login_account_failures``, ``login_address_failures``)."""

    def room_ids(self, kind: str, resolve: Callable[[str], str | None]) -> None:
        """Declare which ids of ``kind`` exist: ``resolve(id_from_url)`` returns the room's id
        (canonical form) or None for an unknown room. The generic ``/rooms/{kind}/{id}/ws``
        route refuses unknown rooms (close 4004) without waking anything; ``serve_socket`` and
        ``call_room`` trust their caller. Without a resolver every valid id exists."""

    def room_params(self, kind: str, params: Callable[[str], dict]) -> None:
        """Declare the params of the rooms of ``kind``: ``params(room_id)`` (plain data) is
        given to a room of that kind when this gateway wakes it. Default: ``{}``."""

    def add_cleanup_ctx(self, ctx: Callable[[], AsyncIterator[None]]) -> None:
        """Run ``ctx()`` (an async generator function) as an aiohttp ``cleanup_ctx``: up to
        its ``yield`` at startup, before the gateway serves a request; the rest at cleanup."""

    def identity(self, request: "web.Request") -> Identity:
        """The verified identity of a request's bearer token (``Authorization: Bearer`` or the
        ``token`` query parameter). Raises ``AuthError`` (missing, malformed, expired...)."""

    def issue_token(self, player: str, name: str, kind: str = "user") -> dict:
        """A signed token for ``player``: ``{"token", "expires", "player", "name", "kind"}``
        (``kind``: ``"user"`` or ``"guest"``; ``expires`` in Unix seconds)."""

    def shared_secret(self, name: str) -> bytes:
        """A 32-byte secret shared by every gateway, created on first use: with S3 snapshots
        in the snapshot bucket (``<prefix>_cluster/<name>.json``, every gateway of the cluster),
        else on the data directory (``<data_dir>/auth/<name>.json``, mode 0600). Blocking on
        its first use in a gateway (call it when the routes are built). ``name``:
        ``[A-Za-z0-9_.-]``; raises ``ValueError`` otherwise."""

    async def call_room(self, kind: str, room_id: str, request: HttpRequest, *,
                        wake: bool = True) -> HttpResponse | None:
        """Send ``request`` to the room's ``on_request`` and return its answer. ``wake=False``
        asks only a live activation and returns None when the room sleeps. Raises
        ``RoomUnavailable`` when the room keeps going away or cannot wake because its snapshot
        store is unreachable (answer 503 with ``Retry-After``: ``HttpError.unavailable``; for
        ``RETRY_AFTER`` seconds after such a failure the gateway answers at once, without
        trying to wake the room again), ``KeyError`` for a kind no module registered and
        ``ValueError`` for an invalid id. Whatever else the room raised (``on_start`` or
        ``on_request`` failing) propagates."""

    async def forward(self, request: "web.Request", kind: str, room_id: str, path: str) -> "web.Response":
        """Forward an aiohttp ``request`` to the room as ``HttpRequest(method, path, query
        without "token", body)`` and answer its response as JSON. Only a request with a valid
        token wakes a sleeping room (an invalid one gets 401), unless the kind declares
        ``wake_on_http``; otherwise a sleeping room answers 401. 503 with ``Retry-After`` when
        it keeps going away or cannot wake (see ``call_room``)."""

    async def serve_socket(self, request: "web.Request", kind: str, room_id: str | None,
                           unknown: str = "unknown room") -> "web.WebSocketResponse":
        """Serve the request's WebSocket for the room ``(kind, room_id)`` until it closes
        (docs/protocol.md §2-5): token checked (4001), limits, batching. ``room_id=None``
        refuses it with an error frame and 4004, saying ``unknown``."""

    async def is_active(self, kind: str, room_id: str) -> bool:
        """Whether the room has a live activation (asks the directory; wakes nothing)."""

    def players(self, kind: str) -> dict[str, int]:
        """Joined sockets on this gateway per room of ``kind``: room id -> count."""


RoutesFunction = Callable[[GatewayAPI], Iterable[Any]]
"""``routes(api) -> aiohttp route definitions``."""

F = TypeVar("F", bound=RoutesFunction)

_PLUGINS: dict[str, RoutesFunction] = {}


def define_routes(fn: F) -> F:
    """Register ``fn(api: GatewayAPI) -> iterable of aiohttp route definitions`` and return it
    unchanged (a decorator). Every gateway of this process calls it when it builds its
    application (``starhold.gateway.app.create_app``). Registering the same function again (by
    module and name) replaces it; ``ValueError`` if ``fn`` is not callable."""
    if not callable(fn):
        raise ValueError(f"define_routes expects a function, not {fn!r}")
    _PLUGINS[f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"] = fn
    return fn


def route_plugins() -> list[RoutesFunction]:
    """Every registered route function, in registration order."""
    return list(_PLUGINS.values())

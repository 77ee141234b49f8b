"""Accounts over HTTP (docs/protocol.md, "Accounts and tokens"): register and log in.

- ``POST /api/auth/register`` ``{"username", "password", "name"?}`` -> 201 with a token;
- ``POST /api/auth/login`` ``{"username", "password"}`` -> 200 with a token; failures are
  throttled per account and per address (``throttle.py``: 429 with ``Retry-After``).

Bodies are JSON objects of at most ``MAX_BODY`` bytes (413 beyond, 400 when malformed); every
answer is JSON, errors ``{"error": message}``; 503 with ``Retry-After`` (``starhold.http.
RETRY_AFTER`` seconds) while the accounts room cannot be reached or woken (e.g. its snapshot
store is down). Both are forwarded to the accounts room
(``room.py``: kind and id ``accounts``), which holds the scrypt hashes; the gateway signs the
token (``GatewayAPI.issue_token``). Guest tokens and ``/api/auth/me`` are the framework's.

Options (``GatewayAPI.options``): ``login_throttle`` (a ``LoginThrottle``) or
``login_account_failures`` / ``login_address_failures`` (ints, 0 = off).
"""

from __future__ import annotations

import json

from aiohttp import web

from starhold import HttpRequest, HttpResponse
from starhold.http import GatewayAPI, HttpError, RoomUnavailable, read_json

from .throttle import ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES, LoginThrottle, retry_after_header

KIND = ROOM_ID = "accounts"
MAX_BODY = 4096
"""Largest request body, bytes."""


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class AccountRoutes:
    """The routes above over one gateway's ``api``, with its login ``throttle``."""

    def __init__(self, api: GatewayAPI, throttle: LoginThrottle):
        self.api = api
        self.throttle = throttle

    async def _accounts(self, path: str, body: dict) -> HttpResponse:
        """POST ``body`` to the accounts room (waking it); ``HttpError`` 503 with
        ``Retry-After`` when it keeps going away or cannot wake (its snapshot store is
        unreachable)."""
        try:
            return await self.api.call_room(KIND, ROOM_ID, HttpRequest("POST", path, {}, json.dumps(body).encode()))
        except RoomUnavailable:
            raise HttpError.unavailable("accounts unavailable; retry later") from None

    def _token(self, response: HttpResponse, status: int) -> web.Response:
        answer = self.api.issue_token(response.body["player"], response.body["name"], "user")
        return web.json_response(answer, status=status, headers={"Cache-Control": "no-store"})

    async def register(self, request: web.Request) -> web.Response:
        response = await self._accounts("register", await read_json(request, MAX_BODY))
        if response.status != 201:
            return web.json_response(response.body, status=response.status)
        return self._token(response, 201)

    async def login(self, request: web.Request) -> web.Response:
        """Throttled per account and per address: 429 with ``Retry-After`` while locked out,
        before the password is checked."""
        body = await read_json(request, MAX_BODY)
        account, address = LoginThrottle.account_key(body.get("username")), request.remote or "?"
        wait = self.throttle.retry_after(account, address)
        if wait > 0:
            seconds = retry_after_header(wait)
            return _error(429, f"too many failed logins: retry in {seconds} s", **{"Retry-After": seconds})
        response = await self._accounts("login", body)
        if response.status == 401:
            self.throttle.failed(account, address)
        elif response.status == 200:
            self.throttle.succeeded(account, address)
        if response.status != 200:
            return web.json_response(response.body, status=response.status)
        return self._token(response, 200)


def _json_errors(handler):
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except HttpError as exc:
            return _error(exc.status, exc.message, **exc.headers)
    return wrapped


def account_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """The account routes over ``api`` (no WebSocket: the accounts room has no public ids)."""
    options = api.options
    throttle = options.get("login_throttle") or LoginThrottle(
        options.get("login_account_failures", ACCOUNT_FREE_FAILURES),
        options.get("login_address_failures", ADDRESS_FREE_FAILURES))
    routes = AccountRoutes(api, throttle)
    api.room_ids(KIND, lambda room_id: None)
    return [
        web.post("/api/auth/register", _json_errors(routes.register)),
        web.post("/api/auth/login", _json_errors(routes.login)),
    ]

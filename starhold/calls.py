"""Requests between rooms: ``self.rooms`` on every room (``Room.rooms``).

Durable Objects reach each other through stubs (``env.NS.get(id).fetch(...)``); Orleans grains
through grain references. A Starhold room has two ways, both addressed by ``(kind, id)`` and
both waking the other room if it sleeps (on any node):

- ``await self.rooms.call(kind, id, path, body)``: a request answered now, an
  ``HttpResponse`` from the other room's ``on_request``. The calling room's input gate stays
  closed while it waits (its other events wait too), so **a room that is called must never
  call back** (directly or through a third room): a cycle waits until ``timeout`` and raises
  ``RoomUnavailable``. Use it where the answer decides what the hook does (a join asking
  another room for a record). Not exactly-once: a call that timed out may have been applied;
  make the callee's paths idempotent.
- ``self.rooms.post(kind, id, path, body, key=...)``: a one-way request through the room's
  **transactional outbox**. It is written to the room's own database in the hook's
  transaction, so it exists if and only if the hook's writes commit; after the commit the
  runtime delivers it, in order per target room, outside the input gate (so posts never
  deadlock), retrying with backoff (``RETRY_FIRST`` s doubling to ``RETRY_MAX`` s) until the
  target answers with a status below 500. A room with undelivered posts does not hibernate,
  and an activation that starts (after a crash, on another node) delivers what the last one
  left. Delivery is at least once: the target sees ``request.key`` and must apply each key
  once (store the keys it applied, or make the effect idempotent). Outbox plus idempotent
  receiver is exactly-once in effect, the pattern cross-room operations (a ship's jump, a
  trade) are built on.

Both set ``request.sender`` to ``"<kind>/<id>"`` of the calling room; requests from gateways
have ``sender == ""``, so a room can refuse room-only paths to clients. Bodies are JSON
(``body`` is any JSON-serialisable value, ``None`` for none; read it with ``request.json()``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .room import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from ._runtime.runtime import RoomRuntime

__all__ = ["RoomCalls", "CALL_TIMEOUT", "RETRY_FIRST", "RETRY_MAX"]

CALL_TIMEOUT = 10.0
"""Default seconds a ``call`` waits (waking the other room included) before ``RoomUnavailable``."""
RETRY_FIRST = 0.05
"""Seconds before the first retry of a post (and of a call's attempt) that failed."""
RETRY_MAX = 5.0
"""Most seconds between two delivery attempts of a post."""
MAX_KEY_LENGTH = 200


def encode_body(body: Any) -> bytes:
    """``body`` as JSON bytes (``b""`` for None). Raises ``TypeError`` if not serialisable."""
    return b"" if body is None else json.dumps(body, separators=(",", ":")).encode()


class RoomCalls:
    """``self.rooms`` of one room (see the module docstring). Created by ``Room.rooms``."""

    def __init__(self, runtime: "RoomRuntime"):
        self._runtime = runtime

    def _check(self, kind: str, room_id: str) -> None:
        if not kind or not room_id:
            raise ValueError("kind and room id must be non-empty")
        if f"{kind}/{room_id}" == self._runtime.key:
            raise ValueError("a room cannot call or post to itself")

    async def call(self, kind: str, room_id: str, path: str, body: Any = None, *, method: str = "POST",
                   query: dict | None = None, timeout: float = CALL_TIMEOUT) -> HttpResponse:
        """Send ``HttpRequest(method, path, query, JSON body)`` to room ``(kind, room_id)``,
        waking it if needed, and return its ``HttpResponse``. ``timeout``: seconds in all.

        Raises ``starhold.RoomUnavailable`` when the room could not answer in time (its host
        is down, its ``on_start`` or ``on_request`` raised, or a call cycle), ``ValueError``
        for a call to itself or an invalid room id, ``KeyError`` for an unknown kind, ``TypeError`` for a body that
        is not JSON-serialisable."""
        self._check(kind, room_id)
        request = HttpRequest(method, path, dict(query or {}), encode_body(body), sender=self._runtime.key)
        return await self._runtime.call_room(kind, room_id, request, timeout)

    def post(self, kind: str, room_id: str, path: str, body: Any = None, *, key: str,
             method: str = "POST") -> None:
        """Queue a one-way request to room ``(kind, room_id)`` in this hook's transaction; it
        is delivered after the hook's writes commit, at least once, in order per target
        (see the module docstring). ``key``: the idempotency key the target sees as
        ``request.key`` (1-200 characters). Not async: nothing happens before the commit.

        Raises ``ValueError`` (empty or long key, a post to itself, or outside a hook),
        ``TypeError`` for a body that is not JSON-serialisable."""
        self._check(kind, room_id)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValueError(f"key must be 1-{MAX_KEY_LENGTH} characters")
        item = {"kind": kind, "id": room_id, "method": method, "path": path,
                "body": encode_body(body).decode(), "key": key}
        self._runtime.queue_post(item)

"""The pilot room's ledger paths: operations from systems and markets, and the pilot's own orders.

``Trading`` is the pilot room's part that owns its ``ledger.Ledger`` (docs/economy.md §2, §5):

- room-only POSTs (``request.sender`` set, keyed by ``request.key``; each key applied once):
  ``stow``, ``bounty`` and ``destroyed`` from a system (``system/<id>``), ``settle`` and
  ``closed`` from a market (``market/<region>``). ``stow`` posts ``unstow`` back to the sender
  with the surplus (key ``unstow:<key>``), ``destroyed`` posts ``wreck`` back with the goods
  lost (key ``wreck:<key>``). A duplicate key answers 200 ``{"applied": false}``.
- client paths (``request.sender == ""``): only the gateway's routes (``rooms/pilot/http.py``)
  reach them, after checking that the bearer token's player is this room's id. ``GET me``,
  ``POST order`` (posts ``place`` to ``market/<region>``, key = the order id) and ``POST
  cancel`` (posts ``cancel``, key ``cancel:<order>``). Orders and cancels share a token bucket
  per pilot (``ORDER_RATE`` per second, burst ``ORDER_BURST``, on the room's clock; in memory,
  so a restarted room starts full) -> 429 beyond it.

After a request that changed the credits, cargo or reserved units while the ship is checked
out, ``publish`` posts the ``ledger`` view to the system holding it (key
``ledger:<player>:<version>``). Errors answer ``{"error": message, "code": code}``.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

from starhold import HttpRequest, HttpResponse
from ..ships.room import GAME_EPOCH
from .ledger import OPEN, PREFIX, Ledger, LedgerError

ORDER_RATE = 10.0
"""Orders and cancels a pilot may send per second, sustained."""
ORDER_BURST = 20
"""Orders and cancels a pilot may send at once."""
TTL_DEFAULT = 7 * 24 * 3600
"""Seconds an order lives when the client gives no ``ttl``."""
TTL_MIN, TTL_MAX = 60, 30 * 24 * 3600
"""The range of an order's ``ttl``, seconds."""
REF_MAX = 64
"""Longest client reference ``ref``, characters."""
RECENT = 20
"""Finished orders ``GET me`` lists (the most recently finished)."""


def _error(exc: LedgerError) -> HttpResponse:
    return HttpResponse(exc.status, {"error": exc.message, "code": exc.code})


class TokenBucket:
    """``rate`` tokens per second up to ``burst``, full at first; ``take(now)`` -> 0.0 when a
    token was taken, else the seconds until one is there (nothing taken)."""

    def __init__(self, rate: float = ORDER_RATE, burst: int = ORDER_BURST):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.at = float(burst), None

    def take(self, now: float) -> float:
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0 - 1e-6:  # float clock times: 0.1 s after a take is a whole token
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.rate


def order_view(order: dict) -> dict:
    """An order as the client sees it: the stored fields but ``number``, with ``created``,
    ``expires`` and ``finished`` in game time (seconds since ``GAME_EPOCH``)."""
    view = {k: v for k, v in order.items() if k != "number"}
    for key in ("created", "expires", "finished"):
        if view[key] is not None:
            view[key] = view[key] - GAME_EPOCH
    return view


def _kind_id(sender: str, kind: str) -> str | None:
    k, _, room_id = sender.partition("/")
    return room_id if k == kind and room_id else None


class Trading:
    """The ledger paths of one pilot ``room`` (a ``PilotRoom``: its ``record``, ``clock``,
    ``rooms``, ``storage`` and ``name``)."""

    def __init__(self, room) -> None:
        self.room = room
        self.ledger: Ledger | None = None
        self.bucket = TokenBucket()

    async def load(self) -> None:
        """Load the ledger from storage (call in ``on_start``)."""
        self.ledger = Ledger.load(await self.room.storage.list(prefix=PREFIX), self.room.clock.now())

    def ensure(self) -> None:
        """Create the ledger (granting the starting credits) when the pilot has a record and
        no ledger yet: a new pilot, or one that flew before ledgers existed."""
        if self.ledger is None and self.room.record is not None:
            self.ledger = Ledger.create(self.room.clock.now())

    def take_writes(self) -> tuple[dict, list]:
        """The ledger's pending storage writes (``Ledger.take_writes``)."""
        return self.ledger.take_writes() if self.ledger is not None else ({}, [])

    def view(self) -> dict:
        """``{"player", "version", "credits", "cargo", "capacity", "reserved"}``: the body of
        a ``ledger`` post and the ``ledger`` of a checkout answer."""
        self.ensure()
        return {"player": self.room.name, **self.ledger.view()}

    def snapshot(self) -> tuple | None:
        """What a ``ledger`` post shows (credits, cargo, capacity, reserved), to compare."""
        if self.ledger is None:
            return None
        v = self.ledger.view()
        return v["credits"], v["cargo"], v["capacity"], v["reserved"]

    def publish(self, before: tuple | None) -> None:
        """Post the ``ledger`` view to the system holding the ship, if it is checked out and
        the view changed since ``before`` (a ``snapshot``)."""
        checkout = (self.room.record or {}).get("checkout")
        if checkout is None or self.ledger is None or self.snapshot() == before:
            return
        view = self.view()
        self.room.rooms.post("system", checkout["system"], "ledger", view,
                             key=f"ledger:{self.room.name}:{view['version']}")

    # ---- routing ----------------------------------------------------------------------------------
    def post_handler(self, path: str) -> Callable | None:
        """The handler of a room-only POST ``path``, or None."""
        return {"stow": self._stow, "bounty": self._bounty, "destroyed": self._destroyed,
                "settle": self._settle, "closed": self._closed}.get(path)

    def client_handler(self, method: str, path: str) -> Callable | None:
        """The handler of a client request (``sender == ""``), or None."""
        return {("GET", "me"): self._me, ("POST", "order"): self._order,
                ("POST", "cancel"): self._cancel}.get((method, path))

    def _operation(self, request: HttpRequest, kind: str, apply: Callable[[Ledger, str, str, float], HttpResponse]):
        sender_id = _kind_id(request.sender, kind)
        if sender_id is None:
            return HttpResponse(403, {"error": f"only a {kind} room sends this", "code": "forbidden"})
        if not request.key:
            return HttpResponse(400, {"error": "a keyed post is required", "code": "bad_key"})
        if self.room.record is None:
            return HttpResponse(404, {"error": "unknown player", "code": "no_pilot"})
        self.ensure()
        try:
            return apply(self.ledger, sender_id, f"{request.sender}|{request.key}", self.room.clock.now())
        except LedgerError as exc:
            return _error(exc)

    # ---- from systems -----------------------------------------------------------------------------
    def _stow(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{goods, source, from}`` -> 200 ``{applied, surplus}``; posts ``unstow`` back."""
        def apply(ledger: Ledger, system: str, key: str, now: float) -> HttpResponse:
            surplus = ledger.stow(key, body.get("goods"), body.get("source"), now)
            if surplus is None:
                return HttpResponse(200, {"applied": False})
            if surplus:
                self.room.rooms.post("system", system, "unstow", {"from": body.get("from"), "goods": surplus},
                                     key=f"unstow:{request.key}")
            return HttpResponse(200, {"applied": True, "surplus": surplus})
        return self._operation(request, "system", apply)

    def _bounty(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{credits, pirate}`` -> 200 ``{applied}``."""
        return self._operation(request, "system", lambda ledger, _, key, now: HttpResponse(
            200, {"applied": ledger.bounty(key, body.get("credits"), now)}))

    def _destroyed(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{wreck, x, y}`` -> 200 ``{applied, goods}``; posts ``wreck`` back with the goods."""
        def apply(ledger: Ledger, system: str, key: str, now: float) -> HttpResponse:
            lost = ledger.destroyed(key, now)
            if lost is None:
                return HttpResponse(200, {"applied": False})
            self.room.rooms.post("system", system, "wreck", {"wreck": body.get("wreck"), "goods": lost,
                                                             "x": body.get("x"), "y": body.get("y")},
                                 key=f"wreck:{request.key}")
            return HttpResponse(200, {"applied": True, "goods": lost})
        return self._operation(request, "system", apply)

    # ---- from markets -----------------------------------------------------------------------------
    def _settle(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{order, trade, side, good, price, quantity, fee, remaining, time}`` -> 200 ``{applied}``."""
        def apply(ledger: Ledger, market: str, key: str, now: float) -> HttpResponse:
            order = ledger.settle(key, market=market, order=body.get("order"), side=body.get("side"),
                                  good=body.get("good"), price=body.get("price"), quantity=body.get("quantity"),
                                  fee=body.get("fee", 0), now=now)
            return HttpResponse(200, {"applied": order is not None})
        return self._operation(request, "market", apply)

    def _closed(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{order, remaining, reason}`` -> 200 ``{applied}``."""
        def apply(ledger: Ledger, market: str, key: str, now: float) -> HttpResponse:
            order = ledger.closed(key, market=market, order=body.get("order"), remaining=body.get("remaining"),
                                  reason=body.get("reason"), now=now)
            return HttpResponse(200, {"applied": order is not None})
        return self._operation(request, "market", apply)

    # ---- the pilot's own (client) paths -----------------------------------------------------------
    def _client(self) -> HttpResponse | None:
        if self.room.record is None:
            return HttpResponse(404, {"error": "unknown player: fly first", "code": "no_pilot"})
        self.ensure()
        return None

    def _flood(self) -> HttpResponse | None:
        wait = self.bucket.take(self.room.clock.now())
        if wait > 0:
            return HttpResponse(429, {"error": f"too many orders: retry in {wait:.2f} s", "code": "flood",
                                      "retry_after": wait})
        return None

    def _me(self, request: HttpRequest, body: dict) -> HttpResponse:
        """-> 200 the pilot's ledger (see docs/protocol.md "Pilot HTTP: ledger and orders")."""
        refused = self._client()
        if refused:
            return refused
        rec, ledger = self.room.record, self.ledger
        finished = sorted((o for o in ledger.orders.values() if o["status"] != OPEN),
                          key=lambda o: (o["finished"], o["number"]), reverse=True)[:RECENT]
        orders = [order_view(o) for o in [*ledger.open_orders(), *finished]]
        return HttpResponse(200, {"player": self.room.name, "name": rec["name"], **ledger.view(),
                                  "free": ledger.free, "region": rec.get("region"), "system": rec.get("system"),
                                  "orders": orders, "totals": copy.deepcopy(ledger.totals)})

    def _order(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{market, good, side, kind, price, quantity, ttl, ref}`` -> 201 ``{order}`` (200
        for a ``ref`` placed before) and posts ``place`` to the market."""
        refused = self._client() or self._flood()
        if refused:
            return refused
        ttl, ref = body.get("ttl", TTL_DEFAULT), body.get("ref")
        if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= REF_MAX):
            return HttpResponse(400, {"error": f"ref must be a string of 1 to {REF_MAX} characters",
                                      "code": "bad_ref"})
        if ref is not None and (known := self.ledger.find_ref(ref)) is not None:
            return HttpResponse(200, {"order": order_view(known)})  # a retry: whatever the other fields
        if type(ttl) not in (int, float) or not math.isfinite(ttl) or not TTL_MIN <= ttl <= TTL_MAX:
            return HttpResponse(400, {"error": f"ttl must be {TTL_MIN} to {TTL_MAX} seconds", "code": "bad_ttl"})
        now = self.room.clock.now()
        try:
            order = self.ledger.place(market=body.get("market"), good=body.get("good"), side=body.get("side"),
                                      kind=body.get("kind", "limit"), price=body.get("price"),
                                      quantity=body.get("quantity"), expires=now + ttl, now=now,
                                      region=self.room.record.get("region"), ref=ref, owner=self.room.name)
        except LedgerError as exc:
            return _error(exc)
        self.room.rooms.post("market", order["market"], "place", {
            "order": order["id"], "owner": self.room.name, "good": order["good"], "side": order["side"],
            "kind": order["kind"], "price": order["price"], "quantity": order["quantity"],
            "expires": order["expires"]}, key=order["id"])
        return HttpResponse(201, {"order": order_view(order)})

    def _cancel(self, request: HttpRequest, body: dict) -> HttpResponse:
        """``{order}`` -> 202 ``{order}`` and posts ``cancel`` to its market (once)."""
        refused = self._client() or self._flood()
        if refused:
            return refused
        try:
            first = self.ledger.mark_cancelling(body.get("order"))
        except LedgerError as exc:
            return _error(exc)
        order = self.ledger.orders[body["order"]]
        if first:
            self.room.rooms.post("market", order["market"], "cancel", {"order": order["id"], "owner": self.room.name},
                                 key=f"cancel:{order['id']}")
        return HttpResponse(202, {"order": order_view(order)})

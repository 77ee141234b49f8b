"""Checking a ``place`` post (docs/economy.md §5-6) before it reaches the book.

``check(body, pilot, now, open_orders)`` returns ``(reason, None)`` for an order the market
rejects, or ``(None, (good, order))`` for one it accepts. Reasons (the ``rejected`` answer):

| reason | when |
|---|---|
| ``owner`` | ``owner`` is not the id of the pilot room that posted it |
| ``good`` | ``good`` is not one of ``RESOURCES`` |
| ``side`` / ``kind`` | not ``buy``/``sell`` / not ``limit``/``market`` |
| ``price`` | not an int in 1..``MAX_PRICE`` (a bool is not an int); missing for a limit order or a market buy (a market sell may omit it: no limit) |
| ``quantity`` | not an int in 1..``MAX_QUANTITY`` |
| ``expires`` | a limit order's ``expires`` is neither null nor a number (clock seconds) after now and at most ``MAX_TTL`` (+ ``TTL_SLACK``) ahead; a market order's is ignored |
| ``order`` | (checked by the room) the id is that of another pilot's resting order |
| ``open_orders`` | a limit order of a pilot that already has ``MAX_OPEN_ORDERS`` resting orders here |
"""

from __future__ import annotations

import math

from ..economy.resources import RESOURCES
from .book import BUY, LIMIT, MARKET, SELL, Order

MAX_PRICE = 1_000_000
"""Most credits per unit an order may name."""
MAX_QUANTITY = 10_000
"""Most units one order may trade."""
MAX_TTL = 30 * 86400
"""Longest life of a limit order, seconds (docs/economy.md §6: ttl 60 s to 30 days)."""
TTL_SLACK = 60.0
"""Seconds of clock difference between the pilot's room and the market tolerated on ``expires``."""
MAX_OPEN_ORDERS = 50
"""Resting orders one pilot may have on one market."""
MAX_ID_LENGTH = 128
"""Longest order id, characters."""


def valid_id(value) -> bool:
    """Whether ``value`` can be an order id: a str of 1 to ``MAX_ID_LENGTH`` characters."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _int_in(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def check(body: dict, pilot: str, now: float, open_orders: int) -> tuple[str | None, tuple[str, Order] | None]:
    """Check a ``place`` body (``{"order", "owner", "good", "side", "kind", "price",
    "quantity", "expires"}``, ``order`` already a valid id) posted by pilot ``pilot`` at clock
    time ``now``, whose pilot has ``open_orders`` resting orders here (see the module
    docstring). The accepted ``Order`` has ``expires`` None for a market order."""
    if body.get("owner") != pilot:
        return "owner", None
    good, side, kind, price = body.get("good"), body.get("side"), body.get("kind"), body.get("price")
    if good not in RESOURCES:
        return "good", None
    if side not in (BUY, SELL):
        return "side", None
    if kind not in (LIMIT, MARKET):
        return "kind", None
    if price is None:
        if kind == LIMIT or side == BUY:
            return "price", None
    elif not _int_in(price, 1, MAX_PRICE):
        return "price", None
    quantity = body.get("quantity")
    if not _int_in(quantity, 1, MAX_QUANTITY):
        return "quantity", None
    expires = body.get("expires")
    if kind == MARKET:
        expires = None
    elif expires is not None:
        if (type(expires) not in (int, float) or not math.isfinite(expires) or expires <= now
                or expires > now + MAX_TTL + TTL_SLACK):
            return "expires", None
        expires = float(expires)
    if kind == LIMIT and open_orders >= MAX_OPEN_ORDERS:
        return "open_orders", None
    return None, (good, Order(body["order"], pilot, side, kind, price, quantity, expires=expires))

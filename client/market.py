"""The economy's HTTP API for the Python client (docs/economy.md; docs/protocol.md "Market and
pilot HTTP"): the pilot's ledger and orders, the regional markets, the Knowledge Graph.

::

    async with MarketClient("http://127.0.0.1:8000", token) as api:
        me = await api.me()                                   # credits, cargo, region, orders...
        answer = await api.place_order(me["region"], "ferrite", "sell", "limit", 12, 4)
        await api.cancel_order(answer["order"]["id"])
        book = await api.book(me["region"], "ferrite")        # {"good", "bids", "asks", "trades"}

Every request carries ``Authorization: Bearer <token>``. An answer that is not 2xx raises
``StarholdHTTPError`` (``status``; ``body``: the server's ``{"error", "code"?}``). The client
does not check orders itself: the server decides (and says why), so tests can send it
anything. Money is integer credits, goods integer units.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from .http import StarholdHTTPError, http_base

__all__ = ["MarketClient", "HISTORY_INTERVALS"]

HISTORY_INTERVALS = (60, 3600, 86400)
"""Seconds per OHLC candle the history route serves (1 min, 1 h, 1 day)."""


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _query(**params: int | None) -> str:
    """``?k=v&...`` of the parameters that are not None ("" when none is)."""
    given = {k: int(v) for k, v in params.items() if v is not None}
    return "?" + urlencode(given) if given else ""


class MarketClient:
    """HTTP calls of one player (``token``) to the gateway at ``base_url`` (``http://`` or
    ``ws://``). ``session``: an ``aiohttp.ClientSession`` to share (closed by ``close()`` only
    if this object made it)."""

    def __init__(self, base_url: str, token: str, *, session: aiohttp.ClientSession | None = None):
        self.base_url = http_base(base_url)
        self.token = token
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> "MarketClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this object made it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def request(self, method: str, path: str, body: dict | None = None,
                      ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        """``method path`` with the bearer token (and ``body`` as JSON); returns the JSON answer
        (None for an empty one). Raises ``StarholdHTTPError`` for any status not in ``ok``."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        async with self._http().request(method, self.base_url + path, json=body, headers=headers) as resp:
            text = await resp.text()
            try:
                data = await resp.json(content_type=None) if text.strip() else None
            except ValueError:
                data = {"error": text[:200]}
            if resp.status not in ok:
                raise StarholdHTTPError(resp.status, data)
            return data

    # ---- the pilot ----
    async def me(self) -> dict:
        """``GET /api/me``: ``{"player", "name", "credits", "cargo", "capacity", "reserved",
        "free", "region", "system", "orders", "totals"}``."""
        return await self.request("GET", "/api/me")

    async def place_order(self, market: str, good: str, side: str, kind: str, price: int | None, quantity: int, *,
                          ttl: int | None = None, ref: str | None = None) -> dict:
        """``POST /api/me/orders``: a ``side`` (``buy``/``sell``) ``kind`` (``limit``/``market``)
        order for ``quantity`` units of ``good`` at ``price`` credits per unit on the market of
        region ``market`` (a market buy's ``price`` is the most it pays, a market sell's the
        least it takes; None leaves it out: a market sell without a floor); ``ttl`` seconds
        (server default 7 days), ``ref`` a client reference (a retry with the same ``ref``
        answers 200 with the kept order). Returns ``{"order": {...}}`` (201, or 200 for a
        ``ref`` retry). Raises ``StarholdHTTPError`` (4xx ``{"error", "code"}``) when the server
        refuses it."""
        body: dict[str, Any] = {"market": market, "good": good, "side": side, "kind": kind, "quantity": quantity}
        if price is not None:
            body["price"] = price
        if ttl is not None:
            body["ttl"] = ttl
        if ref is not None:
            body["ref"] = ref
        return await self.request("POST", "/api/me/orders", body, ok=(200, 201))

    async def cancel_order(self, order_id: str) -> Any:
        """``DELETE /api/me/orders/{id}``: asks the market to cancel (202); the order ends
        ``cancelled`` (or was already filled). Returns the answer's JSON, if any."""
        return await self.request("DELETE", f"/api/me/orders/{_seg(order_id)}", ok=(200, 202))

    async def graph(self, after: int | None = None, limit: int | None = None) -> dict:
        """``GET /api/me/graph``: a page of the pilot's Knowledge Graph, ``{"fragments": [{"seq",
        "id", "subject", "predicate", "object", "time", "scan"}], "count", "next"}``: the
        fragments with ``seq`` > ``after``, at most ``limit`` (server defaults when None);
        ``next`` is the ``after`` of the next page (None on the last)."""
        return await self.request("GET", "/api/me/graph" + _query(after=after, limit=limit))

    async def discoveries(self, after: int | None = None, before: int | None = None,
                          limit: int | None = None) -> dict:
        """``GET /api/discoveries``: a page of the galaxy's first discoveries, ``{"discoveries":
        [{"seq", "id", "subject", "predicate", "object", "player", "name", "time"}], "count",
        "next"}`` (oldest first after ``after``; else newest first, before ``before``)."""
        return await self.request("GET", "/api/discoveries" + _query(after=after, before=before, limit=limit))

    # ---- the markets ----
    async def market(self, region: str) -> dict:
        """``GET /api/market/{region}``: ``{"region", "time", "goods": {good: {"last", "bid",
        "ask", "volume_24h", "trades_24h"}}}`` (public: the token is sent but not needed)."""
        return await self.request("GET", f"/api/market/{_seg(region)}")

    async def book(self, region: str, good: str) -> dict:
        """``GET /api/market/{region}/{good}``: ``{"good", "bids": [[price, units]], "asks":
        [[price, units]], "trades": [{"trade", "price", "quantity", "time"}]}``."""
        return await self.request("GET", f"/api/market/{_seg(region)}/{_seg(good)}")

    async def history(self, region: str, good: str, interval: int = 3600, limit: int | None = None) -> dict:
        """``GET /api/market/{region}/{good}/history``: OHLC buckets ``{"good", "interval",
        "buckets": [{"t", "open", "high", "low", "close", "volume", "trades"}]}`` of ``interval`` seconds (60, 3600 or 86400; ValueError
        otherwise), at most ``limit`` of them (server default when None)."""
        if interval not in HISTORY_INTERVALS:
            raise ValueError(f"interval must be one of {HISTORY_INTERVALS}")
        return await self.request("GET", f"/api/market/{_seg(region)}/{_seg(good)}/history"
                                  + _query(interval=interval, limit=limit))

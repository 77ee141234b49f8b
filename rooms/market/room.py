"""The market room: one per region (kind ``market``, ids ``core``, ``mid``, ``outer``), a
regional order book per good (docs/economy.md §5-6; matching: ``book.OrderBook``).

Room-only POST paths (``request.sender`` must be ``pilot/<id>``; others get 403):

- ``place`` (``request.key`` = order id) ``{"order", "owner", "good", "side", "kind",
  "price", "quantity", "expires"}``: an order id never seen before is checked
  (``orders.check``): rejected -> ``closed`` (reason ``rejected``, ``remaining`` = the
  body's quantity when it is a non-negative int, else 0, ``detail`` = the reason) posted to the
  sender's pilot and 200 ``{"order", "rejected": reason}``; accepted -> matched: each fill
  posts ``settle`` to the buyer's and the seller's pilot rooms (key
  ``settle:<market>:<trade>:<buy|sell>``; the seller's ``fee`` is ``book.fee`` of the
  notional, the buyer's 0; ``remaining``: that order's remaining after the fill; ``time``:
  game time, s), then an order that does not rest with units left (a market order, or one
  stopped by self-trade prevention) gets ``closed`` reason ``unfilled``. 200 ``{"order",
  "fills", "resting", "remaining"}``. An order id the sender already sent here (accepted or
  rejected, resting or finished, however long ago): 200 ``{"order", "duplicate": true}``,
  nothing else happens (so a post delivered twice never counts twice, even when the first
  was rejected for a reason that has gone away since). The id of another pilot's resting
  order: rejected (reason ``order``). A body that is not a JSON object or an order id that is
  not a str of 1-128 characters: 400 (nothing is posted).
- ``cancel`` ``{"order", "owner"}``: the sender's resting order is removed, ``closed``
  reason ``cancelled`` posted, 200 ``{"order", "cancelled": true, "remaining"}``; anything
  else (unknown, finished, someone else's) 200 ``{"order", "cancelled": false}``.
- Expiry: a ticker deadline at the earliest ``expires`` of the resting orders; at it the
  expired ones are removed and get ``closed`` reason ``expired``.

GET paths (``views.py``): ``book?good=``, ``stats``, ``history?good=&interval=&limit=``,
``audit`` (public) and ``orders?owner=`` (room-only).

State (``store.py``) is written in the hook that changes it, with its posts, so a kill at any
point leaves either nothing or everything of an event; ``on_start`` rebuilds the books from
the resting orders (``OrderBook.restore``) and the log replays to the same books.
"""

from __future__ import annotations

import heapq

from starhold import HttpRequest, HttpResponse, Room, define_room

from ..economy.resources import REGIONS, RESOURCES
from ..ships.room import GAME_EPOCH
from .book import BUY, OrderBook, fee
from .history import INTERVALS, Recent
from .orders import check, valid_id
from .store import MarketStore
from . import views

KIND = "market"
PRUNE_EVERY = 3600.0
"""Seconds between two prunings of old trades and buckets (``MarketStore.prune``)."""
EXPIRY = "expiry"
"""The ticker deadline of the earliest expiry."""


def _quantity(body: dict) -> int:
    """What a rejected order's ``closed`` gives back: its quantity if a non-negative int, else 0."""
    quantity = body.get("quantity")
    return quantity if type(quantity) is int and quantity >= 0 else 0


def pilot_of(sender: str) -> str | None:
    """The pilot id of a ``pilot/<id>`` sender, else None."""
    kind, _, room_id = sender.partition("/")
    return room_id if kind == "pilot" and room_id else None


@define_room
class MarketRoom(Room):
    """A regional market (see the module docstring). ``books``: good -> ``OrderBook``;
    ``recent``: the tape and buckets in memory; ``store``: the durable state."""

    kind = KIND
    wake_on_http = True  # three rooms: a public GET may wake one

    async def on_start(self) -> None:
        if self.name not in REGIONS:
            raise ValueError(f"no market {self.name!r}: markets are {', '.join(REGIONS)}")
        self.store = MarketStore(self.storage, RESOURCES)
        resting, tapes = await self.store.load()
        self.books = {g: OrderBook() for g in RESOURCES}
        self.recent = Recent(RESOURCES)
        self.open: dict[str, int] = {}  # owner -> resting orders
        self.expiries: list[tuple[float, str, int, str]] = []  # heap (expires, good, seq, order)
        window = self.recent.window_start(self.clock.now())
        for g in RESOURCES:
            self.books[g].restore(resting[g], self.store.meta["seq"][g])
            for order in resting[g]:
                self._rested(order, g)
            latest = {i: b for i in INTERVALS if (b := await self.store.latest_bucket(g, i)) is not None}
            minutes = await self.store.buckets(g, 60, 1440, since=window)
            self.recent.load(g, tapes[g], latest, minutes)
        self._pruned = float("-inf")
        self._stale = False
        self._armed: float | None = None
        await self._arm()

    # ---- dispatch -----------------------------------------------------------------------------
    async def on_request(self, request: HttpRequest) -> HttpResponse:
        if self._stale:
            await self._reload()
        if request.method == "GET":
            return await views.answer(self, request)
        if request.method != "POST":
            return HttpResponse(405, {"error": "GET or POST"})
        pilot = pilot_of(request.sender)
        if pilot is None:
            return HttpResponse(403, {"error": "orders come from pilot rooms"})
        handler = {"place": self._place, "cancel": self._cancel}.get(request.path)
        if handler is None:
            return HttpResponse(404, {"error": "not found"})
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return HttpResponse(400, {"error": "body must be a JSON object"})
        if not valid_id(body.get("order")):
            return HttpResponse(400, {"error": "order must be a str of 1-128 characters"})
        try:
            response = await handler(pilot, body)
            await self._housekeeping()
            await self.store.flush()
        except BaseException:
            self._stale = True  # the runtime rolls the hook's writes and posts back: reload next time
            raise
        return response

    async def _reload(self) -> None:
        """Rebuild the memory from storage (after a hook that raised: its writes rolled back)."""
        await self.on_start()

    # ---- place --------------------------------------------------------------------------------
    async def _place(self, pilot: str, body: dict) -> HttpResponse:
        order_id = body["order"]
        if await self.store.is_placed(pilot, order_id):
            return HttpResponse(200, {"order": order_id, "duplicate": True})
        now = self.clock.now()
        if any(order_id in b for b in self.books.values()):  # another pilot's resting order
            reason, accepted = "order", None
        else:
            reason, accepted = check(body, pilot, now, self.open.get(pilot, 0))
        if reason is not None:  # recorded too: the same post sent again must not be accepted later
            self.store.placed(pilot, order_id, None, now - GAME_EPOCH)
            self._closed(pilot, order_id, _quantity(body), "rejected", detail=reason)
            return HttpResponse(200, {"order": order_id, "rejected": reason})
        good, order = accepted
        book = self.books[good]
        fills = book.submit(order)
        store = self.store
        store.meta["seq"][good] = book.seq
        store.placed(pilot, order_id, good, now - GAME_EPOCH)
        store.append({"e": "place", "order": order_id, "owner": pilot, "good": good, "side": order.side,
                      "kind": order.kind, "price": order.price, "quantity": order.quantity,
                      "expires": order.expires, "seq": order.seq, "time": now - GAME_EPOCH})
        left = order.quantity
        for f in fills:
            left -= f.quantity
            maker = book.get(f.maker)
            maker_left = 0 if maker is None else maker.remaining
            if maker is None:
                store.drop_order(f.maker)
                owner = f.seller if order.side == BUY else f.buyer
                self.open[owner] -= 1
            else:
                store.put_order(maker, good)
            buy, sell = (order.id, f.maker) if order.side == BUY else (f.maker, order.id)
            buy_left, sell_left = (left, maker_left) if order.side == BUY else (maker_left, left)
            self._trade(good, f.price, f.quantity, buy, sell, f.buyer, f.seller, buy_left, sell_left, now)
        resting = order.id in book
        if resting:
            store.put_order(order, good)
            self._rested(order, good)
            await self._arm()
        elif order.remaining > 0:
            self._closed(pilot, order_id, order.remaining, "unfilled")
        return HttpResponse(200, {"order": order_id, "fills": len(fills), "resting": resting,
                                  "remaining": order.remaining})

    def _trade(self, good: str, price: int, quantity: int, buy: str, sell: str, buyer: str, seller: str,
               buy_left: int, sell_left: int, now: float) -> None:
        """Record one fill and post its two ``settle``s."""
        store = self.store
        store.meta["trade"] += 1
        trade = store.meta["trade"]
        charge = fee(price * quantity)
        store.meta["fees"] += charge
        store.meta["last"][good] = price
        time = now - GAME_EPOCH
        common = {"trade": trade, "good": good, "price": price, "quantity": quantity, "time": time}
        self.rooms.post("pilot", buyer, "settle", {"order": buy, **common, "side": "buy", "fee": 0,
                                                   "remaining": buy_left}, key=f"settle:{self.name}:{trade}:buy")
        self.rooms.post("pilot", seller, "settle", {"order": sell, **common, "side": "sell", "fee": charge,
                                                    "remaining": sell_left}, key=f"settle:{self.name}:{trade}:sell")
        store.trade(good, {"trade": trade, "price": price, "quantity": quantity, "time": time, "buy": buy,
                           "sell": sell, "buyer": buyer, "seller": seller})
        tape = {"trade": trade, "price": price, "quantity": quantity, "time": time}
        for interval, t, bucket in self.recent.add(good, tape, now):
            store.bucket(good, interval, t, bucket)

    def _closed(self, owner: str, order_id: str, remaining: int, reason: str, **extra) -> None:
        self.rooms.post("pilot", owner, "closed", {"order": order_id, "remaining": remaining, "reason": reason,
                                                   **extra}, key=f"closed:{order_id}")

    def _rested(self, order, good: str) -> None:
        self.open[order.owner] = self.open.get(order.owner, 0) + 1
        if order.expires is not None:
            heapq.heappush(self.expiries, (order.expires, good, order.seq, order.id))

    # ---- cancel and expiry --------------------------------------------------------------------
    async def _cancel(self, pilot: str, body: dict) -> HttpResponse:
        order_id = body["order"]
        for good, book in self.books.items():
            order = book.get(order_id)
            if order is not None:
                break
        if order is None or order.owner != pilot or body.get("owner") != pilot:
            return HttpResponse(200, {"order": order_id, "cancelled": False})
        self._remove(good, order_id, "cancel", "cancelled")
        await self._arm()
        return HttpResponse(200, {"order": order_id, "cancelled": True, "remaining": order.remaining})

    def _remove(self, good: str, order_id: str, event: str, reason: str) -> None:
        order = self.books[good].cancel(order_id)
        self.open[order.owner] -= 1
        self.store.drop_order(order_id)
        self.store.append({"e": event, "order": order_id, "good": good, "time": self.clock.now() - GAME_EPOCH})
        self._closed(order.owner, order_id, order.remaining, reason)

    def _next_expiry(self) -> float | None:
        heap = self.expiries
        while heap:
            expires, good, _, order_id = heap[0]
            order = self.books[good].get(order_id)
            if order is not None and order.expires == expires:
                return expires
            heapq.heappop(heap)
        return None

    async def _arm(self) -> None:
        at = self._next_expiry()
        if at != self._armed:
            await self.ticker.wake_at(EXPIRY, at, self._expire if at is not None else None)
            self._armed = at

    async def _expire(self) -> None:
        """The expiry deadline: remove every resting order whose ``expires`` has passed."""
        if self._stale:
            await self._reload()
        self._armed = None
        try:
            now = self.clock.now()
            while (at := self._next_expiry()) is not None and at <= now:
                _, good, _, order_id = heapq.heappop(self.expiries)
                self._remove(good, order_id, "expire", "expired")
            await self._arm()
            await self.store.flush()
        except BaseException:
            self._stale = True
            raise

    async def _housekeeping(self) -> None:
        now = self.clock.now()
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            await self.store.prune(now, GAME_EPOCH)

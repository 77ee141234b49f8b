"""The market room's durable state, on the room's key-value storage.

Why KV and not the room's SQL: a market hook writes a handful of small records (the order,
its id, a log event, a trade and three buckets per fill, the counters); KV puts are buffered
and reach SQLite in the one commit at the end of the hook, whereas every SQL statement is a
round trip to the database thread. Everything the market reads is a lookup by key or an
ordered prefix scan, which KV's ordered ``list`` serves. The runtime commits a hook's writes
and its posts in one transaction, so the state below and the ``settle``/``closed`` posts are
always consistent whatever is killed when.

Keys (``<n>`` is a zero-padded 12-digit integer, so keys sort numerically):

| key | value | kept |
|---|---|---|
| ``meta`` | ``{"trade": last trade number, "fees": credits, "log": last event number, "seq": {good: the book's last arrival number}, "last": {good: last trade's price}}`` | always |
| ``o:<order>`` | a resting order: ``{"order", "owner", "good", "side", "price", "quantity", "remaining", "seq", "expires"}`` | while it rests |
| ``id:<len(owner)>:<owner>:<order>`` | ``[good or None, game time]``: every order id each pilot ever sent, accepted (its good) or rejected (None); a second ``place`` with it is ignored | always |
| ``log:<n>`` | an accepted event (``place`` with every order field and its book ``seq``, ``cancel``, ``expire``); ``replay`` rebuilds the books from it | always (the audit trail, ~200 bytes an event) |
| ``t:<good>:<n>`` | a trade ``{"trade", "price", "quantity", "time", "buy", "sell", "buyer", "seller"}`` | ``TRADE_KEEP`` (7 days) |
| ``k:<good>:<interval>:<n>`` | an OHLC bucket starting at clock second ``n`` (``history``) | ``history.KEEP``: 1-min 7 days, 1-h 90 days, 1-day forever |

The duplicate check reads a pilot's ids once per activation (one ``list``) and then answers
from memory (``ID_CACHE``): a hook on the hot path makes no read. Old trades and buckets are pruned by ``prune`` (the room calls it at most once an hour, in a
hook that writes anyway).
"""

from __future__ import annotations

import collections


from .book import LIMIT, Order, OrderBook
from .history import INTERVALS, KEEP, TAPE_LENGTH

TRADE_KEEP = 7 * 86400
"""Seconds a trade record is kept (the OHLC buckets last longer: ``history.KEEP``)."""
ID_CACHE = 200_000
"""Most order ids held in memory for the duplicate check (whole pilots are evicted, least
recently used first, and read again when they place again)."""
PRUNE_BATCH = 1000
"""Most keys of one kind (per good and interval) one ``prune`` deletes."""


def _n(value: int) -> str:
    return f"{int(value):012d}"


def order_key(order_id: str) -> str:
    return f"o:{order_id}"


def id_prefix(owner: str) -> str:
    """The prefix of ``owner``'s ``id:`` keys (the length makes it unambiguous)."""
    return f"id:{len(owner)}:{owner}:"


def record(order: Order, good: str) -> dict:
    """A resting order as stored under ``o:<order>``."""
    return {"order": order.id, "owner": order.owner, "good": good, "side": order.side, "price": order.price,
            "quantity": order.quantity, "remaining": order.remaining, "seq": order.seq, "expires": order.expires}


def from_record(rec: dict) -> Order:
    """The ``Order`` of a stored resting order."""
    return Order(rec["order"], rec["owner"], rec["side"], LIMIT, rec["price"], rec["quantity"], seq=rec["seq"],
                 expires=rec["expires"], remaining=rec["remaining"])


def replay(events: list[dict], goods: tuple[str, ...]) -> dict[str, OrderBook]:
    """Fresh books (one per good) with ``events`` (the ``log:`` values, in order) applied:
    ``place`` submits the order (its arrival number must equal the logged ``seq``),
    ``cancel`` and ``expire`` remove it. Raises ``ValueError`` when the log disagrees with
    itself (a seq out of step, a cancel of an order that does not rest)."""
    books = {g: OrderBook() for g in goods}
    for event in events:
        book = books[event["good"]]
        if event["e"] == "place":
            order = Order(event["order"], event["owner"], event["side"], event["kind"], event["price"],
                          event["quantity"], expires=event["expires"])
            book.submit(order)
            if order.seq != event["seq"]:
                raise ValueError(f"log event {event}: replayed seq {order.seq}")
        elif book.cancel(event["order"]) is None:
            raise ValueError(f"log event {event}: the order does not rest")
    return books


class MarketStore:
    """Reads and buffered writes of the keys above over a room's ``storage``. Writes
    (``put_order``, ``drop_order``, ``placed``, ``append``, ``trade``, ``bucket``) are
    collected and written by ``flush`` (one ``put`` and at most one ``delete``)."""

    def __init__(self, storage, goods: tuple[str, ...]):
        self.storage = storage
        self.goods = goods
        self.meta = {"trade": 0, "fees": 0, "log": 0, "seq": {g: 0 for g in goods}, "last": {}}
        self._puts: dict = {}
        self._deletes: set[str] = set()
        self._ids: collections.OrderedDict[str, set[str]] = collections.OrderedDict()  # owner -> ids, LRU
        self._id_count = 0

    # ---- loading ------------------------------------------------------------------------------
    async def load(self) -> tuple[dict[str, list[Order]], dict[str, list[dict]]]:
        """Read ``meta``; returns the resting orders per good (in arrival order) and the last
        ``TAPE_LENGTH`` trades per good (oldest first)."""
        meta = await self.storage.get("meta")
        if meta is not None:
            self.meta = meta
            self.meta.setdefault("last", {})
            for g in self.goods:
                self.meta["seq"].setdefault(g, 0)
        resting: dict[str, list[Order]] = {g: [] for g in self.goods}
        for rec in (await self.storage.list(prefix="o:")).values():
            resting[rec["good"]].append(from_record(rec))
        tapes = {}
        for g in self.goods:
            rows = await self.storage.list(prefix=f"t:{g}:", reverse=True, limit=TAPE_LENGTH)
            tapes[g] = [{k: t[k] for k in ("trade", "price", "quantity", "time")} for t in reversed(rows.values())]
            resting[g].sort(key=lambda o: o.seq)
        return resting, tapes

    async def latest_bucket(self, good: str, interval: int) -> tuple[int, list] | None:
        """The newest stored bucket of ``good`` and ``interval`` as ``(t, bucket)``, or None."""
        rows = await self.storage.list(prefix=f"k:{good}:{interval}:", reverse=True, limit=1)
        return next(((int(k.rsplit(":", 1)[1]), v) for k, v in rows.items()), None)

    async def buckets(self, good: str, interval: int, limit: int, since: int | None = None) -> list[tuple[int, list]]:
        """The newest ``limit`` buckets of ``good`` and ``interval`` (starting at or after clock
        second ``since``, if given) as ``(t, bucket)``, oldest first."""
        prefix = f"k:{good}:{interval}:"
        rows = await self.storage.list(prefix=prefix, start=None if since is None else prefix + _n(since),
                                       reverse=True, limit=limit)
        return [(int(k.rsplit(":", 1)[1]), v) for k, v in reversed(rows.items())]

    async def is_placed(self, owner: str, order_id: str) -> bool:
        """Whether ``owner`` ever had ``order_id`` accepted (ones written in this hook included)."""
        ids = self._ids.get(owner)
        if ids is None:
            prefix = id_prefix(owner)
            ids = {key[len(prefix):] for key in await self.storage.list(prefix=prefix)}
            self._ids[owner] = ids
            self._id_count += len(ids)
        self._ids.move_to_end(owner)
        self._evict()
        return order_id in ids

    def _evict(self) -> None:
        """Forget the least recently used pilots' ids while more than ``ID_CACHE`` are held
        (never the most recent pilot's)."""
        while self._id_count > ID_CACHE and len(self._ids) > 1:
            self._id_count -= len(self._ids.popitem(last=False)[1])

    async def events(self) -> list[dict]:
        """Every logged event, in order."""
        return list((await self.storage.list(prefix="log:")).values())

    async def trades(self, good: str) -> list[dict]:
        """Every stored trade of ``good`` (the last ``TRADE_KEEP`` seconds), in order."""
        return list((await self.storage.list(prefix=f"t:{good}:")).values())

    # ---- buffered writes ----------------------------------------------------------------------
    def put_order(self, order: Order, good: str) -> None:
        key = order_key(order.id)
        self._deletes.discard(key)
        self._puts[key] = record(order, good)

    def drop_order(self, order_id: str) -> None:
        key = order_key(order_id)
        self._puts.pop(key, None)
        self._deletes.add(key)

    def placed(self, owner: str, order_id: str, good: str | None, time: float) -> None:
        """Record that ``owner`` sent ``order_id``, accepted for ``good`` or rejected (None),
        at game time ``time`` (call ``is_placed`` first)."""
        self._puts[id_prefix(owner) + order_id] = [good, time]
        ids = self._ids.get(owner)
        if ids is not None:
            ids.add(order_id)
            self._id_count += 1
            self._evict()

    def append(self, event: dict) -> None:
        """Append ``event`` to the log (its number is ``meta["log"]`` after the call)."""
        self.meta["log"] += 1
        self._puts[f"log:{_n(self.meta['log'])}"] = event

    def trade(self, good: str, trade: dict) -> None:
        self._puts[f"t:{good}:{_n(trade['trade'])}"] = trade

    def bucket(self, good: str, interval: int, t: int, bucket: list) -> None:
        self._puts[f"k:{good}:{interval}:{_n(t)}"] = bucket

    async def flush(self) -> None:
        """Write what was collected (and ``meta``) in the current hook."""
        if self._puts or self._deletes:
            self._puts["meta"] = self.meta
            puts, deletes = self._puts, self._deletes
            self._puts, self._deletes = {}, set()
            if deletes:
                await self.storage.delete(sorted(deletes))
            await self.storage.put(puts)

    def discard(self) -> None:
        """Forget what was collected (the hook failed; the room reloads from storage)."""
        self._puts, self._deletes = {}, set()

    # ---- retention ----------------------------------------------------------------------------
    async def prune(self, now: float, epoch: float) -> int:
        """Delete trades older than ``TRADE_KEEP`` and buckets older than ``history.KEEP``
        (at most ``PRUNE_BATCH`` of each per good and interval); ``now``: clock seconds,
        ``epoch``: clock seconds of game time zero. Returns how many keys it deleted."""
        doomed: list[str] = []
        for g in self.goods:
            start, old = None, 0
            while old < PRUNE_BATCH:  # oldest first, a few at a time: usually one read finds none
                rows = await self.storage.list(prefix=f"t:{g}:", start=start, limit=100)
                fresh = next((k for k, t in rows.items() if t["time"] + epoch >= now - TRADE_KEEP), None)
                keys = [k for k in rows if fresh is None or k < fresh]
                doomed.extend(keys)
                old += len(keys)
                if fresh is not None or len(rows) < 100:
                    break
                start = keys[-1] + "\0"
            for interval in INTERVALS:
                keep = KEEP[interval]
                if keep is None:
                    continue
                prefix = f"k:{g}:{interval}:"
                cutoff = max(0, int(now - keep))
                rows = await self.storage.list(prefix=prefix, end=prefix + _n(cutoff), limit=PRUNE_BATCH)
                doomed.extend(rows)
        if doomed:
            await self.storage.delete(doomed)
        return len(doomed)


__all__ = ["MarketStore", "TRADE_KEEP", "replay", "record", "from_record"]

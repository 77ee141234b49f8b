"""The output side of an activation: the output gate and the per-gateway outboxes.

Messages a hook sends wait in ``_pending`` (a list while a hook runs under the output gate,
None otherwise) until the hook's writes commit; ``_commit_and_release`` then hands them to
``_deliver``, which appends them to the outbox of each gateway they are for and asks that
gateway's data channel to push (``starhold._runtime.channel``). ``allow_unconfirmed`` output
skips ``_pending``. Items (see ``starhold._runtime.handle``): ``("send", conn_ids, data)``,
``("splice", tail, ((conn_id, head), ...))``, ``("close", conn_id, code, reason)``,
``("hibernate",)`` (preceded by ``("moved",)`` when a drain moves the room: the gateway
reopens the channel at once), and ``("stats", key, report)`` every ``STATS_INTERVAL`` seconds.

``Output`` is a mixin of ``RoomRuntime`` (``starhold._runtime.runtime``): it uses the
runtime's ``state``, ``epoch``, ``channels``, ``tick_stats`` and ``_conns``, and owns
``_outboxes``, ``_stats_sent`` and ``_pending``.
"""

from __future__ import annotations

import asyncio
import time

from ..connection import Connection
from .handle import RoomGone
from .state import ActivationState

STATS_INTERVAL = 1.0
"""Seconds between tick reports (``("stats", key, report)`` items) to each gateway."""
MAX_OUTBOX_ITEMS = 4096
"""Outbound items held per gateway (one without a channel, or whose channel is paused because
the gateway is not reading); beyond it the oldest are dropped."""


class _Outbox:
    __slots__ = ("items", "ready")

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.ready = asyncio.Event()


class Output:
    """Emitting, holding and handing out a room's output (see the module docstring)."""

    def connection_list(self) -> list[Connection]:
        return list(self._conns.values())

    def emit(self, targets, data: bytes, unconfirmed: bool) -> None:
        """Queue ``data`` for the connections ``targets`` (grouped per gateway)."""
        by_gateway: dict[str, list[str]] = {}
        for conn in targets:
            by_gateway.setdefault(conn.gateway_id, []).append(conn.id)
        for gateway_id, ids in by_gateway.items():
            item = ((gateway_id,), ("send", tuple(ids), data))
            if self._pending is not None and not unconfirmed:
                self._pending.append(item)
            else:
                self._deliver(*item)

    def emit_spliced(self, tail: bytes, heads: list[tuple[Connection, bytes]], unconfirmed: bool) -> None:
        """Queue ``head + tail`` for each ``(connection, head)``: the shared ``tail`` crosses to
        each gateway once, and the gateway joins it to each connection's small ``head``."""
        by_gateway: dict[str, list[tuple[str, bytes]]] = {}
        for conn, head in heads:
            if not conn.closed:
                by_gateway.setdefault(conn.gateway_id, []).append((conn.id, head))
        for gateway_id, pairs in by_gateway.items():
            item = ((gateway_id,), ("splice", tail, tuple(pairs)))
            if self._pending is not None and not unconfirmed:
                self._pending.append(item)
            else:
                self._deliver(*item)

    def emit_close(self, conn: Connection, code: int, reason: str) -> None:
        self._conns.pop(conn.id, None)
        item = ((conn.gateway_id,), ("close", conn.id, code, reason))
        if self._pending is not None:
            self._pending.append(item)
        else:
            self._deliver(*item)

    def _deliver(self, gateway_ids: tuple[str, ...], item: tuple) -> None:
        for gateway_id in gateway_ids:
            box = self._outboxes.get(gateway_id)
            if box is None:
                box = self._outboxes[gateway_id] = _Outbox()
            box.items.append(item)
            if len(box.items) > MAX_OUTBOX_ITEMS:
                # The gateway is not pulling: drop the oldest item rather than grow without bound.
                del box.items[0]
            box.ready.set()
            self.channels.notify(gateway_id)

    def deliver_to(self, gateway_id: str, items: list[tuple]) -> None:
        """Queue ``items`` for ``gateway_id`` outside the output gate (channel errors)."""
        for item in items:
            self._deliver((gateway_id,), item)

    def take_output(self, gateway_id: str) -> list[tuple]:
        """Take what waits for ``gateway_id`` (with a ``stats`` item every ``STATS_INTERVAL``)."""
        box = self._outboxes.get(gateway_id)
        items = []
        if box is not None and box.items:
            items, box.items = box.items, []
            box.ready.clear()
        now = time.monotonic()
        if self.tick_stats.ticks and now - self._stats_sent.get(gateway_id, 0.0) >= STATS_INTERVAL:
            self._stats_sent[gateway_id] = now
            items.append(("stats", self.key, self.tick_stats.report()))
        return items

    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        """Outbound items for ``gateway_id``, waiting up to ``timeout`` s. After hibernation
        the last items (ending with ``("hibernate",)``) are still returned once. Raises
        ``RoomGone`` when this activation has ended, or is not the one of ``epoch`` (the
        caller's sockets were connected to an earlier activation that crashed)."""
        if epoch is not None and self.state in (ActivationState.NEW, ActivationState.ACTIVE) and epoch != self.epoch:
            raise RoomGone(self.key)
        box = self._outboxes.get(gateway_id)
        if box is None:
            box = self._outboxes[gateway_id] = _Outbox()
        if not box.items:
            if self.state not in (ActivationState.NEW, ActivationState.ACTIVE):
                raise RoomGone(self.key)
            try:
                await asyncio.wait_for(box.ready.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        if not box.items and self.state not in (ActivationState.NEW, ActivationState.ACTIVE):
            raise RoomGone(self.key)
        return self.take_output(gateway_id)

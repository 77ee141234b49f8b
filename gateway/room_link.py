"""A gateway's link to one room: batched inputs in, frames out (DESIGN §4, §6).

Ticked rooms (solar systems, game sessions): one ``exchange`` call per tick per room per
gateway carries the tick's queued client messages in (sent ``FLUSH_LEAD`` before the tick
boundary) and brings back everything the room addressed to this gateway, including the
tick's frames (the call waits for the tick). Joins, leaves and checks go at once in a
``send_batch``, in order with the exchanges. Other rooms: events are sent as one
``send_batch`` (at most one in flight; new events accumulate meanwhile) and a long-poll
``pull`` loop fetches their output. Never one call per message; the bytes of a frame fan out
to the sockets here.

When the room's activation is gone (hibernated, crashed, moved) the link resolves the room
again and sends the batch there. A room that hibernated cleanly restores its connections in
the new activation; after a crash the new activation does not know them, and answers the
link's ``("check", conn_id)`` events by closing those sockets with 4503, so their clients
rejoin (they keep their ship through their player key).

When the room hibernates with sockets connected (``("hibernate",)`` from ``pull``), the link
keeps the sockets open and stops pulling (pulling would wake the room). It watches instead,
without waking anything: the next event from one of its sockets wakes the room, which restores
its connections, and if something else wakes it (an alarm, another gateway's player) the
watch finds the new activation within ``WATCH_INTERVAL`` and pulling resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from .. import protocol
from ..rooms.handle import RoomDirectory, RoomGone, RoomHandle
from . import metrics

log = logging.getLogger("starhold.gateway")

PULL_TIMEOUT = 5.0
"""Seconds a pull waits for output before returning empty (then the loop polls again)."""
WATCH_INTERVAL = 1.0
"""Seconds between checks whether a sleeping room was woken by someone else."""
TICKED_KINDS = frozenset({"system", "session"})
"""Room kinds that tick at ``protocol.TICK_RATE`` on wall-clock boundaries (multiples of
1/TICK_RATE s of Unix time): their inputs are sent once per tick, ``FLUSH_LEAD`` before the
boundary."""
FLUSH_LEAD = 0.03
"""Seconds before a tick boundary a ticked room's inputs are sent. An input is acknowledged
in the first frame after the room applied it, so waiting for the flush costs nothing as long
as the batch lands before the boundary: inputs arriving in the last FLUSH_LEAD seconds of a
tick wait one more tick. One call per tick per room per gateway instead of one per few ms."""
BATCH_WINDOW = 0.002
"""Seconds other rooms' inputs (and every join and leave) gather before they are sent."""
RESOLVE_ATTEMPTS = 40
RESOLVE_BACKOFF = 0.05
"""Seconds between attempts to reach a room whose activation is going away (doubling, capped at 1 s)."""


class Socket(Protocol):
    """What a link needs of a client socket (``gateway.sockets.ClientSocket``)."""

    conn_id: str
    connected: bool

    def deliver(self, data: bytes) -> None: ...
    def deliver_frame(self, data: bytes, keyframe: bool) -> None: ...
    def close_soon(self, code: int, reason: str) -> None: ...


class RoomLink:
    """Events in and frames out between this gateway's sockets and one room."""

    def __init__(self, directory: RoomDirectory, gateway_id: str, kind: str, room_id: str, params: dict):
        self.directory = directory
        self.gateway_id = gateway_id
        self.kind = kind
        self.room_id = room_id
        self.params = params
        self.sockets: dict[str, Socket] = {}
        self._handle: RoomHandle | None = None
        self._epoch: int | None = None  # the activation our connected sockets belong to
        self.asleep = False  # the room hibernated holding our sockets
        self._woken = asyncio.Event()
        self._queue: list[tuple] = []
        self._inputs = 0  # client messages in _queue
        self._flusher: asyncio.Task | None = None
        self._send_lock = asyncio.Lock()
        self._pump: asyncio.Task | None = None
        self.batches_sent = 0
        self.events_sent = 0

    # ---- resolution ------------------------------------------------------------------------
    async def handle(self) -> RoomHandle:
        """The room's live handle, waking the room if needed (timed: ``room_wake_seconds``)."""
        if self._handle is None:
            started = time.perf_counter()
            self._handle = await self.directory.get(self.kind, self.room_id, self.params)
            metrics.WAKE_SECONDS.observe(time.perf_counter() - started)
        return self._handle

    def _lost(self, handle: RoomHandle | None) -> None:
        if self._handle is handle:
            self._handle = None
            self._epoch = None

    # ---- inputs ----------------------------------------------------------------------------
    def attach(self, sock: Socket) -> None:
        self.sockets[sock.conn_id] = sock

    def submit(self, event: tuple, control: bool = False) -> bool:
        """Queue one event (``("connect"|"message"|"close"|"check", conn_id, ...)``) for the
        room. Returns False, dropping it, when it is a client message and the room's queue
        already holds ``ROOM_INPUT_QUEUE_LIMIT`` messages (``control`` events always queue).

        A ticked room's messages go with the next per-tick ``exchange`` (see ``FLUSH_LEAD``);
        control events, other rooms' messages, and anything for a room that is not awake or
        not yet resolved go at once (after ``BATCH_WINDOW``) in a ``send_batch``."""
        if not control and self._inputs >= protocol.ROOM_INPUT_QUEUE_LIMIT:
            return False
        self._queue.append(event)
        if not control:
            self._inputs += 1
        if not self._ticked() or control or self._handle is None or self.asleep:
            self._kick()
        return True

    def _kick(self) -> None:
        """Send what is queued now (in a ``send_batch``), unless a send is already under way."""
        if self._queue and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush())

    def _ticked(self) -> bool:
        return self.kind in TICKED_KINDS

    async def _flush(self) -> None:
        await asyncio.sleep(BATCH_WINDOW)
        async with self._send_lock:  # in order with the exchange loop
            while self._queue:
                batch, self._queue, self._inputs = self._queue, [], 0
                await self._send(batch)

    async def _send(self, batch: list[tuple]) -> None:
        delay = RESOLVE_BACKOFF
        for _ in range(RESOLVE_ATTEMPTS):
            handle = None
            try:
                handle = await self.handle()
                epoch = await handle.send_batch(self.gateway_id, batch)
            except RoomGone:
                # Hibernated or died under us: the whole batch goes to the next activation,
                # which knows our sockets if the room hibernated cleanly (and closes the others).
                self._lost(handle)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            except Exception:
                log.exception("room %s/%s: batch failed", self.kind, self.room_id)
                self._lost(handle)
                self._fail({e[1] for e in batch}, protocol.CLOSE_INTERNAL_ERROR, "room unreachable")
                return
            self._applied(batch, epoch)
            return
        self._fail({e[1] for e in batch}, protocol.CLOSE_ROOM_UNAVAILABLE, "room unavailable")

    def _applied(self, batch: list[tuple], epoch: int) -> None:
        """The room applied ``batch`` in the activation ``epoch``."""
        connected_now = {e[1] for e in batch if e[0] == "connect"}
        if self._epoch is not None and epoch != self._epoch:
            self._check_sockets(exclude=connected_now)
        self._epoch = epoch
        self.asleep = False
        self._woken.set()
        if batch:
            self.batches_sent += 1
            self.events_sent += len(batch)
        for conn_id in connected_now:
            if conn_id in self.sockets:
                self.sockets[conn_id].connected = True
        self._ensure_pump()

    def _check_sockets(self, exclude=()) -> None:
        """Ask the (new) activation about our connected sockets: it closes (4503) those it does
        not know, i.e. the ones connected to an activation that crashed."""
        for conn_id, sock in self.sockets.items():
            if sock.connected and conn_id not in exclude:
                self.submit(("check", conn_id), control=True)

    def _fail(self, conn_ids, code: int, reason: str) -> None:
        for conn_id in conn_ids:
            sock = self.sockets.pop(conn_id, None)
            if sock is not None:
                sock.connected = False
                sock.close_soon(code, reason)

    def detach(self, conn_id: str, code: int, reason: str) -> None:
        """A socket closed: tell the room and forget it. Its connect may still be queued or in
        flight: the close follows it in order (the room ignores a close for a connection it
        does not know), and is never dropped, however full the queue."""
        sock = self.sockets.pop(conn_id, None)
        if sock is not None:
            self.submit(("close", conn_id, code, reason), control=True)

    # ---- outputs ---------------------------------------------------------------------------
    def _ensure_pump(self) -> None:
        if self.sockets and (self._pump is None or self._pump.done()):
            self._pump = asyncio.create_task(self._pull_loop())

    async def _watch(self) -> None:
        """While the room sleeps: wait for our next event, or find it woken by someone else."""
        self._woken.clear()
        try:
            await asyncio.wait_for(self._woken.wait(), WATCH_INTERVAL)
        except asyncio.TimeoutError:
            handle = await self.directory.get_if_active(self.kind, self.room_id)
            if handle is not None and self.asleep:
                self._handle, self.asleep = handle, False

    async def _pull_loop(self) -> None:
        while self.sockets:
            handle = None
            try:
                if self.asleep:
                    await self._watch()
                    continue
                if self._ticked():
                    items = await self._exchange()
                else:
                    handle = await self.handle()
                    items = await handle.pull(self.gateway_id, PULL_TIMEOUT, self._epoch)
            except RoomGone:
                # The activation ended without telling us it hibernated: it died. The checks
                # revive the room and have it close the sockets it does not know.
                self._lost(self._handle if handle is None else handle)
                self.asleep = True
                self._check_sockets()
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room %s/%s: pull failed", self.kind, self.room_id)
                await asyncio.sleep(0.5)
                continue
            self._dispatch_items(items)

    async def _exchange(self) -> list[tuple]:
        """One tick of a ticked room: at ``FLUSH_LEAD`` before the boundary, send the queued
        events and receive what the room sent since, waiting for the tick's frames."""
        period = 1.0 / protocol.TICK_RATE
        await asyncio.sleep((-time.time() - FLUSH_LEAD) % period)
        async with self._send_lock:
            if self.asleep or not self.sockets:
                return []
            batch, self._queue, self._inputs = self._queue, [], 0
            handle = None
            try:
                handle = await self.handle()
                epoch, items = await handle.exchange(self.gateway_id, batch, FLUSH_LEAD + period / 2)
            except RoomGone:
                # Not applied: the events go to the next activation. The room hibernated (and
                # exited before our call could fetch its last items) or died: watch for it,
                # and keep our epoch, so that the activation we meet next (woken by our next
                # event, or found by the watch) is asked about our sockets and closes the ones
                # it does not know (none after a clean hibernation).
                self._queue[:0] = batch
                self._inputs += sum(1 for e in batch if e[0] == "message")
                if self._handle is handle:
                    self._handle = None
                self.asleep = True
                self._kick()
                return []
            self._applied(batch, epoch)
            return items

    def _dispatch_items(self, items: list[tuple]) -> None:
        sockets = self.sockets
        for item in items:
            tag = item[0]
            if tag == "splice":  # a frame: shared tail, a small head per connection
                tail = item[1]
                keyframe = protocol.tail_is_keyframe(tail)
                metrics.FRAME_BYTES.observe(len(tail))
                for conn_id, head in item[2]:
                    sock = sockets.get(conn_id)
                    if sock is not None:
                        sock.deliver_frame(head + tail, keyframe)
            elif tag == "send":
                data = item[2]
                for conn_id in item[1]:
                    sock = sockets.get(conn_id)
                    if sock is not None:
                        sock.deliver(data)
            elif tag == "stats":
                metrics.ROOM_STATS[item[1]] = item[2]
            elif tag == "close":
                sock = sockets.pop(item[1], None)
                if sock is not None:
                    sock.connected = False
                    sock.close_soon(item[2], item[3])
            elif tag == "hibernate":
                self._lost(self._handle)  # the next activation restores our sockets: any epoch
                self.asleep = True
                self._kick()  # inputs queued for the next exchange now wake the room

    async def stop(self) -> None:
        for task in (self._flusher, self._pump):
            if task is not None and not task.done():
                task.cancel()

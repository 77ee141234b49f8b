"""A gateway's link to one room: batched inputs in, frames out (DESIGN §4, §6).

The link finds the room through the directory (waking it if it sleeps), asks it for a data
channel (one Ray call) and carries all of this gateway's traffic with the room over that
channel (``starhold._runtime.channel``, ``gateway.room_channel``): batches of events in, pushed items out.
Ray is used for placement and lifecycle, never per message or per tick.

Batching: the client messages of a room whose kind ticks (``Room.tick_rate``: the game's
solar systems and sessions) are sent at the ``FLUSH_POINTS`` before each tick boundary
(``IN_PROCESS_FLUSH_POINTS`` when the room runs on this gateway's own loop; one batch per tick,
whatever the number of players); control events (joins, leaves, checks, the
resyncs the gateway asks for) and other rooms' messages go after ``BATCH_WINDOW``. A frame's
shared bytes arrive once per tick and fan out to the sockets here.

Tick marks: while a link to a ticked room has sockets and its channel reads marks, at the last
flush point of every tick it sends what is queued and then the mark of that tick's boundary,
in the same write, inputs or not (``RoomChannel.send``/``mark``; the room's tick waits for it,
a bounded input barrier: ``starhold._runtime.channel``). A mark sent late (a busy loop) still
names the boundary it was due for, and carries the inputs that arrived meanwhile with it.

The room acknowledges each batch it has processed. When the channel ends, the batches not yet
acknowledged go back to the front of the queue, for the next activation:

- after ``("hibernate",)`` the room sleeps holding this gateway's sockets; they stay open, and
  the link watches without waking anything: the next event from one of its sockets wakes the
  room, which restores its connections, and if something else wakes it (an alarm, another
  gateway's player) the watch finds the new activation within ``WATCH_INTERVAL``;
- after ``("moved",)`` then ``("hibernate",)`` (``starhold drain``: the room hibernated to
  move off its node) the same, except that the link reopens the channel at once, waking the
  room on another node: its restored connections get frames again as soon as it runs;
- without it the activation died (crash, fenced, node lost): the link asks the next activation
  about its connected sockets (``Check(conn_id)``), and the activation closes with 4503 the
  ones it does not know, so their clients rejoin (they keep their ship through their player key).

When the room cannot be woken, the link fails fast and loses no client's word:

- its snapshot store is unreachable (``StorageError``): every socket of the link that has a
  join or an input waiting gets an ``error`` frame (``ERR_OVERLOADED``, that join's or input's
  seq) and close 1013 ("try again later"); ``on_start`` raised (a room bug): close 1011; the
  room kept going away (``RESOLVE_ATTEMPTS`` tries): close 4503. Sockets held while the room
  sleeps that sent nothing stay open. For ``UNAVAILABLE_HOLD`` seconds after, unless the room
  was woken meanwhile by someone else, new sockets get the same at once and HTTP calls raise
  ``RoomUnavailable`` (503 + ``Retry-After``) without another attempt (``call``);
- what sockets that had already closed sent (their close above all: a leave, 1000, releases
  the seat) stays queued, and so does a close for each socket failed that the room knew (code
  as sent to the socket: its seat is held); they are delivered, in order, to the room's next
  activation: the link tries again after ``PENDING_RETRY_FIRST`` seconds (doubling up to
  ``PENDING_RETRY_MAX``), and at once when a socket or an HTTP call wakes the room;
- one log line per (failure, room kind) per 30 s (``WAKE_FAILURES``, ``starhold.ratelog``),
  tracebacks at DEBUG only.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from typing import Protocol

from .. import protocol
from ..wsdirect import FrameWriter, binary_frame_header
from .._runtime.events import Check, Close, Connect, Message
from ..errors import RoomUnavailable
from ..http import RETRY_AFTER
from ..ratelog import RateLimitedLog, describe
from ..room import HttpRequest, HttpResponse
from ..storage.base import StorageError
from ..ticking import tick_offset
from .._runtime.handle import RoomDirectory, RoomGone, RoomHandle
from . import metrics
from .admission import TickReports
from .room_channel import InProcessRoomChannel, RoomChannel

log = logging.getLogger("starhold.gateway")

DEFAULT_PERIOD = 0.1
"""Seconds of the flush period of a room whose kind has no ``tick_rate`` (its messages go after
``BATCH_WINDOW``; the period only bounds ``until_flush_point``)."""
WATCH_INTERVAL = 1.0
"""Seconds between checks whether a sleeping room was woken by someone else."""
FLUSH_POINTS = (0.003,)
"""Seconds before a tick boundary a ticked room's queued client messages are sent. An input
is acknowledged in the first frame after the room applied it, so holding it until then costs
nothing as long as it lands before the boundary (the room's input barrier waits for a batch
that is a little late: ``starhold._runtime.channel``). One point close to the boundary, its
batch and the tick's mark in one write: the room's process wakes once for a tick's inputs and
once for its tick (each wake-up of a process finds its caches cold: with three points, 30, 10
and 3 ms before, it woke four times, and the hosts took ~16 % more CPU at 1,000 players).
Only inputs arriving in the tick's last ~3 ms wait one more tick. Rooms ticking faster than
15 Hz use only the points under half their tick period (more than one point may be given)."""
IN_PROCESS_FLUSH_POINTS = (0.0003,)
"""``FLUSH_POINTS`` of a link whose channel is joined in process (``InProcessRoomChannel``: the
room runs on this gateway's own event loop, as with sockets in the room's host, ``--colocate``,
or ``--host-mode local``). Its batch and mark cross no process: they reach the room on the
loop's next turn, and a loop busy past the flush point delays the room's tick as much as the
mark, so the 3 ms of slack a remote room needs buy nothing here; 0.3 ms before the boundary, the
batch is applied just before the tick, and inputs of the tick's last 3 ms no longer wait one
more. Starhold alone, alternating pairs against 3 ms: lower CPU in five of six at 2,000 players
(e.g. 93.2 / 84.9 / 85.5 -> 84.1 / 81.9 / 74.9 % of a core, p99 111-134 -> 104-115 ms) and in
two of three at 1,000 (42.9 / 39.5 / 40.9 -> 39.1 / 37.1 / 43.1 %, p99 101-109 -> 103-106 ms;
docs/operating.md, fourteenth session)."""
BATCH_WINDOW = 0.002
"""Seconds control events (and other rooms' messages) gather before they are sent."""
RESOLVE_ATTEMPTS = 40
RESOLVE_BACKOFF = 0.05
"""Seconds between attempts to reach a room whose activation is going away (doubling, capped at 1 s)."""
UNAVAILABLE_HOLD = float(RETRY_AFTER)
"""Seconds after a failed wake during which new sockets and HTTP calls are refused at once."""
PENDING_RETRY_FIRST = 5.0
PENDING_RETRY_MAX = 60.0
"""Seconds between attempts to wake a room that could not wake, to deliver what is still queued
for it (closes of sockets gone meanwhile): doubling from the first to the second."""

UNAVAILABLE_MESSAGE = f"the room cannot start now (its storage is unreachable); retry in {RETRY_AFTER} s"
"""The ``error`` frame's message before close 1013."""

WAKE_FAILURES = RateLimitedLog(log)
"""The gateway's log of rooms that could not wake: one line per (failure, room kind) per 30 s."""

_FAILURES = {  # why -> (close code, error frame code or None, close reason, log phrase)
    "store": (protocol.CLOSE_TRY_AGAIN_LATER, protocol.ERR_OVERLOADED, "room unavailable; try again later",
              "its snapshot store is unreachable"),
    "room": (protocol.CLOSE_INTERNAL_ERROR, None, "room failed to start", "it failed to start"),
    "gone": (protocol.CLOSE_ROOM_UNAVAILABLE, None, "room unavailable", "it kept going away"),
}


def wake_failure(exc: BaseException) -> str:
    """Why opening a room failed: ``"store"`` for a ``StorageError`` (its snapshot store is
    unreachable; also when wrapped, as ``cause``, by Ray's ``RayTaskError``), else ``"room"``
    (``on_start`` or the host failed)."""
    return "store" if isinstance(exc, StorageError) or isinstance(getattr(exc, "cause", None), StorageError) \
        else "room"


class Socket(Protocol):
    """What a link needs of a client socket (``gateway.sockets.ClientSocket``)."""

    conn_id: str
    connected: bool

    def deliver(self, data: bytes) -> None: ...
    def deliver_frame(self, data: bytes, keyframe: bool) -> None: ...
    def deliver_spliced(self, head: bytes, tail: bytes, keyframe: bool) -> None: ...
    def close_soon(self, code: int, reason: str) -> None: ...


def flush_points(period: float, points: tuple[float, ...] = FLUSH_POINTS) -> tuple[float, ...]:
    """The flush ``points`` (default ``FLUSH_POINTS``) that fit a tick of ``period`` seconds:
    those under half of it, or a quarter of the period when none does."""
    return tuple(lead for lead in points if lead < period / 2) or (period / 4,)


def until_flush_point(now: float, period: float = DEFAULT_PERIOD,
                      points: tuple[float, ...] = FLUSH_POINTS) -> float:
    """Seconds from Unix time ``now`` to the next of the flush ``points`` (seconds before each
    boundary of a tick of ``period`` seconds, latest last), at least 0.5 ms from now."""
    phase = now % period
    for lead in points:
        if period - lead - phase > 0.0005:
            return period - lead - phase
    return 2 * period - points[0] - phase


class RoomLink:
    """Events in and frames out between this gateway's sockets and one room."""

    def __init__(self, directory: RoomDirectory, gateway_id: str, kind: str, room_id: str, params: dict,
                 tick_rate: float | None = None):
        """``params``: given to the room when the link wakes it; ``tick_rate``: the kind's
        ``Room.tick_rate`` (Hz; None for a room without a loop: its messages go after
        ``BATCH_WINDOW``)."""
        self.directory = directory
        self.gateway_id = gateway_id
        self.kind = kind
        self.room_id = room_id
        self.params = params
        self.ticked = tick_rate is not None
        self.period = 1.0 / tick_rate if tick_rate is not None else DEFAULT_PERIOD
        self.flush_points = flush_points(self.period)
        self.tick_offset = tick_offset(f"{kind}/{room_id}", tick_rate) if tick_rate is not None else 0.0
        self.sockets: dict[str, Socket] = {}
        self.writers: dict[str, FrameWriter] = {}  # the direct frame paths of our sockets that have one
        self._handle: RoomHandle | None = None
        self._epoch: int | None = None  # the activation our connected sockets belong to
        self.asleep = False  # the room hibernated holding our sockets
        self._channel: RoomChannel | None = None
        self._hibernated = False  # the current channel announced hibernation
        self._moved = False  # ... because the room moves to another node (starhold drain)
        self._queue: list = []  # events not yet sent
        self._queued_inputs = 0  # client messages in _queue
        self._unacked: collections.deque = collections.deque()  # (batch_no, events, client messages)
        self._inputs = 0  # client messages queued or not yet acknowledged
        self._batch_no = 0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_at = 0.0
        self._mark_timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()  # events were queued
        self._runner: asyncio.Task | None = None
        self._stopped = False
        self._failure: str | None = None  # why the last wake failed (a _FAILURES key), until one succeeds
        self._refuse_until = 0.0  # loop time until which new sockets and calls are refused at once
        self._retry_at = 0.0  # loop time of the next wake attempt after a failure
        self._retry_delay = PENDING_RETRY_FIRST
        self.batches_sent = 0
        self.events_sent = 0
        self.tick_reports = TickReports()  # the room's tick overruns, for admission control

    # ---- resolution ------------------------------------------------------------------------
    async def handle(self) -> RoomHandle:
        """The room's live handle, waking the room if needed (timed: ``room_wake_seconds``)."""
        if self._handle is None:
            started = time.perf_counter()
            self._handle = await self.directory.get(self.kind, self.room_id, self.params)
            metrics.WAKE_SECONDS.observe(time.perf_counter() - started)
        return self._handle

    def _lost(self, handle: RoomHandle | None) -> None:
        """``handle`` raised ``RoomGone``: resolve the room again next time."""
        if self._handle is handle:
            self._handle = None

    # ---- inputs ----------------------------------------------------------------------------
    def attach(self, sock: Socket) -> None:
        self.sockets[sock.conn_id] = sock
        fast = getattr(sock, "fast", None)
        if fast is not None:
            self.writers[sock.conn_id] = fast
        self._ensure_runner()
        self._schedule_mark()

    def submit(self, event, control: bool = False) -> bool:
        """Queue one event (``starhold._runtime.events``: ``Connect``, ``Message``, ``Close``,
        ``Check``) for the room. Returns False, dropping it, when it is a client message and
        ``ROOM_INPUT_QUEUE_LIMIT`` messages (or ``ROOM_INPUT_QUEUE_PER_SOCKET`` per socket of
        this link, when more) are already queued or unacknowledged (the room is not keeping
        up); ``control`` events always queue."""
        if not control:
            if self._inputs >= protocol.ROOM_INPUT_QUEUE_LIMIT and \
                    self._inputs >= protocol.ROOM_INPUT_QUEUE_PER_SOCKET * len(self.sockets):
                return False
            self._inputs += 1
            self._queued_inputs += 1
        self._queue.append(event)
        if self._channel is None:
            self._changed.set()
            self._ensure_runner()
        elif control or not self.ticked:
            self._schedule_flush(BATCH_WINDOW)
        elif self._flush_timer is None:  # a pending flush is already at the nearest point or sooner
            self._schedule_flush(until_flush_point(time.time() - self.tick_offset, self.period, self.flush_points))
        return True

    def _schedule_flush(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() + delay
        if self._flush_timer is not None:
            if self._flush_at <= at:
                return
            self._flush_timer.cancel()
        self._flush_at = at
        self._flush_timer = loop.call_at(at, self._flush)

    def _schedule_mark(self) -> None:
        """Arm the next tick mark (see the module docstring) unless one is armed, the room does
        not tick, the channel is closed or does not take marks, or the link has no sockets."""
        if self._mark_timer is not None or not self.ticked or not self.sockets or self._channel is None \
                or not self._channel.marks:
            return
        lead = self.flush_points[-1]
        now = time.time()
        boundary = self.tick_offset + self.period * (math.floor((now + lead + 0.0005 - self.tick_offset) / self.period) + 1)
        self._mark_timer = asyncio.get_running_loop().call_later(boundary - lead - now, self._mark, boundary)

    def _mark(self, boundary: float) -> None:
        """The last flush point before ``boundary``: send what is queued, then its mark."""
        self._mark_timer = None
        if self._channel is None or not self.sockets:
            return
        if not self._flush(mark=boundary):  # (the mark rides with the batch when there is one)
            self._channel.mark(boundary)
        self._schedule_mark()

    def _flush(self, mark: float | None = None) -> bool:
        """Send what is queued as one batch (if the channel is open), followed by the mark of
        the boundary ``mark`` when given; whether a batch was sent."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._channel is None or not self._queue:
            return False
        batch, self._queue = self._queue, []
        self._batch_no += 1
        self._unacked.append((self._batch_no, batch, self._queued_inputs))
        self._queued_inputs = 0
        self._channel.send(self._batch_no, batch, mark)
        self.batches_sent += 1
        self.events_sent += len(batch)
        return True

    def detach(self, conn_id: str, code: int, reason: str) -> None:
        """A socket closed: tell the room and forget it. Its connect may still be queued or in
        flight: the close follows it in order (the room ignores a close for a connection it
        does not know), and is never dropped, however full the queue, nor when the room
        cannot wake: it waits for the room's next activation."""
        sock = self._pop_socket(conn_id)
        if sock is not None:
            self.submit(Close(conn_id, code, reason), control=True)

    def _pop_socket(self, conn_id: str) -> Socket | None:
        """Forget the socket ``conn_id`` (None if it is not ours) and its direct frame path."""
        self.writers.pop(conn_id, None)
        return self.sockets.pop(conn_id, None)

    def _check_sockets(self) -> None:
        """Ask the (new) activation about our connected sockets: it closes (4503) those it does
        not know, i.e. the ones connected to an activation that died."""
        for conn_id, sock in self.sockets.items():
            if sock.connected:
                self.submit(Check(conn_id), control=True)

    def _fail(self, conn_ids, code: int, reason: str) -> None:
        for conn_id in conn_ids:
            sock = self._pop_socket(conn_id)
            if sock is not None:
                sock.connected = False
                sock.close_soon(code, reason)

    def _waiting(self) -> bool:
        """Whether a socket of ours has events queued (it wants the room)."""
        sockets = self.sockets
        return any(event.conn in sockets for event in self._queue)

    def _fail_waiting(self, why: str) -> int:
        """The room cannot be woken (``why``: a ``_FAILURES`` key): close each socket that has
        events queued (an error frame first for ``"store"``, with the seq of its first queued
        join or input) and drop its events; returns how many were closed. Sockets with nothing
        queued (held while the room sleeps) stay open. The events of sockets that closed
        before stay queued for the room's next activation, with a close (our code) for each
        socket closed here that the room knew (its seat is held)."""
        code, error, reason, _ = _FAILURES[why]
        failed: dict[str, int] = {}  # conn id -> seq of its first queued join or input
        kept = []
        for event in self._queue:  # every event names its connection (``conn``)
            if event.conn in self.sockets:
                seq = event.seq if type(event) is Connect else event.message.seq if type(event) is Message else 0
                failed[event.conn] = failed.get(event.conn) or seq
            else:
                kept.append(event)
        for conn_id, seq in failed.items():
            sock = self._pop_socket(conn_id)
            if sock.connected:
                kept.append(Close(conn_id, code, reason))
            sock.connected = False
            if error is not None:
                metrics.ERRORS_SENT.labels(str(error)).inc()
                sock.deliver(protocol.error_frame(error, UNAVAILABLE_MESSAGE, seq))
            sock.close_soon(code, reason)
        self._queue = kept
        self._inputs = self._queued_inputs = sum(1 for e in kept if type(e) is Message)
        return len(failed)

    def _wake_failed(self, why: str, exc: BaseException | None) -> None:
        """A wake failed: log it (rate-limited), refuse for ``UNAVAILABLE_HOLD`` seconds, fail
        the sockets and schedule the next attempt for what stays queued."""
        now = asyncio.get_running_loop().time()
        self._failure = why
        self._refuse_until = now + UNAVAILABLE_HOLD
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, PENDING_RETRY_MAX)
        code, _, _, phrase = _FAILURES[why]
        closed = self._fail_waiting(why)
        WAKE_FAILURES.log(logging.WARNING, (why, self.kind), "room %s/%s cannot wake: %s (%s); %d socket(s) closed "
                          "with %d, %d event(s) kept for its next activation", self.kind, self.room_id, phrase,
                          describe(exc) if exc is not None else "-", closed, code, len(self._queue), exc_info=exc)

    def _woke(self) -> None:
        """A wake succeeded: forget the failure; deliver what waited for it."""
        if self._failure is None:
            return
        WAKE_FAILURES.recovered((self._failure, self.kind), "room %s/%s wakes again", self.kind, self.room_id)
        self._failure = None
        self._refuse_until = self._retry_at = 0.0
        self._retry_delay = PENDING_RETRY_FIRST
        if self._queue and self._channel is None:
            self._changed.set()
            self._ensure_runner()

    async def _refusing(self) -> bool:
        """Whether a wake failed less than ``UNAVAILABLE_HOLD`` seconds ago and the room is not
        awake now (woken meanwhile by another gateway, an alarm...): then this link does not
        try to wake it again yet."""
        if self._failure is None or asyncio.get_running_loop().time() >= self._refuse_until:
            return False
        return await self.directory.get_if_active(self.kind, self.room_id) is None

    # ---- HTTP ------------------------------------------------------------------------------
    async def call(self, request: HttpRequest, wake: bool = True) -> HttpResponse | None:
        """Send ``request`` to the room's ``on_request`` (``GatewayAPI.call_room``). ``wake=False``
        asks only a live activation (None when the room sleeps). Raises ``RoomUnavailable`` when
        the room keeps going away (3 tries) or cannot wake because its snapshot store is
        unreachable, and at once, without trying, within ``UNAVAILABLE_HOLD`` seconds of a
        failed wake; whatever else the room raised propagates."""
        key = f"{self.kind}/{self.room_id}"
        if wake and await self._refusing():
            raise RoomUnavailable(f"room {key} cannot wake now ({_FAILURES[self._failure][3]}); retry later")
        for _ in range(3):
            handle = None
            try:
                if wake:
                    handle = await self.handle()
                else:
                    handle = await self.directory.get_if_active(self.kind, self.room_id)
                    if handle is None:
                        return None
                response = await handle.request(request)
            except RoomGone:
                self._lost(handle)
                continue
            except Exception as exc:
                self._lost(handle)
                if wake_failure(exc) != "store":
                    raise
                now = asyncio.get_running_loop().time()
                self._failure = "store"
                self._refuse_until = self._retry_at = max(self._retry_at, now + UNAVAILABLE_HOLD)
                WAKE_FAILURES.log(logging.WARNING, ("store", self.kind), "room %s cannot wake: %s (%s); HTTP "
                                  "answered 503", key, _FAILURES["store"][3], describe(exc), exc_info=exc)
                raise RoomUnavailable(f"room {key} cannot wake now ({_FAILURES['store'][3]}); retry later") from None
            if wake:
                self._woke()
            return response
        raise RoomUnavailable(f"room {key} unavailable")

    # ---- the channel -----------------------------------------------------------------------
    def _ensure_runner(self) -> None:
        if not self._stopped and self._channel is None and (self._runner is None or self._runner.done()):
            self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Open a channel to the room whenever one is needed and none is open: when events are
        queued (waking the room if it sleeps), or when the room sleeping with our sockets was
        woken by someone else."""
        attempts, delay = 0, RESOLVE_BACKOFF
        loop = asyncio.get_running_loop()
        while self._channel is None and not self._stopped and (self.sockets or self._queue):
            if self.asleep and not self._queue:
                await self._watch()
                continue
            now = loop.time()
            if now < self._retry_at:  # the last wake failed
                if not self._waiting():  # only events of sockets gone: wait for the next attempt
                    await self._wait_for_events(self._retry_at - now)
                    continue
                if await self._refusing():
                    self._fail_waiting(self._failure)
                    continue
            try:
                await self._open()
            except (RoomGone, OSError, asyncio.TimeoutError) as exc:
                # Hibernating, dead or moved under us: resolve it again after a pause.
                self._handle = None
                attempts += 1
                if attempts >= RESOLVE_ATTEMPTS:
                    self._wake_failed("gone", exc)
                    attempts, delay = 0, RESOLVE_BACKOFF
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._handle = None
                self._wake_failed(wake_failure(exc), exc)
            else:
                self._woke()

    async def _wait_for_events(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for an event to be queued."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _open(self) -> None:
        handle = await self.handle()
        info = await handle.open_channel(self.gateway_id)
        channel = await RoomChannel.open(info, self.gateway_id, self._on_push, self._channel_lost)
        if self._stopped:
            channel.close()
            return
        self._channel = channel
        in_process = isinstance(channel, InProcessRoomChannel)
        self.flush_points = flush_points(self.period, IN_PROCESS_FLUSH_POINTS if in_process else FLUSH_POINTS)
        if self._epoch is not None and channel.epoch != self._epoch:
            self._check_sockets()  # a new activation: the one our sockets joined died
        self._epoch = channel.epoch
        self.asleep = self._hibernated = False
        self._flush()  # what waited for the channel, in order
        self._schedule_mark()
        if channel.lost:  # it ended before we took it
            self._channel_lost(channel)

    async def _watch(self) -> None:
        """While the room sleeps: wait for our next event, or find it woken by someone else."""
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), WATCH_INTERVAL)
        except asyncio.TimeoutError:
            handle = await self.directory.get_if_active(self.kind, self.room_id)
            if handle is not None and self.asleep:
                self._handle, self.asleep = handle, False

    def _channel_lost(self, channel: RoomChannel) -> None:
        """The activation behind ``channel`` ended (see the module docstring)."""
        if channel is not self._channel:
            return
        self._channel = None
        self._handle = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        requeued = [e for _, batch, _ in self._unacked for e in batch]
        self._queued_inputs += sum(n for _, _, n in self._unacked)
        self._unacked.clear()
        self._queue[:0] = requeued
        self.asleep = not (self._hibernated and self._moved)  # moved: reopen at once, waking it elsewhere
        if self._hibernated:
            self._epoch = None  # the next activation restores our sockets, whatever its epoch
        else:
            self._check_sockets()
        self._hibernated = self._moved = False
        self._ensure_runner()

    # ---- outputs ---------------------------------------------------------------------------
    def _on_push(self, ack: int, items: list) -> None:
        """The room processed our batches up to ``ack`` and sent ``items``."""
        unacked = self._unacked
        while unacked and unacked[0][0] <= ack:
            _, batch, inputs = unacked.popleft()
            self._inputs -= inputs
            for event in batch:
                if type(event) is Connect:
                    sock = self.sockets.get(event.conn)
                    if sock is not None:
                        sock.connected = True
        if items:
            self._dispatch_items(items)

    def _dispatch_items(self, items: list) -> None:
        sockets = self.sockets
        for item in items:
            tag = item[0]
            if tag == "splice":  # a frame: shared tail, a small head per connection
                tail = item[1]
                keyframe = protocol.tail_is_keyframe(tail)
                metrics.FRAME_BYTES.observe(len(tail))
                if self.ticked:  # assumes frames arrive within a tick of their boundary
                    metrics.FRAME_DELAY.observe((time.time() - self.tick_offset) % self.period)
                writers, size, frames, sent = self.writers, len(tail), 0, 0
                for conn_id, head in item[2]:
                    # The direct path (starhold.wsdirect.FrameWriter) without visiting the socket
                    # and its response, writer and queue objects: cold in the cache at this rate.
                    fast = writers.get(conn_id)  # (fast.plain and fast.ok(), inlined)
                    if fast is not None and fast.plain and not fast.protocol._paused and not fast.writer._closing:
                        transport = fast.transport
                        if not transport.is_closing():
                            n = len(head) + size
                            try:
                                transport.write(b"".join((binary_frame_header(n), head, tail)))
                            except (ConnectionError, RuntimeError):
                                pass  # (as write_binary_parts_now: the socket's own path decides)
                            else:
                                frames += 1
                                sent += n
                                continue
                    sock = sockets.get(conn_id)
                    if sock is not None:
                        sock.deliver_spliced(head, tail, keyframe)
                if frames:
                    traffic = metrics.TRAFFIC
                    traffic.messages_out += frames
                    traffic.bytes_out += sent
            elif tag == "send":
                data = item[2]
                for conn_id in item[1]:
                    sock = sockets.get(conn_id)
                    if sock is not None:
                        sock.deliver(data)
            elif tag == "stats":
                metrics.ROOM_STATS[item[1]] = item[2]
                self.tick_reports.observe(item[2])
            elif tag == "close":
                sock = self._pop_socket(item[1])
                if sock is not None:
                    sock.connected = False
                    sock.close_soon(item[2], item[3])
            elif tag == "hibernate":
                self._hibernated = True  # the channel ends next
            elif tag == "moved":  # precedes "hibernate": the room is moving off its node (drain)
                self._moved = True

    async def stop(self) -> None:
        self._stopped = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        if self._mark_timer is not None:
            self._mark_timer.cancel()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
        if self._channel is not None:
            self._channel.close()

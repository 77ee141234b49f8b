"""The room's end of its data channels: client traffic between gateways and one activation.

Ray places rooms and runs their lifecycle; the traffic of their players does not go through
Ray calls. A gateway asks the room for a channel with one Ray call (``RoomHandle.open_channel``,
which also wakes the room) and then connects to the room's process over TCP, to the address it
was given. From then on both directions are plain msgpack over that connection:

- gateway -> room: ``["hello", gateway_id, secret]`` once, then ``[batch_no, events]``: a
  batch of the typed events of ``starhold._runtime.events``, ``events`` their msgpack bytes as
  a ``bin`` (``encode_batch``, ``decode_events``; the harness pushes its events through the
  same codec). Batch numbers rise by one per batch and survive reconnections.
- room -> gateway: ``[ack, items]``: ``ack`` is the last batch the room has processed and
  made durable (committed; and replicated off the node when its store replicates,
  ``starhold._runtime.replication``), and
  ``items`` what the room addressed to that gateway since the last push (``handle.pull``'s
  items: ``send``, ``splice``, ``close``, ``stats``, ``hibernate``). The room pushes as soon as
  a hook's output is released: a tick's frames leave right after the tick. The acknowledgement
  of a batch of inputs alone rides on the next push, at most ``ACK_LINGER`` (50 ms) later: a
  ticked room's frame carries the acks of the batches sent at the tick's flush points; a batch
  with a connect, close or check is acknowledged at once.

**Heartbeat.** The room pushes at least every ``HEARTBEAT_INTERVAL`` seconds on each channel
(an empty ``[ack, []]`` when it has nothing else to say); a gateway that hears nothing for
``gateway.room_channel.CHANNEL_TIMEOUT`` seconds drops the channel as if the room had crashed
(a node that vanished without closing its connections: a partition, a power loss), resolves the
room again, and its sockets are checked against the new activation.

**In process.** When the gateway runs in the room's own process, on the same event loop (the
in-process host of ``starhold serve --host-mode local`` and of the test harness), the channel
joins in process instead (``in_process_server``, ``ChannelServer.join_in_process``): the
gateway's batches reach the room as the event objects themselves and the room's pushes reach
the gateway as ``(ack, items)``, each handed over on the next turn of the loop
(``loop.call_soon``), in order, with no TCP, no msgpack and no secret on the wire. Everything
else is the channel above: batch numbers, acknowledgements, heartbeats, the end with the
activation. ``channel_info`` names the process (``"process"``: ``PROCESS``, random per
process); a gateway elsewhere ignores it and connects over TCP.

**Input barrier.** A gateway that has sockets in a ticked room marks each tick boundary it has
sent everything for: at the tick's last flush point (``gateway.room_link``) it writes
``["mark", boundary]`` (``boundary``: the tick boundary, Unix seconds) after that tick's last
batch, whether or not it had inputs. A room that announces ``"marks": True`` in its
``channel_info`` reads marks in order with the batches; when its alarm for a tick boundary falls
due, before it takes the input gate, it waits until every channel that marks and whose gateway
holds a connection in the room has marked that boundary (a mark at least half a tick before it
counts as the previous tick's), at most ``INPUT_BARRIER_TIMEOUT`` seconds. A batch a busy
gateway (or this busy process) delivers a few milliseconds after the boundary is thus applied
in its tick instead of the next one, 100 ms later at 10 Hz. A channel that never marked (the
harness, a gateway of an earlier version) is not waited for, nor is anyone when the room's
clock is not the wall clock (``Clock.wall``: a ``ManualClock`` in tests), so tests drive ticks
exactly as before. The room's tick report (``starhold._runtime.stats.TickStats``, on the
gateways' ``/metrics``) counts the ticks that waited, those that gave up, and the time waited.

A channel belongs to one activation and ends with it: after ``("hibernate",)`` when the room
went to sleep, without it when the activation crashed or was fenced. The gateway then sends
the batches it has not seen acknowledged to the next activation (they were not applied, or
the activation that applied them is gone with its uncommitted state).

Why: on this machine a Ray actor call costs a room actor ~0.3 ms of CPU and the caller about as
much again; with one call per tick per gateway per room (2 gateways, 10 rooms of 100 players)
Ray's bookkeeping was most of the rooms' CPU. A push over a socket costs a few microseconds.
The channel's ``secret`` (random per activation, handed out through Ray) keeps anything but a
gateway that asked Ray from talking to the room.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import itertools
import logging
import secrets
import socket
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

import msgpack
import msgspec

from .. import protocol
from .events import Connect, Message, decode_events
from .handle import RoomGone

if TYPE_CHECKING:
    from .runtime import RoomRuntime

log = logging.getLogger("starhold.room")
_MESSAGE = itertools.repeat(Message)  # all(map(isinstance, events, _MESSAGE)): is every event a Message

MAX_CHANNEL_BUFFER = 64 * 1024 * 1024
"""Bytes of unread input a channel holds (msgpack's ``max_buffer_size``); a gateway that
sends more without the room reading it is disconnected."""
HEARTBEAT_INTERVAL = 1.0
"""Seconds of silence after which the room pushes an empty ``[ack, []]`` on a channel."""
ACK_LINGER = 0.05
"""Seconds the acknowledgement of a batch of inputs alone (no connect, close or check) may wait
for a push with output to ride on before it is pushed alone. A ticked room's frame leaves within
a few milliseconds of the flush points where gateways send its inputs, so its frame carries the
acks of the tick's batches and no push goes out for an acknowledgement alone."""
INPUT_BARRIER_TIMEOUT = 0.02
"""Seconds a tick waits at most, past its boundary, for the marks of the gateways whose players
are in the room (the input barrier); a gateway later than that has its batch applied in the
next tick, and the tick goes on without it."""
WRITE_HIGH_WATER = 1024 * 1024
"""Bytes buffered towards a gateway before pushes pause (items wait in the room's outbox,
which is bounded) until the gateway reads again."""


PROCESS = secrets.token_hex(8)
"""This process's token in ``channel_info`` (``"process"``): a gateway that sees its own token
there (and finds the channel's server on its running loop) joins the channel in process."""
_SERVERS: "weakref.WeakValueDictionary[str, ChannelServer]" = weakref.WeakValueDictionary()
"""The listening channel servers of this process, by secret."""


def in_process_server(info: dict) -> "ChannelServer | None":
    """The channel server ``info`` (``RoomHandle.open_channel``) describes when it lives in this
    process, is still open and runs on the caller's event loop (so it can be joined in
    process); None otherwise (connect over TCP)."""
    if info.get("process") != PROCESS:
        return None
    server = _SERVERS.get(info.get("secret", ""))
    if server is None or server.closed or server.loop is not asyncio.get_running_loop():
        return None
    return server


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_PUSH_ENCODER = msgspec.msgpack.Encoder()
"""Encodes pushes: ``[ack, items]`` of tuples, lists, str, bytes, ints, floats and maps."""


class ChannelServer:
    """The data channels of one activation: a TCP server on ``host`` (the node's address;
    127.0.0.1 for the in-process host), started on the first ``address()`` call, and at most
    one channel per gateway (a newer one replaces an older)."""

    def __init__(self, runtime: "RoomRuntime", host: str):
        self.runtime = runtime
        self.host = host
        self.secret = secrets.token_hex(16)
        self._server: asyncio.AbstractServer | None = None
        self._starting: asyncio.Future | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self.channels: dict[str, _Channel] = {}
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._marks_changed: asyncio.Future | None = None  # a tick waiting for marks

    async def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to; starts the server on first use."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)
        return self.host, self._server.sockets[0].getsockname()[1]

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Channel(self), self.host, 0, backlog=128)
        self._heartbeat = loop.call_later(HEARTBEAT_INTERVAL, self._beat)
        self.loop = loop
        _SERVERS[self.secret] = self

    def join_in_process(self, gateway_id: str, receive_push: Callable[[int, list], None],
                        connection_lost: Callable[[Any], None]) -> "InProcessPipe":
        """Open ``gateway_id``'s channel in process (see the module docstring): the room calls
        ``receive_push(ack, items)`` for each push and ``connection_lost(None)`` once at the end,
        each on a later turn of the loop. Returns the pipe whose ``send(batch_no, events)``
        hands a batch to the room and whose ``close()`` ends the channel. Raises
        ``ConnectionError`` when the server is closed."""
        if self.closed:
            raise ConnectionError("the room's channel server is closed")
        channel = _InProcessChannel(self)
        pipe = InProcessPipe(self.loop, channel, receive_push, connection_lost)
        channel.connection_made(pipe)
        channel._hello(["hello", gateway_id, self.secret])
        return pipe

    def _beat(self) -> None:
        """Push an empty ``[ack, []]`` on every channel silent for ``HEARTBEAT_INTERVAL``."""
        if self.closed:
            return
        now = time.monotonic()
        for channel in list(self.channels.values()):
            if now - channel.pushed_at >= HEARTBEAT_INTERVAL:
                channel.push(heartbeat=True)
        self._heartbeat = asyncio.get_running_loop().call_later(HEARTBEAT_INTERVAL, self._beat)

    async def await_marks(self, boundary: float, tolerance: float, timeout: float | None = None) -> bool | None:
        """The input barrier (see the module docstring): wait until every channel that marks,
        of a gateway holding a connection in the room, has marked ``boundary`` (Unix seconds;
        a mark at or after ``boundary - tolerance`` counts), at most ``timeout`` seconds
        (default ``INPUT_BARRIER_TIMEOUT``). Returns None at once when no channel is late; else,
        after waiting, True when every mark came and False when it gave up (a gateway, or its
        channel, is late)."""
        floor = boundary - tolerance
        late = self._late(floor)
        if not late:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (INPUT_BARRIER_TIMEOUT if timeout is None else timeout)
        while late:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = self._marks_changed = loop.create_future()
            timer = loop.call_later(remaining, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if self._marks_changed is waiter:
                    self._marks_changed = None
            late = self._late(floor)
        return True

    def _late(self, floor: float) -> list:
        """The channels that mark, have not marked ``floor`` or later and whose gateway holds a
        connection in the room."""
        late = [c for c in self.channels.values() if c.marked is not None and c.marked < floor and not c.gone]
        if late:
            playing = self.runtime.gateways_with_connections()
            late = [c for c in late if c.gateway_id in playing]
        return late

    def marks_changed(self) -> None:
        """A channel marked a boundary or ended: a waiting tick looks again."""
        if self._marks_changed is not None:
            _resolve(self._marks_changed)

    def notify_all(self) -> None:
        """Commits became durable: push the acknowledgements they release."""
        for channel in self.channels.values():
            if channel.unacked:
                channel.schedule()

    def notify(self, gateway_id: str) -> None:
        """Output for ``gateway_id`` is waiting in the outbox: push it soon (once per loop turn)."""
        channel = self.channels.get(gateway_id)
        if channel is not None:
            channel.schedule()

    async def close(self, flush: bool = True) -> None:
        """End every channel (after pushing what is waiting, unless ``flush`` is False: a crash)
        and stop listening."""
        self.closed = True
        if _SERVERS.get(self.secret) is self:
            del _SERVERS[self.secret]
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for channel in list(self.channels.values()):
            if flush:
                channel.push()
            channel.end(abort=not flush)
        self.channels.clear()
        if self._server is not None:
            self._server.close()


class _Channel(asyncio.Protocol):
    """One gateway's channel: reads batches, applies them in order, pushes output."""

    def __init__(self, server: ChannelServer):
        self.server = server
        self.runtime = server.runtime
        self.gateway_id: str | None = None
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_CHANNEL_BUFFER)
        self.batches: collections.deque = collections.deque()
        self.worker: asyncio.Task | None = None
        self.waiting: asyncio.Future | None = None  # the worker awaits it while no batch is queued
        self.ack = 0
        self.acked = 0  # the ack last pushed
        self.unacked: collections.deque = collections.deque()  # (commit mark, batch_no) not yet durable
        self.scheduled = False
        self.ack_timer: asyncio.TimerHandle | None = None  # a lingering acknowledgement (ACK_LINGER)
        self.paused = False
        self.gone = False
        self.pushed_at = time.monotonic()
        self.marked: float | None = None  # the last tick boundary the gateway marked (None: it does not mark)

    # ---- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        set_nodelay(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.server.closed:
            transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            for obj in self.unpacker:
                if self.gateway_id is None:
                    self._hello(obj)
                else:
                    batch_no, events = obj
                    if batch_no == "mark":  # a tick boundary the gateway sent everything for
                        self.batches.append((None, float(events)))
                    else:
                        self.batches.append((int(batch_no), decode_events(events)))
        except Exception as exc:  # a buggy or foreign peer: drop it, the room goes on
            log.warning("room %s: bad channel input (%s); channel closed", self.runtime.key, exc)
            self.end(abort=True)
            return
        self._start_work()

    def _start_work(self) -> None:
        """Have the worker apply the queued batches: wake it if it waits for them, else start it."""
        if not self.batches:
            return
        if self.worker is None or self.worker.done():
            self.worker = asyncio.ensure_future(self._work())
        elif self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)

    def _hello(self, obj) -> None:
        if not (isinstance(obj, list) and len(obj) == 3 and obj[0] == "hello"
                and isinstance(obj[2], str) and hmac.compare_digest(obj[2], self.server.secret)):
            raise ValueError("bad hello")
        self.gateway_id = str(obj[1])
        old = self.server.channels.get(self.gateway_id)
        if old is not None:
            old.end(abort=True)
        self.server.channels[self.gateway_id] = self
        self.schedule()  # what waited in the outbox before this channel opened

    def connection_lost(self, exc) -> None:
        self.gone = True
        if self.gateway_id is not None and self.server.channels.get(self.gateway_id) is self:
            del self.server.channels[self.gateway_id]
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
        self.server.marks_changed()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.schedule()

    # ---- input -----------------------------------------------------------------------------
    async def _work(self) -> None:
        """Apply the batches in order. A batch is acknowledged once processed; one that fails
        with a storage error (the room was reset) closes its connections (1011). Stops at the
        end of the activation, leaving the rest unacknowledged (the gateway resends them). A
        mark (batch number None) records its boundary once the batches before it are applied."""
        while not self.gone:
            if not self.batches:  # wait for more (one worker task per channel, not one per batch)
                self.waiting = asyncio.get_running_loop().create_future()
                try:
                    await self.waiting
                finally:
                    self.waiting = None
                continue
            batch_no, events = self.batches.popleft()
            if batch_no is None:
                self.marked = events
                self.server.marks_changed()
                continue
            try:
                await self.runtime.dispatch(self.gateway_id, events)
            except RoomGone:
                self.batches.clear()
                return
            except Exception:  # e.g. StorageError: the room was reset, the batch is lost
                log.exception("room %s: batch from %s failed", self.runtime.key, self.gateway_id)
                conns = {e.conn for e in events if isinstance(e, (Connect, Message))}
                self.runtime.deliver_to(self.gateway_id, [
                    ("close", c, protocol.CLOSE_INTERNAL_ERROR, "room error") for c in sorted(conns)])
            self.unacked.append((self.runtime.ack_mark(), batch_no))
            if all(map(isinstance, events, _MESSAGE)):  # inputs alone: their ack can ride
                self._ack_soon()
            else:
                self.schedule()

    # ---- output ----------------------------------------------------------------------------
    def _ack_soon(self) -> None:
        """Push the acknowledgement with the next push, at most ``ACK_LINGER`` from now."""
        if not self.scheduled and self.ack_timer is None and not self.gone:
            self.ack_timer = asyncio.get_running_loop().call_later(ACK_LINGER, self._ack_due)

    def _ack_due(self) -> None:
        self.ack_timer = None
        self.push()

    def schedule(self) -> None:
        if not self.scheduled and not self.gone and self.gateway_id is not None:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.push)

    def push(self, heartbeat: bool = False) -> None:
        """Write ``[ack, items]`` with everything waiting for this gateway (unless paused);
        with ``heartbeat``, even when there is nothing new."""
        self.scheduled = False
        if self.gone or self.paused or self.transport is None or self.gateway_id is None:
            return
        if self.unacked:
            durable = self.runtime.durable_mark()
            while self.unacked and self.unacked[0][0] <= durable:
                self.ack = self.unacked.popleft()[1]
        items = self.runtime.take_output(self.gateway_id)
        if not items and self.ack == self.acked and not heartbeat:
            return
        self.acked = self.ack
        self.pushed_at = time.monotonic()
        if self.ack_timer is not None:  # the acknowledgement rides on this push
            self.ack_timer.cancel()
            self.ack_timer = None
        self._write_push(self.ack, items)

    def _write_push(self, ack: int, items: list) -> None:
        try:  # for these items msgspec writes msgpack.packb(use_bin_type=True)'s bytes, ~3x faster
            data = _PUSH_ENCODER.encode((ack, items))
        except (TypeError, OverflowError):  # not one of them: msgpack's rules (it raises if it cannot)
            data = msgpack.packb([ack, items], use_bin_type=True)
        self.transport.write(data)

    def end(self, abort: bool = False) -> None:
        self.gone = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)  # the idle worker ends
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()  # after the buffered pushes


class _InProcessChannel(_Channel):
    """A gateway's channel joined in process: batches arrive as event objects
    (``InProcessPipe.send``), pushes leave as ``(ack, items)`` on the next loop turn."""

    def _write_push(self, ack: int, items: list) -> None:
        self.transport.push(ack, items)

    def accept(self, batch_no: int | None, events) -> None:
        """A batch from the gateway: its typed events (``starhold._runtime.events``), in order;
        with ``batch_no`` None, a mark: ``events`` is the tick boundary (Unix seconds)."""
        if not self.gone:
            self.batches.append((batch_no, events))
            self._start_work()


class InProcessPipe(asyncio.Transport):
    """Both ends of one in-process channel (see the module docstring): the room's
    ``_InProcessChannel`` sees it as its transport; the gateway sends batches with ``send``
    and ends it with ``close``. Every hand-over to the other side happens on a later turn of
    ``loop`` (``call_soon``, first in first out), so neither side runs inside the other's
    callback, and the end reaches each side after what was sent before it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, channel: _InProcessChannel,
                 receive_push: Callable[[int, list], None], connection_lost: Callable[[Any], None]):
        super().__init__()
        self.loop = loop
        self.channel = channel
        self.receive_push = receive_push
        self.gateway_lost = connection_lost
        self.closed = False

    def send(self, batch_no: int, events: list) -> None:
        """Hand ``[batch_no, events]`` to the room (dropped once the pipe is closed)."""
        if not self.closed:
            self.loop.call_soon(self.channel.accept, batch_no, events)

    def mark(self, boundary: float) -> None:
        """Hand the mark of tick ``boundary`` (Unix seconds) to the room, after the batches
        sent before it."""
        if not self.closed:
            self.loop.call_soon(self.channel.accept, None, boundary)

    def push(self, ack: int, items: list) -> None:
        if not self.closed:
            self.loop.call_soon(self.receive_push, ack, items)

    def close(self) -> None:
        """End the channel, either side: each side's ``connection_lost(None)`` follows what
        was handed over before."""
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.channel.connection_lost, None)
            self.loop.call_soon(self.gateway_lost, None)

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass  # the gateway side takes each push as it comes: nothing is buffered


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)

"""The gateway's end of a room's data channel (wire format in ``starhold._runtime.channel``).

A ``RoomChannel`` is one TCP connection from this gateway process to one room activation:
``send(batch_no, events)`` writes a batch, and every ``[ack, items]`` the room pushes is handed
to ``on_push(ack, items)`` from the transport callback, without a task switch, so a tick's
frames fan out to the sockets as soon as their bytes arrive. ``on_lost(channel)`` is called
once when the connection ends, whoever ended it.

Batches go in the format the room announces in its channel info: events nested as msgpack
bytes (``"events": "bin"``), else the plain array a room of an earlier version reads
(``starhold._runtime.events.encode_batch``). ``mark(boundary)`` writes a tick mark (the input
barrier, ``starhold._runtime.channel``) when the room announces ``"marks": True``, and nothing
otherwise (``marks`` says which).

When the room lives in this process, on this event loop, ``open`` joins its channel in process
(``InProcessRoomChannel``; ``starhold._runtime.channel``'s "In process"): the same calls and
callbacks, with the batches and pushes handed over as objects on the next loop turn instead of
msgpack over TCP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import msgpack
import msgspec

from .._runtime.channel import MAX_CHANNEL_BUFFER, InProcessPipe, in_process_server, set_nodelay
from .._runtime.events import encode_batch

log = logging.getLogger("starhold.gateway")

_MARK_ENCODER = msgspec.msgpack.Encoder()

CHANNEL_TIMEOUT = 5.0
"""Seconds without a push from the room (it pushes at least every
``starhold._runtime.channel.HEARTBEAT_INTERVAL``) after which the channel is dropped as dead."""
CONNECT_TIMEOUT = 5.0
"""Seconds to connect to a room's channel before giving up (the room is then resolved again)."""


class RoomChannel(asyncio.Protocol):
    """One data channel to a room activation (see the module docstring)."""

    def __init__(self, on_push: Callable[[int, list], None], on_lost: Callable[["RoomChannel"], None]):
        self.on_push = on_push
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_CHANNEL_BUFFER)
        self.lost = False
        self.epoch = 0
        self.nested = True  # the room reads events nested as bytes (``channel_info``'s "events": "bin")
        self.marks = False  # the room reads tick marks (``channel_info``'s "marks": True)
        self.heard_at = time.monotonic()
        self._watchdog: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, info: dict, gateway_id: str, on_push, on_lost, in_process: bool = True) -> "RoomChannel":
        """Connect to the channel described by ``info`` (``RoomHandle.open_channel``) and say
        hello; join it in process instead when the room is in this process on this loop
        (unless ``in_process`` is False). Raises ``OSError`` (``ConnectionError`` when an
        in-process room's channels are closed) or ``asyncio.TimeoutError`` when the room
        cannot be reached."""
        server = in_process_server(info) if in_process else None
        if server is not None:
            return InProcessRoomChannel.join(server, info, gateway_id, on_push, on_lost)
        loop = asyncio.get_running_loop()
        _, channel = await asyncio.wait_for(
            loop.create_connection(lambda: cls(on_push, on_lost), info["host"], int(info["port"])), CONNECT_TIMEOUT)
        channel.epoch = int(info["epoch"])
        channel.nested = info.get("events") == "bin"
        channel.marks = info.get("marks") is True
        channel.transport.write(msgpack.packb(["hello", gateway_id, info["secret"]], use_bin_type=True))
        return channel

    def send(self, batch_no: int, events: list, mark: float | None = None) -> None:
        """Write one batch (``starhold._runtime.events``, in order), and with ``mark`` the
        mark of that boundary after it in the same write (``mark()``): one system call, and
        one wake-up of the room's process, for a tick's last batch and its mark."""
        if self.transport is not None and not self.lost:
            data = encode_batch(batch_no, events, self.nested)
            if mark is not None and self.marks:
                data += _MARK_ENCODER.encode(("mark", mark))
            self.transport.write(data)

    def mark(self, boundary: float) -> None:
        """Write the mark of the tick ending at ``boundary`` (Unix seconds): every batch for
        it was sent before (nothing when the room does not read marks)."""
        if self.marks and self.transport is not None and not self.lost:
            self.transport.write(_MARK_ENCODER.encode(("mark", boundary)))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        set_nodelay(transport)
        self.heard_at = time.monotonic()
        self._watchdog = asyncio.get_running_loop().call_later(1.0, self._watch)

    def _watch(self) -> None:
        """Drop the channel when the room has been silent for ``CHANNEL_TIMEOUT`` seconds."""
        if self.lost:
            return
        silent = time.monotonic() - self.heard_at
        if silent > CHANNEL_TIMEOUT:
            log.warning("room channel silent for %.1f s (the room's node is unreachable?); dropping it", silent)
            self.transport.abort()
            return
        self._watchdog = asyncio.get_running_loop().call_later(1.0, self._watch)

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        try:
            self.unpacker.feed(data)
            for ack, items in self.unpacker:
                self.on_push(ack, items)
        except Exception:
            log.exception("bad data from a room channel; closing it")
            self.transport.abort()

    def connection_lost(self, exc) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if not self.lost:
            self.lost = True
            self.on_lost(self)


class InProcessRoomChannel(RoomChannel):
    """A ``RoomChannel`` joined in process (``ChannelServer.join_in_process``): ``send`` hands
    the batch's events to the room as they are, and each push arrives as ``(ack, items)``. No
    silence watchdog: the room runs on this very loop."""

    transport: InProcessPipe

    @classmethod
    def join(cls, server, info: dict, gateway_id: str, on_push, on_lost) -> "InProcessRoomChannel":
        channel = cls(on_push, on_lost)
        channel.epoch = int(info["epoch"])
        channel.marks = info.get("marks") is True
        channel.transport = server.join_in_process(gateway_id, channel._receive_push, channel.connection_lost)
        return channel

    def send(self, batch_no: int, events: list, mark: float | None = None) -> None:
        if not self.lost:
            self.transport.send(batch_no, events)
            if mark is not None and self.marks:
                self.transport.mark(mark)

    def mark(self, boundary: float) -> None:
        if self.marks and not self.lost:
            self.transport.mark(boundary)

    def _receive_push(self, ack: int, items: list) -> None:
        if not self.lost:
            self.heard_at = time.monotonic()
            self.on_push(ack, items)

"""A client connected to a room through the harness (``starhold.harness``): what the room sent
it, and sending it messages as a real client would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from . import protocol
from .errors import ConnectionClosed
from ._runtime.events import Close, Message
from .messages import kind_schemas, parse_client_message

if TYPE_CHECKING:
    from .harness import RoomHarness

__all__ = ["FakeConnection", "NEXT_MESSAGE_TIMEOUT"]

NEXT_MESSAGE_TIMEOUT = 5.0
"""Default seconds (real time) ``FakeConnection.next_message`` waits for a message."""
PULL_SLICE = 0.5
"""Longest single wait of ``next_message`` on the room's output, seconds (other harness calls
collect in between)."""


@dataclass
class FakeConnection:
    """A client connected through the harness. ``received``: every message the room sent it,
    in order, msgpack-decoded when possible (else bytes); ``close_code``/``close_reason`` once
    the room (or the test) closed it. ``next_message()`` reads ``received`` one message at a
    time, waiting for the next."""

    harness: "RoomHarness"
    id: str
    received: list = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    read: int = 0
    """How many messages of ``received`` ``next_message`` has returned or skipped."""
    seq: int = 0
    """The sequence number of the last message sent (``send`` numbers them from the connect's)."""

    async def next_message(self, where: Callable[[Any], bool] | None = None,
                           timeout: float = NEXT_MESSAGE_TIMEOUT) -> Any:
        """The next message the room sent this connection that ``next_message`` has not
        returned yet (``received[read]``), waiting up to ``timeout`` seconds of real time for it
        (like ``waitForMessage`` of ``@colyseus/testing``). With ``where``, messages for which
        ``where(message)`` is false are skipped (consumed). Messages stay in ``received``.

        It collects the room's output itself, so it also sees what the room sent outside a
        harness call (a timer, the alarm, another task). Raises ``TimeoutError`` when nothing
        (matching) came in time (``timeout=0``: look once, do not wait) and ``ConnectionClosed``
        when the connection is closed and every message sent before the close was read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first = True
        while True:
            while self.read < len(self.received):
                message = self.received[self.read]
                self.read += 1
                if where is None or where(message):
                    return message
            if self.close_code is not None:
                raise ConnectionClosed(self.id, self.close_code, self.close_reason)
            remaining = deadline - loop.time()
            if remaining <= 0 and not first:
                raise TimeoutError(f"no message for {self.id} within {timeout} s")
            first = False
            if not await self.harness.collect(wait=max(0.0, min(remaining, PULL_SLICE))) and remaining > 0:
                await asyncio.sleep(min(remaining, 0.02))  # the room sleeps: let others wake it

    async def send(self, type_: str, payload: dict | None = None, seq: int | None = None) -> None:
        """Send the client message ``[type_, seq, payload]`` as a real client would, and
        collect the output. ``seq`` defaults to the previous one plus one.

        The message is validated as the gateway validates it (``starhold.messages``, against
        the kind's ``Room.messages``): an invalid one never reaches the room, and the gateway's
        error frame (``["error", seq, {"code", "message"}]``; codes 1-4, 6 for a ``join``) is
        appended to ``received``. A ``ping`` is answered with a ``pong`` (``{"time": 0.0}``)
        without involving the room. A valid message reaches ``on_message`` as a
        ``ClientMessage`` whose payload is the declared Struct.

        Raises ``StorageError`` when the hook's commit failed (the room was reset to its
        committed state and the hook's held output dropped; what it sent with
        ``allow_unconfirmed=True`` is in ``received``), ``ActivationKilled`` when a
        ``faults.kill`` fired (the activation has been crashed)."""
        self.seq = self.seq + 1 if seq is None else seq
        data = protocol.encode(type_, self.seq, {} if payload is None else payload)
        try:
            message = parse_client_message(data, kind_schemas(self.harness.room_class))
        except protocol.ProtocolError as exc:
            self.received.append([protocol.ERROR, exc.seq, {"code": exc.code, "message": str(exc)}])
            return
        if message.type == protocol.PING:
            self.received.append([protocol.PONG, message.seq, {"time": 0.0}])
        elif message.type == protocol.JOIN:
            self.received.append([protocol.ERROR, message.seq, {"code": protocol.ERR_ALREADY_JOINED,
                                                                "message": "already joined"}])
        else:
            await self.harness._dispatch([Message(self.id, message)])

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side (``on_close``)."""
        await self.harness._dispatch([Close(self.id, code, reason)])
        self.close_code, self.close_reason = code, reason

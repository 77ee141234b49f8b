"""A player's connection as a room sees it (PartyServer ``Connection``, DO hibernatable socket)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack

__all__ = ["as_bytes", "Connection", "MAX_ATTACHMENT_BYTES"]

if TYPE_CHECKING:
    from ._runtime.runtime import RoomRuntime

MAX_ATTACHMENT_BYTES = 2048
"""Largest serialised attachment (msgpack), bytes."""


class Connection:
    """One client connection to a room.

    ``id`` is unique per room and stable for the socket's life; ``gateway_id`` names the gateway
    process holding the socket; ``tags`` are set by the room for ``Room.get_connections(tag)``;
    ``attachment`` is a small msgpack-serialisable dict (at most 2 KiB) kept with the connection.
    """

    __slots__ = ("id", "gateway_id", "tags", "_attachment", "_runtime", "closed")

    def __init__(self, conn_id: str, gateway_id: str, runtime: "RoomRuntime"):
        self.id = conn_id
        self.gateway_id = gateway_id
        self.tags: set[str] = set()
        self._attachment: dict | None = None
        self._runtime = runtime
        self.closed = False

    @property
    def attachment(self) -> dict | None:
        return self._attachment

    @attachment.setter
    def attachment(self, value: dict | None) -> None:
        """Raises ``ValueError`` if ``value`` is not msgpack-serialisable or exceeds 2 KiB."""
        if value is not None:
            try:
                size = len(msgpack.packb(value, use_bin_type=True))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"attachment is not msgpack-serialisable: {exc}") from None
            if size > MAX_ATTACHMENT_BYTES:
                raise ValueError(f"attachment is {size} bytes; the limit is {MAX_ATTACHMENT_BYTES}")
        self._attachment = value

    def send(self, message: Any, *, allow_unconfirmed: bool = False) -> None:
        """Queue ``message`` (bytes as is, anything else msgpack-encoded) for this client.

        Held by the output gate until the current hook's storage writes are durable, unless
        ``allow_unconfirmed`` (use it for 10 Hz position frames).
        """
        if not self.closed:
            self._runtime.emit((self,), as_bytes(message), allow_unconfirmed)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the client's socket with a WebSocket close ``code`` and ``reason`` (released
        through the output gate like a message)."""
        if not self.closed:
            self.closed = True
            self._runtime.emit_close(self, code, reason)

    def __repr__(self) -> str:
        return f"<Connection {self.id} via {self.gateway_id}>"


def as_bytes(message: Any) -> bytes:
    """``message`` as bytes: bytes as is, anything else msgpack-encoded."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    return msgpack.packb(message, use_bin_type=True)

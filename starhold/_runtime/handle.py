"""How the gateway and the tests reach rooms, whatever hosts them (DESIGN §4).

``RoomDirectory.get(kind, room_id, params)`` returns a ``RoomHandle`` for the room, activating
it if it sleeps. A handle whose room has hibernated or died raises ``RoomGone``; the caller asks
the directory again, which wakes the room (possibly in another process or on another node).

Events sent with ``send_batch`` are the typed events of ``starhold._runtime.events``
(``Connect``, ``Message``, ``Close``, ``Check``), applied in order under the room's input
gate. ``pull`` returns outbound items for one gateway: ``("send", conn_ids: tuple[str, ...],
data: bytes)``, ``("splice", tail: bytes, ((conn_id, head: bytes), ...))``, ``("close",
conn_id, code, reason)``, ``("stats", room_key, report)``, or ``("hibernate",)``: the room went
to sleep; its connections on this gateway are held (keep the sockets open) and come back with
the room.
Gateways carry their players' traffic over a data channel instead (``open_channel``,
``starhold._runtime.channel``): the same events and items, without a Ray call each.
"""

from __future__ import annotations

import abc
from typing import Any

from ..room import HttpRequest, HttpResponse
from .events import Close, Connect


class RoomGone(Exception):
    """The room's activation has hibernated, exited or died; resolve the room again."""


class RoomHandle(abc.ABC):
    """A reference to one room activation (Ray actor or in-process runtime)."""

    kind: str
    room_id: str

    @abc.abstractmethod
    async def send_batch(self, gateway_id: str, events: list) -> int:
        """Deliver client events in order, in one call; returns the activation's epoch.
        Raises ``RoomGone``."""

    @abc.abstractmethod
    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        """Outbound items for ``gateway_id``; waits up to ``timeout`` seconds for the first one
        (returns [] on timeout). Raises ``RoomGone``, also when the activation is not the one of
        ``epoch`` (as returned by ``send_batch``)."""

    @abc.abstractmethod
    async def open_channel(self, gateway_id: str) -> dict:
        """Where ``gateway_id`` connects for the activation's data channel (``starhold._runtime.channel``):
        ``{"host": str, "port": int, "secret": str, "epoch": int, "process": str, "events": "bin"}``
        (``process`` names the room's process, for a gateway there to join in process;
        ``events``: the room reads batches whose events are nested msgpack bytes, absent in a
        room of an earlier version). Wakes the room. Raises ``RoomGone``."""

    @abc.abstractmethod
    async def request(self, request: HttpRequest) -> HttpResponse:
        """An HTTP request to the room's ``on_request``. Raises ``RoomGone``."""

    @abc.abstractmethod
    async def stats(self) -> dict[str, Any]:
        """Runtime figures: connections, epoch, commits, ticks... Raises ``RoomGone``."""

    async def hibernate(self) -> bool:
        """Hibernate the room now (snapshot, connections held); ops drain and tests."""
        raise NotImplementedError

    async def fire_alarm(self) -> bool:
        """Deliver the room's pending alarm now, whatever its time (tests); False if none."""
        raise NotImplementedError

    async def connect(self, gateway_id: str, conn_id: str, payload: dict, seq: int = 0,
                      identity: dict | None = None) -> None:
        """Shorthand for a one-event ``send_batch`` with a connect event; ``identity`` is the
        verified ``{"player", "name", "kind"}`` a gateway passes (see ``ConnectRequest``)."""
        await self.send_batch(gateway_id, [Connect(conn_id, dict(payload), seq, dict(identity or {}))])

    async def close(self, gateway_id: str, conn_id: str, code: int = 1000, reason: str = "") -> None:
        """Shorthand for a one-event ``send_batch`` with a close event."""
        await self.send_batch(gateway_id, [Close(conn_id, code, reason)])


class RoomDirectory(abc.ABC):
    """Finds or activates rooms by ``(kind, room_id)``."""

    def room_class(self, kind: str) -> type:
        """The ``Room`` subclass this directory runs for ``kind`` (the registry's,
        ``starhold.kinds.room_class``, unless the directory overrides it). Raises ``KeyError``
        for an unknown kind."""
        from ..kinds import room_class

        return room_class(kind)

    @abc.abstractmethod
    async def get(self, kind: str, room_id: str, params: dict | None = None) -> RoomHandle:
        """A handle on the room's live activation, creating or waking it with ``params``."""

    @abc.abstractmethod
    async def is_active(self, kind: str, room_id: str) -> bool:
        """Whether the room currently has a live activation (without waking it)."""

    @abc.abstractmethod
    async def get_if_active(self, kind: str, room_id: str) -> RoomHandle | None:
        """A handle on the room's live activation, or None; never wakes the room."""

    @abc.abstractmethod
    async def list_rooms(self) -> list[str]:
        """``kind/id`` of every room with a live activation."""

    async def start(self) -> None:
        """Start (or check on) background services, i.e. the alarm scheduler. Idempotent; the
        gateway calls it at startup and every ``MAINTAIN_INTERVAL`` seconds."""

    async def close(self) -> None:
        """Release the directory's resources (not the rooms)."""

"""Starhold: a Durable Object style room server for real-time multiplayer games, on Ray.

The framework's public names, for room authors::

    from starhold import Room, Connection, ConnectRequest, define_room

``Room`` and its request/response types (``starhold.room``), ``Connection``
(``starhold.connection``), the clocks (``starhold.clock``), ``define_room`` / ``load_rooms`` /
``room_kinds`` (``starhold.kinds``), the room services ``Ticker`` (the fixed-rate loop on the
alarm, ``starhold.ticker``) and ``Seats`` (seat holds, ``starhold.seats``), ``define_routes``
(``starhold.http``: HTTP routes of room kinds, with the rest of the gateway plugin API), and the
exceptions of ``starhold.errors``
(``starhold.StorageError``...). Each is imported on first access, so ``import starhold`` stays
light. Everything under ``starhold._runtime`` is private.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import errors as _errors  # light: it imports the classes' modules on first access

_PUBLIC = {
    "Room": "room", "ConnectRequest": "room", "HttpRequest": "room", "HttpResponse": "room",
    "AlarmInfo": "room", "Connection": "connection", "Clock": "clock", "SystemClock": "clock",
    "ManualClock": "clock", "define_room": "kinds", "load_rooms": "kinds", "room_kinds": "kinds",
    "Ticker": "ticker", "Seats": "seats", "define_routes": "http", "RoomCalls": "calls",
}

__all__ = [*_PUBLIC, *_errors.__all__]


def __getattr__(name: str) -> Any:
    """``starhold.<name>``: the public classes and functions above and the exceptions of
    ``starhold.errors`` (``errors.__all__``), imported on first access."""
    module = _PUBLIC.get(name)
    if module is not None:
        return getattr(importlib.import_module(f".{module}", __name__), name)
    if name in _errors.__all__:
        return getattr(_errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

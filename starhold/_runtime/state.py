"""The lifecycle of one activation (Orleans's activation states)."""

from __future__ import annotations

import enum


class ActivationState(enum.StrEnum):
    """Where an activation is in its life. ``NEW`` -> ``ACTIVE`` (``start`` ran ``on_start``)
    -> ``HIBERNATING`` -> ``HIBERNATED`` (snapshot published, connections held by the
    gateways); or from ``ACTIVE`` to ``CRASHED`` (killed: nothing more committed) or
    ``FENCED`` (a newer activation holds the room's epoch). Only ``ACTIVE`` serves events; any
    other state but ``NEW`` makes callers resolve the room again (``RoomGone``). A ``StrEnum``:
    each state equals its lower-case name (``"active"``), as ``stats()`` reports it."""

    NEW = "new"
    ACTIVE = "active"
    HIBERNATING = "hibernating"
    HIBERNATED = "hibernated"
    CRASHED = "crashed"
    FENCED = "fenced"

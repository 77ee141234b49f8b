"""Room kinds: which ``Room`` class serves each kind of room, and which kinds a server hosts.

A room kind is a ``Room`` subclass registered under its ``kind`` name with ``define_room``
(Colyseus's ``gameServer.define(name, Room)``)::

    from starhold import Room, define_room

    @define_room
    class CounterRoom(Room):
        kind = "counter"

What a kind declares lives on the class (``Room.messages``, ``tick_rate``, ``seat_hold``,
``max_players``, ``wake_on_http``; see ``starhold.room``), so subclasses inherit it. A module
of room kinds registers them when it is imported; ``load_rooms(["my_game.rooms"])`` imports
such modules (``starhold serve --rooms my_game.rooms``). Without ``--rooms`` a server hosts
the kinds of every installed package that names a module in the ``starhold.rooms`` entry
point group (Starhold's own game does: ``starhold = starhold.rooms.game`` in ``setup.py``).

Hosts in other processes (Ray actors, the alarm scheduler) receive the class itself (by
reference when its module is importable there, else by value), so only the process that
resolves a kind needs the registry.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import Iterable, TypeVar

from .messages import kind_schemas
from .room import Room

__all__ = ["ENTRY_POINT_GROUP", "define_room", "load_rooms", "room_class", "room_kinds"]

ENTRY_POINT_GROUP = "starhold.rooms"
"""Entry point group naming modules of room kinds, loaded when no module is given."""

R = TypeVar("R", bound=type[Room])

_KINDS: dict[str, type[Room]] = {}
_loaded_default = False
_lock = threading.Lock()


def define_room(cls: R) -> R:
    """Register ``cls`` (a ``Room`` subclass) under ``cls.kind`` and return it unchanged, so it
    works as a class decorator. Registering the same class again is a no-op; a different class
    under a kind already taken raises ``ValueError``, as does a ``kind`` that is not 1-32
    characters of ``[a-z0-9_-]`` or a class that is not a ``Room``; ``messages`` that are not a
    dict of type name -> ``msgspec.Struct`` subclass (or redeclare ``join``, ``ping`` or
    ``resync``) raise ``TypeError``, as does a ``batched`` that is not a (frozen)set of those
    message types."""
    if not (isinstance(cls, type) and issubclass(cls, Room)):
        raise ValueError(f"define_room expects a Room subclass, not {cls!r}")
    kind = cls.kind
    if not (isinstance(kind, str) and 1 <= len(kind) <= 32
            and all(c.isascii() and (c.islower() or c.isdigit() or c in "_-") for c in kind)):
        raise ValueError(f"{cls.__qualname__}.kind must be 1-32 characters of [a-z0-9_-], not {kind!r}")
    schemas = kind_schemas(cls)  # TypeError for messages that are not a map of type name -> msgspec.Struct
    batched = cls.batched
    if not isinstance(batched, (set, frozenset)) or not all(isinstance(t, str) and t in schemas for t in batched):
        raise TypeError(f"{cls.__qualname__}.batched must be a frozenset of its message types "
                        f"({sorted(schemas)}), not {batched!r}")
    with _lock:
        old = _KINDS.get(kind)
        if old is not None and old is not cls and _qualname(old) != _qualname(cls):
            raise ValueError(f"room kind {kind!r} is already {_qualname(old)}; cannot also be {_qualname(cls)}")
        _KINDS[kind] = cls
    return cls


def load_rooms(modules: Iterable[str] | None = None) -> dict[str, type[Room]]:
    """Import ``modules`` (dotted names), whose imports register their kinds, or, when
    ``modules`` is None, every module of the ``starhold.rooms`` entry point group. Returns
    every kind registered so far. Raises ``ImportError`` for a module that cannot be imported
    and ``ValueError`` when two modules claim the same kind. A module may also declare the HTTP
    routes of its kinds (``starhold.http.define_routes``): a gateway mounts every route
    function registered once its modules are loaded."""
    global _loaded_default
    if modules is None:
        if _loaded_default:  # imported already: skip the scan of the installed packages
            return room_kinds()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            importlib.import_module(ep.value.partition(":")[0])
        _loaded_default = True
    else:
        for name in modules:
            importlib.import_module(name)
    return room_kinds()


def room_kinds() -> dict[str, type[Room]]:
    """kind -> ``Room`` subclass, for every kind registered in this process."""
    with _lock:
        return dict(_KINDS)


def room_class(kind: str) -> type[Room]:
    """The ``Room`` subclass registered for ``kind``. The first lookup of a kind nobody
    registered loads the entry point group (``load_rooms()``) once. Raises ``KeyError`` for an
    unknown kind."""
    cls = _KINDS.get(kind)
    if cls is None and not _loaded_default:
        load_rooms()
        cls = _KINDS.get(kind)
    if cls is None:
        raise KeyError(kind)
    return cls


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"

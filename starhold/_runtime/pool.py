"""Which host process holds which room, on Ray: claims in the GCS's key-value store, and a pool
of pre-started hosts that take on a room's identity on demand.

Creating a Ray actor costs a new worker process (0.7-1.2 s here, seconds under load) and its
first reply comes about 200 ms after its constructor ran. A room that wakes on an actor that is
already running (a *host*, ``ray_host.RoomHost``) skips both. Hosts are named
``host:<32 hex>`` in the rooms' Ray namespace; which host holds a room is recorded in Ray's
internal KV (the GCS, so every node sees it), in KV namespace ``starhold:<namespace>``:

- ``room:<kind>:<id>#<gen>`` -> ``(host, params)`` (cloudpickle): the *claim* of generation
  ``gen`` of the room. A claim is written with put-if-absent, which the GCS applies atomically,
  so for each generation exactly one claimant wins (Orleans' grain directory registers
  activations the same way: first writer wins, the others use the winner).
- ``room:<kind>:<id>`` -> ``gen``: a hint, the latest generation written by a winner.
- ``host:<name>`` -> ``(kind, room_id, gen)``: which room a host holds (drain, ``actor_names``).

Resolving a room (``resolve``): read the hint ``g``, read claim ``g``, look its host up by name.
A host that is alive holds the room. A dead host (hibernated and exited, crashed) has freed its
name; the caller then claims ``g + 1`` with a host of its own and, if another caller won that
generation first, uses the winner's host (and if that one is dead too, claims ``g + 2``...).
A claim is only ever made over a dead host, so at most one live host holds a room's latest
claim: the single-activation guarantee. The epoch fence of the room's storage
(``storage.base``) is unchanged beneath it: even two live activations could never both commit.

A claim's winner deletes the claim 64 generations older (the KV store would otherwise grow by
one key per wake; a claimant is never so far behind the hint) and the reverse key of the dead
host it replaced.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from ray import cloudpickle
from ray.experimental import internal_kv as kv

log = logging.getLogger("starhold.ray")

HOST_PREFIX = "host:"
"""Ray actor names of room hosts start with this (``host:<32 hex>``)."""

KEEP_GENERATIONS = 64
"""A winner of generation ``g`` deletes claim ``g - KEEP_GENERATIONS``."""


def kv_namespace(namespace: str) -> bytes:
    """The internal-KV namespace of a rooms' Ray namespace."""
    return f"starhold:{namespace}".encode()


def new_host_name() -> str:
    """A fresh host actor name: ``host:`` and 32 hex digits."""
    return HOST_PREFIX + uuid.uuid4().hex


def _hint_key(kind: str, room_id: str) -> bytes:
    return f"room:{kind}:{room_id}".encode()


def _claim_key(kind: str, room_id: str, gen: int) -> bytes:
    return f"room:{kind}:{room_id}#{gen}".encode()


def _host_key(host: str) -> bytes:
    return host.encode()


class Claim(NamedTuple):
    """One generation of a room: ``host`` (actor name) holds it, created with ``params``."""

    gen: int
    host: str
    params: dict


def latest_hint(ns: bytes, kind: str, room_id: str) -> int:
    """The latest generation a winner recorded for the room, -1 if none. Blocking (a GCS RPC)."""
    raw = kv._internal_kv_get(_hint_key(kind, room_id), namespace=ns)
    return -1 if raw is None else int(raw)


def read_claim(ns: bytes, kind: str, room_id: str, gen: int) -> Claim | None:
    """Claim ``gen`` of the room, None if nobody made it. Blocking (a GCS RPC)."""
    raw = kv._internal_kv_get(_claim_key(kind, room_id, gen), namespace=ns)
    if raw is None:
        return None
    host, params = cloudpickle.loads(raw)
    return Claim(gen, host, params)


def try_claim(ns: bytes, kind: str, room_id: str, gen: int, host: str, params: dict,
              replaced: str | None = None) -> bool:
    """Claim generation ``gen`` of the room for ``host`` (put-if-absent); True if this call won.
    The winner records the hint and the host's reverse key, and deletes the claim
    ``KEEP_GENERATIONS`` older and the reverse key of ``replaced`` (the dead host of ``gen - 1``).
    Blocking (GCS RPCs)."""
    value = cloudpickle.dumps((host, dict(params)))
    existed = kv._internal_kv_put(_claim_key(kind, room_id, gen), value, overwrite=False, namespace=ns)
    if existed:
        return False
    kv._internal_kv_put(_hint_key(kind, room_id), str(gen).encode(), overwrite=True, namespace=ns)
    kv._internal_kv_put(_host_key(host), cloudpickle.dumps((kind, room_id, gen)), overwrite=True, namespace=ns)
    if gen >= KEEP_GENERATIONS:
        kv._internal_kv_del(_claim_key(kind, room_id, gen - KEEP_GENERATIONS), namespace=ns)
    if replaced is not None:
        kv._internal_kv_del(_host_key(replaced), namespace=ns)
    return True


def room_of_host(ns: bytes, host: str) -> tuple[str, str, int] | None:
    """``(kind, room_id, gen)`` of the room ``host`` was given, None for a spare. Blocking."""
    raw = kv._internal_kv_get(_host_key(host), namespace=ns)
    return None if raw is None else tuple(cloudpickle.loads(raw))


def forget_host(ns: bytes, host: str) -> None:
    """Delete ``host``'s reverse key (it is exiting). Blocking."""
    kv._internal_kv_del(_host_key(host), namespace=ns)


class Spare(NamedTuple):
    """A started host nobody claimed yet: its actor ``name``, ``actor`` handle, and the
    ``time.monotonic()`` it was created at."""

    name: str
    actor: Any
    born: float


class SparePool:
    """Up to ``size`` started, blank hosts, ready to be claimed (``take``).

    ``create(name)`` starts a host actor (blocking; run in a thread) and returns its handle;
    ``ready(actor)`` awaits its constructor. A spare is handed out at most once. Spares older
    than ``max_age`` seconds are dropped unused (a blank host ends itself after its TTL, which
    is longer, so that a gateway that died cannot leak hosts for ever). With ``size`` 0 (room
    actors' own directories) nothing is kept: ``take`` starts a host on demand.
    """

    def __init__(self, size: int, create: Callable[[str], Any], ready: Callable[[Any], Awaitable[Any]],
                 max_age: float):
        self.size = size
        self.max_age = max_age
        self._create = create
        self._ready = ready
        self._spares: collections.deque[Spare] = collections.deque()
        self._starting = 0
        self._tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._spares)

    async def take(self) -> Spare:
        """A ready spare if one is there (and a replacement is started), else a host started
        now and awaited. Only a host that has run its constructor is ever claimed: Ray then
        knows its name, so a claimant that finds the name unknown knows the host is dead."""
        now = time.monotonic()
        while self._spares and now - self._spares[0].born > self.max_age:
            self._spares.popleft()  # ends itself: its TTL is longer than max_age
        if self._spares:
            spare = self._spares.popleft()
            self.refill()
            return spare
        self.refill()
        name = new_host_name()
        actor = await asyncio.to_thread(self._create, name)
        await self._ready(actor)
        return Spare(name, actor, time.monotonic())

    def give_back(self, spare: Spare) -> bool:
        """Return a spare that lost its claim; True if kept (there is room and it is young
        enough), else the caller ends it."""
        if len(self._spares) + self._starting < self.size and time.monotonic() - spare.born < self.max_age:
            self._spares.appendleft(spare)
            return True
        return False

    def refill(self) -> None:
        """Start hosts in the background until ``size`` are ready or starting."""
        while len(self._spares) + self._starting < self.size:
            self._starting += 1
            task = asyncio.ensure_future(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        name = new_host_name()
        try:
            actor = await asyncio.to_thread(self._create, name)
            await self._ready(actor)
        except Exception as exc:  # Ray down or the node full: the next take starts one on demand
            log.warning("could not start a spare room host: %s: %s", type(exc).__name__, exc)
            return
        finally:
            self._starting -= 1
        self._spares.append(Spare(name, actor, time.monotonic()))

    async def close(self) -> list[Spare]:
        """Stop refilling; returns the spares (the caller ends them)."""
        for task in list(self._tasks):
            task.cancel()
        spares, self._spares = list(self._spares), collections.deque()
        return spares

"""A room host: one Ray actor process that runs several rooms (DESIGN §4).

A Ray actor is a process of its own, and a process costs about 48 MB of memory and 1 % of a
core while idle here whatever runs in it (``benchmarks/density.py``), so one actor per room
cannot make an idle room cheap; and creating an actor costs 0.2-1.2 s idle, seconds under
load, which a room woken by a player's input cannot afford. Orleans runs many grains in one
silo and Colyseus many rooms in one process for the same reasons. A ``RoomHost`` therefore
runs up to ``rooms_per_host`` rooms (``RoomRuntime`` objects on its one event loop), and the
namespace's ``HostPool`` (``starhold._runtime.host_pool``) keeps spare hosts started ahead of
need and assigns each waking room to one of them: a wake costs two actor calls and opening
the room's storage, not a process.

A host runs a room only after the pool has assigned it (``assign``); calls for a room it does
not hold raise ``RoomGone``, and the caller asks the pool again. The room starts on its first
call, as the one-actor-per-room host did (``_active``); when its activation ends (hibernation,
a failed start, a superseded epoch) the host forgets it and tells the pool (``released``), so
at most one activation per room is assigned at a time. The Durable Object guarantees do not
rest on this: each activation still claims its epoch and lease in the snapshot store
(``starhold._runtime.lease``), so even two hosts holding the same room never both commit.

Hosts are Ray actors named ``host:<hex>``, detached, ``max_restarts=0`` (a host that dies
takes its rooms' in-memory state with it; the pool re-places them, and each restores from its
snapshot on its next activation), ``num_cpus=0``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import ray

from .. import heap
from ..clock import SystemClock
from ..kinds import load_rooms, room_class
from ..ratelog import RateLimitedLog, describe
from ..room import HttpRequest, HttpResponse
from ..storage.base import StorageError
from ..storage.factory import snapshot_store_from_config
from .handle import RoomGone
from .local_host import LocalRoomHandle, start_task
from .paths import node_data_dir, room_db_path
from .runtime import RoomRuntime

log = logging.getLogger("starhold.host")

START_FAILURES = RateLimitedLog(log)
"""Start failures of this host's rooms: one line per (failure kind, room kind) per 30 s,
tracebacks at DEBUG."""


ASSIGN_WAIT = 60.0
"""Seconds ``assign`` waits for the room's previous activation here to finish hibernating."""
TELL_WAIT = 5.0
"""Seconds an ending activation waits for the pool to acknowledge its release."""


@dataclass
class _Slot:
    """One room assigned to this host: its runtime, the activation id the pool gave it, and
    its one start attempt (``start_task``), shared by every call that comes before it ends."""

    runtime: RoomRuntime
    handle: LocalRoomHandle
    activation: str
    starting: asyncio.Task | None = None
    ended: asyncio.Event | None = None  # set once the host forgot the activation


class RoomHost:
    """Runs the rooms the pool assigns it, each a ``RoomRuntime`` on this actor's event loop.

    ``name``: the actor's name (``host:<hex>``); ``config``: the directory's config
    (``data_dir`` absolute, ``idle_timeout`` seconds, ``rooms`` modules of room kinds, None for
    the entry point group, ``snapshots`` spec, ``namespace``); ``room_classes``: kind -> ``Room``
    subclass overriding the registry (sent by value). Each room's SQLite file lives under
    ``paths.node_data_dir`` (per node with S3 snapshots); the rooms share one snapshot store
    (one S3 client) and one alarm-scheduler client.

    Every room method takes ``kind, room_id`` first, then the ``RoomHandle`` method's own
    arguments, and raises ``RoomGone`` for a room this host does not hold.
    """

    def __init__(self, name: str, config: dict, room_classes: dict | None = None):
        logging.basicConfig(level=config.get("log_level", "INFO"))
        if config.get("rooms") is not None:
            load_rooms(config["rooms"])
        from .host_pool import POOL_NAME
        from .pool_alarms import AlarmClient
        from .ray_host import RayDirectory  # ray_host imports this module

        self.name = name
        self.config = config
        self.room_classes = dict(room_classes or {})
        self.data_dir = Path(config["data_dir"])
        self.node = ray.get_runtime_context().get_node_id()
        spec = config.get("snapshots")
        self.rooms_dir = node_data_dir(self.data_dir, self.node, s3_snapshots=bool(spec and spec.get("kind") == "s3"))
        self.snapshots = snapshot_store_from_config(spec, self.data_dir)
        self.alarm_service = AlarmClient(config, POOL_NAME)  # the alarm scheduler is in the pool's actor
        self.channel_host = ray.util.get_node_ip_address()
        self._directory = None
        self._directory_cls = RayDirectory
        self.slots: dict[tuple[str, str], _Slot] = {}
        self._end: asyncio.Event | None = None  # made on the actor's loop by lifetime()
        self._pool = None
        self._sockets = None  # gateway.colocate.HostSockets, once a gateway hands us a socket
        self._sockets_starting: asyncio.Future | None = None
        heap.settle()  # Ray's, NumPy's and our modules: out of every later collection

    def _room_directory(self):
        """The ``RayDirectory`` the rooms reach other rooms through (``Room.rooms``), built on
        first use and shared by the host's rooms."""
        if self._directory is None:
            self._directory = self._directory_cls(self.config, self.config.get("namespace", "starhold"))
        return self._directory

    # ---- assignment ------------------------------------------------------------------------
    async def ready(self) -> dict:
        """``{"name", "node", "pid"}`` once the actor runs (the pool awaits it after creating
        the host)."""
        return {"name": self.name, "node": self.node, "pid": os.getpid()}

    async def assign(self, kind: str, room_id: str, params: dict, activation: str) -> str:
        """Run room ``kind/room_id`` here from now on, as activation ``activation`` (an id the
        pool makes up, echoed in ``released``). The room starts on its first call. A room
        whose activation is still live here keeps it (it then carries the new id). Returns
        this host's node id (hex). Raises ``KeyError`` for a kind this host cannot load,
        ``ValueError`` for an unsafe room id."""
        key = (kind, room_id)
        slot = self.slots.get(key)
        if slot is not None and slot.runtime.state in ("new", "active"):
            slot.activation = activation
            return self.node
        if slot is not None:  # still hibernating here: the next activation starts after it ends
            await asyncio.wait_for(slot.ended.wait(), ASSIGN_WAIT)
        cls = self.room_classes.get(kind) or room_class(kind)
        runtime = RoomRuntime(
            cls,
            room_id,
            dict(params or {}),
            db_path=room_db_path(self.rooms_dir, kind, room_id),
            clock=SystemClock(),
            snapshots=self.snapshots,
            idle_timeout=float(self.config.get("idle_timeout", 10.0)),
            alarm_service=self.alarm_service,
            channel_host=self.channel_host,
            directory=self._room_directory,
        )
        slot = _Slot(runtime, LocalRoomHandle(runtime, kind, room_id), activation, ended=asyncio.Event())
        runtime.on_exit = lambda: self._ended(key, slot)
        self.slots[key] = slot
        return self.node

    async def has(self, kind: str, room_id: str) -> str | None:
        """The activation id of the room's live activation here, or None (none, or it is
        ending)."""
        slot = self.slots.get((kind, room_id))
        if slot is None or slot.runtime.state not in ("new", "active"):
            return None
        return slot.activation

    async def rooms(self) -> dict:
        """``{"node": node id, "rooms": {"kind/room_id": activation id}}`` of the live rooms
        (the pool rebuilds its map from this after a restart)."""
        return {"node": self.node, "rooms": {f"{k}/{r}": s.activation for (k, r), s in self.slots.items()
                                              if s.runtime.state in ("new", "active")}}

    async def lifetime(self) -> None:
        """Returns only when the host retires: the pool keeps one call in flight per host and
        learns of the host's death when it fails (``RayActorError``)."""
        if self._end is None:
            self._end = asyncio.Event()
        await self._end.wait()

    async def serve_sockets(self, config: dict) -> dict:
        """Serve the WebSockets gateways of this node hand to this process
        (``gateway/colocate.py``): start, on the first call, a gateway for them built from
        ``config`` (``gateway.colocate.gateway_config``) and listening for hand-offs. Returns
        ``{"path": the hand-off socket, "node": this host's node id}``. Raises what building
        the gateway raised (the caller then serves the sockets itself)."""
        if self._sockets_starting is None:
            from ..gateway.colocate import HostSockets

            sockets = HostSockets()
            starting = self._sockets_starting = asyncio.ensure_future(sockets.start(self._room_directory(), config))

            def started(done: asyncio.Future) -> None:
                if not done.cancelled() and done.exception() is None:
                    self._sockets = sockets
                elif self._sockets_starting is starting:  # the next call tries again
                    self._sockets_starting = None

            starting.add_done_callback(started)
        path = await asyncio.shield(self._sockets_starting)
        return {"path": str(path), "node": self.node}

    async def socket_metrics(self, gateway_id: str) -> bytes | None:
        """The Prometheus exposition of this process's socket gateway for the node gateway
        process ``gateway_id`` if that process reports it (``gateway.colocate.HostSockets.metrics``),
        else None; None too when this host serves no sockets."""
        return self._sockets.metrics(gateway_id) if self._sockets is not None else None

    async def close_sockets(self) -> int:
        """Close the sockets this host serves with 1001 (going away) and stop taking hand-offs
        (a later ``serve_sockets`` starts a fresh gateway); returns how many were open.
        ``starhold serve`` calls it on the hosts that took its sockets when it shuts down,
        before the rooms hibernate (``HostRouter.close_sockets``)."""
        sockets, self._sockets, self._sockets_starting = self._sockets, None, None
        if sockets is None:
            return 0
        count = sockets.sockets
        await sockets.close()
        return count

    async def retire(self) -> bool:
        """End this host if it holds no room, not even one still hibernating, and no socket
        (``serve_sockets``; the pool retires surplus empty hosts); returns whether it ends."""
        if self.slots or (self._sockets is not None and self._sockets.sockets):
            return False
        if self._sockets is not None:  # no socket left: stop listening, remove the hand-off socket
            await self._sockets.close()
        if self._end is not None:
            self._end.set()
        me = ray.get_runtime_context().current_actor
        asyncio.get_running_loop().call_later(0.05, lambda: ray.kill(me, no_restart=True))
        return True

    async def _active(self, kind: str, room_id: str) -> _Slot:
        """The room's slot once its activation has started (starting it on the first call; all
        concurrent calls share that attempt). A start that fails forgets the room (the pool is
        told): the callers of that attempt get its exception (``StorageError`` when the
        snapshot store cannot be reached, what ``on_start`` raised), later callers
        ``RoomGone``, and the next ``RayDirectory.get`` assigns a fresh activation, which
        tries again (docs/rooms.md: a failed ``on_start`` is retried by the next call)."""
        key = (kind, room_id)
        slot = self.slots.get(key)
        if slot is None:
            raise RoomGone(f"{kind}/{room_id}: not on host {self.name}")
        if slot.starting is None:
            slot.starting = start_task(slot.runtime, lambda exc: self._start_done(key, slot, exc))
        elif slot.starting.done() and (slot.starting.cancelled() or slot.starting.exception() is not None):
            raise RoomGone(f"{kind}/{room_id}: its activation failed to start")
        await asyncio.shield(slot.starting)
        return slot

    def _start_done(self, key: tuple[str, str], slot: _Slot, exc: BaseException | None) -> None:
        if exc is None:
            return
        storage = isinstance(exc, StorageError)
        START_FAILURES.log(
            logging.WARNING, ("store unavailable" if storage else "start failed", key[0]),
            "room %s/%s failed to start (%s): %s; the next call starts a fresh activation",
            key[0], key[1], "its snapshot store is unreachable" if storage else "on_start raised",
            describe(exc), exc_info=exc)
        self._forget(key, slot)

    async def _ended(self, key: tuple[str, str], slot: _Slot) -> None:
        """The activation ended (hibernated, fenced, crashed): forget it, and tell the pool
        before the hibernation returns (so a gateway told ``("hibernate",)`` or ``("moved",)``
        finds the room unmapped), waiting at most ``TELL_WAIT`` seconds."""
        task = self._forget(key, slot)
        try:
            await asyncio.wait_for(asyncio.shield(task), TELL_WAIT)
        except asyncio.TimeoutError:
            pass

    def _forget(self, key: tuple[str, str], slot: _Slot) -> asyncio.Task:
        if self.slots.get(key) is slot:
            del self.slots[key]
        slot.ended.set()
        return asyncio.ensure_future(self._tell_pool(key, slot.activation))

    async def _tell_pool(self, key: tuple[str, str], activation: str) -> None:
        """Tell the pool the activation ended. A lost message costs only a stale entry in the
        pool's map, which it corrects when a caller reports the room gone from here
        (``HostPool.get``'s ``stale``) or at its next reconciliation."""
        from .host_pool import POOL_NAME

        try:
            if self._pool is None:  # never creates one: a namespace being torn down stays so
                self._pool = await asyncio.to_thread(ray.get_actor, POOL_NAME, self.config["namespace"])
            await self._pool.released.remote(self.name, key[0], key[1], activation)
        except Exception as exc:
            self._pool = None
            log.debug("host %s: could not tell the pool that %s/%s ended: %s", self.name, *key, describe(exc))

    # ---- the rooms' calls (RoomHandle's methods, room first) -------------------------------
    async def send_batch(self, kind: str, room_id: str, gateway_id: str, events: list[tuple]) -> int:
        return await (await self._active(kind, room_id)).handle.send_batch(gateway_id, events)

    async def pull(self, kind: str, room_id: str, gateway_id: str, timeout: float, epoch: int | None = None) -> list:
        return await (await self._active(kind, room_id)).handle.pull(gateway_id, timeout, epoch)

    async def open_channel(self, kind: str, room_id: str, gateway_id: str) -> dict:
        return await (await self._active(kind, room_id)).handle.open_channel(gateway_id)

    async def request(self, kind: str, room_id: str, request: HttpRequest) -> HttpResponse:
        return await (await self._active(kind, room_id)).handle.request(request)

    async def hibernate(self, kind: str, room_id: str) -> bool:
        return await (await self._active(kind, room_id)).handle.hibernate()

    async def fire_alarm(self, kind: str, room_id: str) -> bool:
        return await (await self._active(kind, room_id)).handle.fire_alarm()

    async def stats(self, kind: str, room_id: str) -> dict:
        """The runtime's figures (without starting the room) plus ``pid``, ``node`` and
        ``host``."""
        slot = self.slots.get((kind, room_id))
        if slot is None:
            raise RoomGone(f"{kind}/{room_id}: not on host {self.name}")
        return {**await slot.handle.stats(), "pid": os.getpid(), "node": self.node, "host": self.name}

    async def migrate(self, kind: str, room_id: str) -> dict:
        """``LocalRoomHandle.migrate`` (hibernate for a move, gateways told ``("moved",)``), whose
        result also has ``node`` (the Ray node id this activation ran on, hex) and ``config``
        (this host's config, namespace included: ``starhold.drain`` wakes the room through a
        ``RayDirectory`` built from it, as its gateways would)."""
        slot = await self._active(kind, room_id)
        return {**await slot.handle.migrate(), "node": self.node, "config": self.config}

"""The host pool: which room host runs which room, and spare hosts started ahead of need.

One ``HostPool`` actor per namespace (named ``hosts``, detached, on the head node with the
config's ``pool_on_head``, restarted by Ray, ``max_restarts=-1``) is the directory of live
activations on Ray:
it maps each awake room to the ``RoomHost`` (``starhold._runtime.room_host``) that runs it,
one at a time per room (its calls for one room are serialized), and places waking rooms:

- **Placement** (``get``): a room already mapped goes to its host; otherwise to the fullest
  host that has a free slot (``rooms_per_host``, default 10), on a node that is not draining,
  so that empty hosts stay spare. With no free slot anywhere a host is created on the spot
  (the waking call then pays an actor creation, about 1 s).
- **Spares**: the pool keeps ``spare_hosts`` (default 2) empty hosts started on nodes that
  are not draining, creating one in the background whenever placement takes the last, and
  ends hosts that have been empty for ``HOST_IDLE_SECONDS`` beyond that number.
- **Failure**: the pool keeps one ``lifetime`` call in flight per host; when it fails the
  host is dead (its node lost, or killed), its rooms are unmapped, and each is woken again at
  once on another host (as the alarm scheduler wakes a room: an empty batch), so rooms with
  alarms and no players come back too. A caller that finds a room gone from the host it was
  given (``RoomGone``) says so in its next ``get`` (``stale``); the pool then asks that host
  and re-places the room if the host no longer runs it.
- **Restart**: a restarted pool rebuilds its map from the live hosts (``RoomHost.rooms``,
  asked all at once) before answering.
- **Drain** (``drain``): no room is placed on a draining node's hosts any more, and its empty
  hosts end.

Every ``HOST_RECONCILE_SECONDS`` the pool also re-reads each host's rooms, which corrects a
lost ``released`` message.

The same actor runs the namespace's alarm scheduler (``pool_alarms.PoolAlarms``): the alarms of
sleeping rooms, which it wakes through its own placement.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayActorError

from ..ratelog import describe
from .handle import RoomGone
from .pool_alarms import PoolAlarms

log = logging.getLogger("starhold.hosts")

POOL_NAME = "hosts"
"""Ray actor name of a namespace's host pool."""
ROOMS_PER_HOST = 10
"""Default rooms one host runs at most (config ``rooms_per_host``). Ten rooms of 100 players at
10 Hz, their sockets served by the host (``--colocate``, the default), take about half a core
here (``benchmarks/realtime.py``): a busy node's work then sits in about one host process per
core; more, smaller hosts compete for the same cores (at 2,000 players on this 2-core machine,
two alternating pairs: 8 rooms per host, so three busy hosts, 105.8 / 102.4 % of a core against
90.6 / 81.0 % with 10; docs/operating.md, twelfth session)."""
SPARE_HOSTS = 2
"""Default empty hosts kept started (config ``spare_hosts``)."""
HOST_IDLE_SECONDS = 60.0
"""Seconds a surplus host may stay empty before the pool ends it."""
HOST_RECONCILE_SECONDS = 30.0
"""Seconds between the pool's re-reads of every host's rooms."""
HEAD_RESOURCE = "node:__internal_head__"
"""The custom resource Ray gives the head node only; the pool asks for a sliver of it."""
REBUILD_WAIT = 30.0
"""Seconds a restarted pool waits for each host's answer (asked all at once) before serving
without it: a host on a node being lost may not answer until Ray declares the node dead."""
WAKER = "starhold-hosts"
"""The gateway id the pool wakes re-placed rooms with (an empty batch)."""


def host_name() -> str:
    """A new host's actor name: ``host:<32 hex digits>``."""
    return f"host:{uuid.uuid4().hex}"


@dataclass
class _Host:
    name: str
    actor: object
    node: str
    rooms: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, id) -> activation id
    empty_since: float = field(default_factory=time.monotonic)
    retiring: bool = False


class HostPool(PoolAlarms):
    """The namespace's room hosts and which room each runs (module docstring), and its alarm
    scheduler (``pool_alarms.PoolAlarms``: ``register``, ``pending``, ``start_scheduler``).
    ``config``: the directory's config (``namespace``, ``rooms_per_host``, ``spare_hosts``,
    ``data_dir`` and ``snapshots`` for the alarm index, and what every host gets);
    ``room_classes``: kind -> ``Room`` subclass, handed to every host."""

    def __init__(self, config: dict, room_classes: dict | None = None):
        logging.basicConfig(level=config.get("log_level", "INFO"))
        self.config = config
        self.room_classes = dict(room_classes or {})
        self.namespace = config["namespace"]
        self.per_host = max(1, int(config.get("rooms_per_host") or ROOMS_PER_HOST))
        spare = config.get("spare_hosts")
        self.spare = max(0, int(SPARE_HOSTS if spare is None else spare))
        self.hosts: dict[str, _Host] = {}
        self.where: dict[tuple[str, str], str] = {}
        self.draining: set[str] = set()
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}  # per room: lock, users
        self._starting: set[asyncio.Task] = set()  # spare hosts being started
        self._ready: asyncio.Task | None = None
        self._incarnation = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._init_alarms(config)

    # ---- startup ---------------------------------------------------------------------------
    async def _started(self) -> None:
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._rebuild())
        await asyncio.shield(self._ready)

    async def _rebuild(self) -> None:
        """Adopt the namespace's live hosts and their rooms (after a restart of this actor),
        then start the spares and the reconciliation loop."""
        names = await asyncio.to_thread(lambda: [
            a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == self.namespace and a["name"].startswith("host:")])
        async def ask(name: str):
            try:
                actor = await asyncio.to_thread(ray.get_actor, name, self.namespace)
                return name, actor, await asyncio.wait_for(actor.rooms.remote(), REBUILD_WAIT)
            except (ValueError, RayActorError, asyncio.TimeoutError):
                return None  # dead, or on a node being lost: its rooms are re-placed when asked for

        for found in await asyncio.gather(*(ask(name) for name in names)):
            if found is None:
                continue
            name, actor, info = found
            host = self._adopt(name, actor, info["node"])
            for key, activation in info["rooms"].items():
                kind, room_id = key.split("/", 1)
                host.rooms[(kind, room_id)] = activation
                self.where[(kind, room_id)] = name
        self._spawn(self._maintain())
        self._top_up()

    async def start(self) -> dict:
        """Rebuild (once) and start the spares; returns ``hosts()``. The gateway calls it at
        startup."""
        await self._started()
        return await self.hosts_info()

    # ---- the directory ---------------------------------------------------------------------
    async def get(self, kind: str, room_id: str, params: dict | None = None, stale: str | None = None,
                  node: str | None = None):
        """``(host name, host actor)`` of the host that runs room ``kind/room_id``, assigning
        it to one first if none does (``RoomHost.assign``: the room starts on its first
        call). ``stale``: a host the caller found without the room (``RoomGone``); if it is
        still the mapped one the pool asks it and re-places the room unless it runs it.
        ``node``: place a sleeping room on a host on that node (hex id; one is started there
        if none has a free slot), e.g. to put rooms where a test or an operator wants them.
        Raises what ``assign`` raised (``KeyError`` unknown kind, ``ValueError`` unsafe id)."""
        await self._started()
        key = (kind, room_id)
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                name = self.where.get(key)
                if name is not None and name == stale and not await self._runs(name, key):
                    self._unmap(key)
                    name = None
                if name is not None:
                    return name, self.hosts[name].actor
                return await self._place(key, params, node)
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _runs(self, name: str, key: tuple[str, str]) -> bool:
        """Whether host ``name`` still runs room ``key`` (False when the host is dead)."""
        host = self.hosts.get(name)
        if host is None:
            return False
        try:
            return await host.actor.has.remote(*key) is not None
        except RayActorError:
            self._host_died(name)
            return False

    async def _place(self, key: tuple[str, str], params: dict | None, node: str | None = None):
        while True:
            host = self._pick(node)
            if host is None and self._starting and node is None:  # a spare is on its way
                await asyncio.wait(set(self._starting), return_when=asyncio.FIRST_COMPLETED)
                continue
            host = host or await self._create(node)
            activation = f"{self._incarnation}-{next(self._ids)}"
            host.rooms[key] = activation  # the slot is taken while assign runs
            try:
                await host.actor.assign.remote(key[0], key[1], dict(params or {}), activation)
            except RayActorError:
                self._host_died(host.name)
                continue
            except BaseException:
                if host.rooms.get(key) == activation:
                    del host.rooms[key]
                raise
            self.where[key] = host.name
            self._top_up()
            return host.name, host.actor

    def _pick(self, node: str | None = None) -> _Host | None:
        """The fullest host with a free slot on a node that is not draining (on ``node`` if
        given), or None."""
        free = [h for h in self.hosts.values() if not h.retiring and h.node not in self.draining
                and len(h.rooms) < self.per_host and (node is None or h.node == node)]
        return max(free, key=lambda h: len(h.rooms), default=None)

    async def lookup(self, kind: str, room_id: str):
        """``(host name, host actor)`` of the room's host, or None; never places the room."""
        await self._started()
        name = self.where.get((kind, room_id))
        return None if name is None else (name, self.hosts[name].actor)

    async def released(self, name: str, kind: str, room_id: str, activation: str) -> None:
        """Host ``name``'s activation ``activation`` of the room ended: free its slot (an older
        activation's message changes nothing)."""
        key = (kind, room_id)
        host = self.hosts.get(name)
        if host is None or host.rooms.get(key) != activation:
            return
        del host.rooms[key]
        if not host.rooms:
            host.empty_since = time.monotonic()
        if self.where.get(key) == name:
            del self.where[key]

    def _unmap(self, key: tuple[str, str]) -> None:
        name = self.where.pop(key, None)
        host = self.hosts.get(name) if name else None
        if host is not None:
            host.rooms.pop(key, None)
            if not host.rooms:
                host.empty_since = time.monotonic()

    async def rooms(self) -> dict[str, str]:
        """``{"kind/room_id": host name}`` of every mapped room."""
        await self._started()
        return {f"{k}/{r}": name for (k, r), name in sorted(self.where.items())}

    async def rooms_on(self, node: str) -> list[tuple[str, str]]:
        """``(kind, room_id)`` of the rooms whose host is on node ``node`` (hex id)."""
        await self._started()
        return sorted(key for key, name in self.where.items() if self.hosts[name].node == node)

    async def placement(self) -> dict[str, str]:
        """``{"kind/room_id": node id}`` of every mapped room (benchmarks watch failover with
        it)."""
        await self._started()
        return {f"{k}/{r}": self.hosts[name].node for (k, r), name in sorted(self.where.items())}

    async def incarnation(self) -> str:
        """An id this pool process made up at its start (a restart changes it)."""
        return self._incarnation

    async def hosts_info(self) -> dict[str, dict]:
        """``{host name: {"node", "rooms", "retiring"}}`` (rooms: how many)."""
        return {h.name: {"node": h.node, "rooms": len(h.rooms), "retiring": h.retiring} for h in self.hosts.values()}

    async def drain(self, node: str) -> int:
        """Place nothing more on node ``node``'s hosts, end its empty ones and start spares
        elsewhere; returns how many rooms are still on it."""
        await self._started()
        self.draining.add(node)
        for host in list(self.hosts.values()):
            if host.node == node and not host.rooms:
                self._spawn(self._retire(host))
        self._top_up()
        return sum(1 for name in self.where.values() if self.hosts[name].node == node)

    # ---- hosts -----------------------------------------------------------------------------
    def _adopt(self, name: str, actor, node: str) -> _Host:
        host = self.hosts[name] = _Host(name, actor, node)
        self._spawn(self._watch(host))
        return host

    async def _create(self, node: str | None = None) -> _Host:
        """Start a new host (on ``node`` if given) and wait until it runs (about 1 s idle here,
        seconds under load)."""
        from .ray_host import remote_host

        name = host_name()
        actor = await asyncio.to_thread(remote_host, self.config, name, self.room_classes, node)
        info = await actor.ready.remote()
        return self._adopt(name, actor, info["node"])

    def _spares(self) -> int:
        return sum(1 for h in self.hosts.values() if not h.rooms and not h.retiring and h.node not in self.draining)

    def _top_up(self) -> None:
        """Start spare hosts in the background until ``spare`` are empty or starting."""
        for _ in range(self.spare - self._spares() - len(self._starting)):
            task = asyncio.ensure_future(self._create_spare())
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _create_spare(self) -> None:
        try:
            await self._create()
        except Exception as exc:
            log.warning("pool %s: a spare host could not start: %s", self.namespace, describe(exc))

    async def _watch(self, host: _Host) -> None:
        try:
            await host.actor.lifetime.remote()
        except RayActorError:
            pass
        except Exception as exc:
            log.debug("pool %s: watching %s: %s", self.namespace, host.name, describe(exc))
        if self.hosts.get(host.name) is host:
            self._host_died(host.name)

    def _host_died(self, name: str) -> None:
        """Host ``name`` is gone: unmap its rooms and wake each again elsewhere."""
        host = self.hosts.pop(name, None)
        if host is None:
            return
        lost = [key for key, where in self.where.items() if where == name]
        for key in lost:
            del self.where[key]
        if lost and not host.retiring:
            log.warning("pool %s: host %s (node %s) is gone; waking its %d room(s) elsewhere",
                        self.namespace, name, host.node[:12], len(lost))
            for key in lost:
                self._spawn(self._rewake(key))
        self._top_up()

    async def _rewake(self, key: tuple[str, str]) -> None:
        for attempt in range(5):
            try:
                name, actor = await self.get(*key)
                await actor.send_batch.remote(key[0], key[1], WAKER, [])
                return
            except (RoomGone, RayActorError) as exc:
                log.debug("pool %s: re-waking %s/%s: %s", self.namespace, *key, describe(exc))
            except Exception as exc:
                log.warning("pool %s: %s/%s could not be woken again: %s", self.namespace, *key, describe(exc))
                return
            await asyncio.sleep(0.5 * (attempt + 1))

    async def _retire(self, host: _Host) -> None:
        host.retiring = True
        try:
            if await host.actor.retire.remote():
                self.hosts.pop(host.name, None)
                return
        except RayActorError:
            self.hosts.pop(host.name, None)
            return
        host.retiring = False

    async def _maintain(self) -> None:
        """Every few seconds: end surplus hosts empty for ``HOST_IDLE_SECONDS``; every
        ``HOST_RECONCILE_SECONDS``: re-read each host's rooms."""
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(5.0)
            now = time.monotonic()
            empty = sorted((h for h in self.hosts.values() if not h.rooms and not h.retiring),
                           key=lambda h: h.empty_since)
            keep = self.spare
            for host in empty:
                if host.node not in self.draining and keep > 0:
                    keep -= 1
                elif now - host.empty_since >= HOST_IDLE_SECONDS or host.node in self.draining:
                    self._spawn(self._retire(host))
            if now - last_reconcile >= HOST_RECONCILE_SECONDS:
                last_reconcile = now
                await self._reconcile()

    async def _reconcile(self) -> None:
        for host in list(self.hosts.values()):
            try:
                info = await asyncio.wait_for(host.actor.rooms.remote(), 30)
            except (RayActorError, asyncio.TimeoutError):
                continue
            live = {tuple(key.split("/", 1)): a for key, a in info["rooms"].items()}
            for key, activation in list(host.rooms.items()):
                if key not in live and not self._locks.get(key) and self.where.get(key) == host.name:
                    self._unmap(key)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def kill_namespace(namespace: str, timeout: float = 10.0) -> int:
    """Kill every actor of ``namespace`` without restart; returns how many. The pool (and
    with it the alarm scheduler) goes first, and the hosts are listed again once the pool is
    gone (up to ``timeout`` seconds), so that nothing wakes or re-places a room meanwhile and
    no host it started at the last moment outlives the namespace. Blocking. Tests and the
    harness clean up with it."""
    def named() -> list[str]:
        return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == namespace]

    def kill(name: str) -> bool:
        try:
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
            return True
        except ValueError:
            return False

    killed = sum(kill(name) for name in named() if name == POOL_NAME)
    deadline = time.monotonic() + timeout
    while POOL_NAME in named() and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed + sum(kill(name) for name in named())


def pool_actor(config: dict, room_classes: dict | None = None):
    """The namespace's host pool actor, created on first use (blocking: call it in a thread).
    With ``config["pool_on_head"]`` it is placed on the head node (``HEAD_RESOURCE``), where it
    lives and dies with the GCS, so that losing a worker node never takes the pool and its map
    of awake rooms with it; otherwise Ray places it."""
    return _RemotePool.options(
        name=POOL_NAME, namespace=config["namespace"], get_if_exists=True, lifetime="detached",
        max_restarts=-1, num_cpus=0, max_concurrency=1000,
        resources={HEAD_RESOURCE: 0.001} if config.get("pool_on_head") else None,
    ).remote(config, room_classes)


_RemotePool = ray.remote(HostPool)

"""The Ray host: each room is held by one Ray actor, a ``RoomHost`` (DESIGN §4).

Hosts are named ``host:<hex>`` in the directory's namespace (default ``starhold``), created
with ``lifetime="detached"``, ``max_restarts=-1`` and ``num_cpus=0`` (rooms are mostly idle; a
CPU reservation each would cap a 2-core node at two rooms). A host is started blank, with the
game imported, and takes on a room when a directory claims it for that room (``pool``: claims
in the GCS's key-value store, first writer wins). A gateway's directory keeps a few *spare*
hosts started, so a room wakes without waiting for a process (0.7-1.2 s here, seconds under
load). When its room hibernates the host kills itself without restart; the next ``get``
claims a new host, on whichever node it runs, which restores the room from its snapshot. A
host whose room fails to start (its snapshot store unreachable, ``on_start`` raising) ends
itself the same way, so that no host outlives a failed start; the next call claims a fresh one.

Alarms of sleeping rooms are held by one more actor, ``scheduler`` in the same namespace
(``SchedulerActor``: an ``AlarmScheduler`` on ``scheduler.alarm_index_from_config``: its own
SQLite file with local snapshots, one object per alarm in the snapshot bucket with S3), which
wakes their rooms when the alarms fall due.

A host keeps its room's SQLite file under ``paths.node_data_dir``: the node's
``$STARHOLD_NODE_DATA_DIR``, else with S3 snapshots a per-node cache directory
``<data_dir>/nodes/<node id>``, else ``<data_dir>``. ``init_ray`` passes the AWS credentials of
the process that calls it (``FORWARDED_ENV``) to every actor of its job through Ray's
``runtime_env``.

Every Ray call made through a handle is counted in ``RAY_CALLS`` (method -> count) so the
gateway can report Ray calls per room per second.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
from pathlib import Path

import ray
from ray.exceptions import RayActorError

from .. import heap
from ..storage.factory import snapshot_store_from_config
from ..clock import SystemClock
from .handle import RoomDirectory, RoomGone, RoomHandle
from .local_host import LocalRoomHandle, start_task
from ..kinds import load_rooms, room_class
from ..messages import make_portable
from ..ratelog import RateLimitedLog, describe
from ..storage.base import StorageError
from .paths import node_data_dir, room_db_path
from .pool import HOST_PREFIX, SparePool, forget_host, kv_namespace, latest_hint, read_claim, room_of_host, try_claim
from ..room import HttpRequest, HttpResponse
from .runtime import RoomRuntime
from .scheduler import AlarmScheduler, alarm_index_from_config

SCHEDULER_NAME = "scheduler"
"""Ray actor name of the alarm scheduler (in the rooms' namespace)."""

FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_ENDPOINT_URL")
"""Environment variables that ``init_ray`` hands to the job's actors (room actors and the
alarm scheduler, on any node) through ``runtime_env={"env_vars": ...}``, those that are set."""

log = logging.getLogger("starhold.ray")

START_FAILURES = RateLimitedLog(log)
"""Start failures of this process's room actors: one line per (failure kind, room kind) per
30 s, tracebacks at DEBUG."""

RAY_CALLS: collections.Counter = collections.Counter()
"""Ray actor calls made by this process's handles, by method name."""


def actor_name(kind: str, room_id: str) -> str:
    """The name a room is listed under (``RayDirectory.actor_names``): ``room:<kind>:<id>``.
    Its host's actor is named ``host:<hex>`` (``pool``)."""
    return f"room:{kind}:{room_id}"


SPARE_TTL = 900.0
"""Seconds a host that holds no room lives before it ends itself (a spare whose gateway died
must not live for ever); ``SPARE_MAX_AGE`` keeps directories from handing out spares near it."""

SPARE_MAX_AGE = 600.0
"""Seconds after which a directory drops an unused spare (``SparePool.max_age``)."""


class RoomHost(LocalRoomHandle):
    """A Ray actor process that holds one room (an async actor: one event loop); its methods
    are those of the in-process handle, called remotely, each with the room's identity
    ``(kind, room_id, gen)`` first.

    A host starts blank (``pool``: a *spare*), with Starhold, the room kinds' modules and their
    dependencies already imported, and takes on a room on the first call that names it: it
    reads the room's claim ``gen`` (``pool.read_claim``) and goes on only if the claim names
    this host, else raises ``RoomGone`` (as it does for calls naming another room). A host
    restarted by Ray (its node died: ``max_restarts=-1``) starts blank again and takes its room
    back the same way, restoring it from its storage. A host that holds no room ends itself
    after ``ttl`` seconds.

    ``config``: ``namespace``, ``data_dir`` (absolute path), ``idle_timeout`` (seconds),
    ``rooms`` (the modules of room kinds the server hosts, imported here at start; None: the
    entry point group), ``snapshots`` (a snapshot spec, ``storage.factory``).
    ``room_classes``: kind -> ``Room`` subclass overriding the registry. The room's SQLite file
    lives under ``paths.node_data_dir`` (per node with S3 snapshots). Room state is started
    by the first call, so construction never fails on room code; a failed start ends the host
    (``_activate``).
    """

    def __init__(self, config: dict, room_classes: dict | None = None, ttl: float = SPARE_TTL):
        logging.basicConfig(level=config.get("log_level", "INFO"))
        self.config = config
        self.room_classes = dict(room_classes or {})
        if config.get("rooms") is not None or not self.room_classes:
            load_rooms(config.get("rooms"))  # import the game now, not when a room wakes here
        context = ray.get_runtime_context()
        self.name = context.get_actor_name()
        self.node_id = context.get_node_id()
        self.identity: tuple[str, str, int] | None = None
        self._adopting: asyncio.Task | None = None
        self._ttl = ttl
        heap.settle()  # Ray's, NumPy's and our modules: out of every later collection

    async def ready(self) -> dict:
        """Returns ``{"name", "pid", "node"}`` once the host is constructed; arms its TTL."""
        if self._ttl is not None:
            asyncio.get_running_loop().call_later(self._ttl, self._expire)
            self._ttl = None
        return {"name": self.name, "pid": os.getpid(), "node": self.node_id}

    def _expire(self) -> None:
        if self._adopting is None:
            log.info("spare room host %s held no room for %.0f s: it ends", self.name, SPARE_TTL)
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    async def _adopt(self, identity: tuple) -> None:
        kind, room_id, gen = identity = tuple(identity)
        if self._adopting is None:
            self._adopting = asyncio.ensure_future(self._take_on(kind, room_id, gen))
        try:
            await asyncio.shield(self._adopting)
        except RoomGone:
            raise
        except Exception:
            if self.identity is None and self._adopting.done():
                self._adopting = None  # the GCS did not answer: the next call tries again
            raise
        if self.identity != identity:
            raise RoomGone(f"{kind}/{room_id}#{gen}: this host holds {self.identity}")

    async def _take_on(self, kind: str, room_id: str, gen: int) -> None:
        ns = kv_namespace(self.config["namespace"])
        claim = await asyncio.to_thread(read_claim, ns, kind, room_id, gen)
        if claim is None or claim.host != self.name:
            raise RoomGone(f"{kind}/{room_id}#{gen} is not claimed by {self.name}")
        data_dir = Path(self.config["data_dir"])
        spec = self.config.get("snapshots")
        rooms_dir = node_data_dir(data_dir, self.node_id, s3_snapshots=bool(spec and spec.get("kind") == "s3"))
        config = self.config
        runtime = RoomRuntime(
            self.room_classes.get(kind) or room_class(kind),
            room_id,
            claim.params,
            db_path=room_db_path(rooms_dir, kind, room_id),
            clock=SystemClock(),
            snapshots=snapshot_store_from_config(spec, data_dir),
            idle_timeout=float(config.get("idle_timeout", 10.0)),
            on_exit=self._exit,
            alarm_service=_SchedulerClient(config),
            channel_host=ray.util.get_node_ip_address(),
            directory=lambda: RayDirectory(config, config.get("namespace", "starhold")),
        )
        LocalRoomHandle.__init__(self, runtime, kind, room_id)
        self.identity = (kind, room_id, gen)

    _starting: asyncio.Task | None = None  # the activation's one start attempt (start_task)

    async def _activate(self, identity: tuple) -> None:
        """Take on the room named by ``identity`` (``_adopt``) and start it on the first call
        (all concurrent calls share that attempt). A start that fails ends this host, as
        hibernation does (``_exit``): a host whose room never started would otherwise live
        on, holding its memory, with nothing to hibernate it; the next call claims a fresh
        host, which tries again (docs/rooms.md: a failed ``on_start`` is retried by the next
        call). The callers of the failed attempt get its exception (``StorageError`` when the
        snapshot store cannot be reached, what ``on_start`` raised); later callers of this
        host get ``RoomGone``."""
        await self._adopt(identity)
        if self._starting is None:
            self._starting = start_task(self.runtime, self._start_done)
        elif self._starting.done() and (self._starting.cancelled() or self._starting.exception() is not None):
            raise RoomGone(f"{self.kind}/{self.room_id}: its activation failed to start")
        await asyncio.shield(self._starting)

    def _start_done(self, exc: BaseException | None) -> None:
        if exc is None:
            return
        storage = isinstance(exc, StorageError)
        START_FAILURES.log(
            logging.WARNING, ("store unavailable" if storage else "start failed", self.kind),
            "room %s/%s failed to start (%s): %s; this actor ends, the next call starts a fresh one",
            self.kind, self.room_id, "its snapshot store is unreachable" if storage else "on_start raised",
            describe(exc), exc_info=exc)
        self._exiting = asyncio.ensure_future(self._exit())

    async def send_batch(self, identity: tuple, gateway_id: str, events: list[tuple]) -> int:
        await self._activate(identity)
        return await super().send_batch(gateway_id, events)

    async def pull(self, identity: tuple, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        await self._activate(identity)
        return await super().pull(gateway_id, timeout, epoch)

    async def open_channel(self, identity: tuple, gateway_id: str) -> dict:
        await self._activate(identity)
        return await super().open_channel(gateway_id)

    async def request(self, identity: tuple, request: HttpRequest) -> HttpResponse:
        await self._activate(identity)
        return await super().request(request)

    async def hibernate(self, identity: tuple) -> bool:
        await self._activate(identity)
        return await super().hibernate()

    async def fire_alarm(self, identity: tuple) -> bool:
        await self._activate(identity)
        return await super().fire_alarm()

    async def _exit(self) -> None:
        # Let in-flight replies (the hibernate call's, RoomGone to pullers) go out first, then
        # end without a restart, which frees the actor's name; the next call claims a new host.
        me = ray.get_runtime_context().current_actor
        asyncio.get_running_loop().call_later(0.05, lambda: ray.kill(me, no_restart=True))
        try:
            await asyncio.to_thread(forget_host, kv_namespace(self.config["namespace"]), self.name)
        except Exception:  # the GCS is away: the next claimant deletes the key
            pass

    async def stats(self, identity: tuple) -> dict:
        await self._adopt(identity)
        return {**await super().stats(), "pid": os.getpid(), "node": self.node_id, "host": self.name}

    async def migrate(self, identity: tuple) -> dict:
        """``LocalRoomHandle.migrate`` (hibernate for a move, gateways told ``("moved",)``), whose
        result also has ``node`` (the Ray node id this activation ran on, hex) and ``config``
        (the config it was created with, namespace included: ``starhold.drain`` wakes the room
        through a ``RayDirectory`` built from it, as its gateways would)."""
        await self._activate(identity)
        return {**await super().migrate(), "node": self.node_id, "config": self.config}


class SchedulerActor:
    """The singleton alarm scheduler of a namespace: an ``AlarmScheduler`` on the index of
    ``alarm_index_from_config(config)`` (``<data_dir>/scheduler.sqlite`` with local snapshots;
    objects under ``<prefix>_alarms/`` in the snapshot bucket with S3, so a scheduler restarted
    on another node keeps every alarm) that wakes rooms through a ``RayDirectory``. It loads its
    alarms on ``start()``, which the gateway calls at startup and every few seconds after
    (so a restarted scheduler resumes at once)."""

    def __init__(self, config: dict, room_classes: dict | None = None):
        logging.basicConfig(level=config.get("log_level", "INFO"))
        self.directory = RayDirectory(config, config["namespace"], room_classes)
        self.scheduler = AlarmScheduler(alarm_index_from_config(config), SystemClock(), self._wake)
        self._started: asyncio.Task | None = None

    async def start(self) -> int:
        """Open the alarm index (once; again after a failed attempt, e.g. S3 unreachable);
        returns how many alarms are pending."""
        if self._started is None or (self._started.done() and self._started.exception() is not None):
            self._started = asyncio.ensure_future(self.scheduler.open())
        await asyncio.shield(self._started)
        return len(await self.scheduler.pending())

    async def register(self, kind: str, room_id: str, at: float) -> None:
        await self.start()
        await self.scheduler.register(kind, room_id, at)

    async def pending(self) -> dict:
        await self.start()
        return {f"{k}/{r}": at for (k, r), at in (await self.scheduler.pending()).items()}

    async def _wake(self, kind: str, room_id: str) -> None:
        handle = await self.directory.get(kind, room_id)
        await handle.send_batch(SCHEDULER_NAME, [])


class _SchedulerClient:
    """The ``AlarmService`` a room actor uses: the namespace's ``SchedulerActor``."""

    def __init__(self, config: dict):
        self.config = config

    async def register(self, kind: str, room_id: str, at: float) -> None:
        scheduler = await asyncio.to_thread(scheduler_actor, self.config)
        await scheduler.register.remote(kind, room_id, at)


def scheduler_actor(config: dict, room_classes: dict | None = None):
    """The namespace's scheduler actor, created on first use (blocking: call it in a thread)."""
    return _RemoteScheduler.options(
        name=SCHEDULER_NAME, namespace=config["namespace"], get_if_exists=True, lifetime="detached",
        max_restarts=-1, num_cpus=0,
    ).remote(config, room_classes)


_RemoteRoomHost = ray.remote(RoomHost)
_RemoteScheduler = ray.remote(SchedulerActor)

MAX_CLAIM_ROUNDS = 16
"""Generations ``RayDirectory.get`` tries to claim before giving up with ``RoomGone`` (each
lost round means another caller won with a host that was dead by the time it was looked up)."""


class RayRoomHandle(RoomHandle):
    """A handle on the host holding generation ``gen`` of a room (``pool``). Host death, a
    hibernated room or a host that holds another generation raise ``RoomGone``."""

    def __init__(self, actor, kind: str, room_id: str, gen: int):
        self.actor = actor
        self.kind = kind
        self.room_id = room_id
        self.gen = gen
        self.identity = (kind, room_id, gen)

    async def _call(self, method: str, *args):
        RAY_CALLS[method] += 1
        try:
            return await getattr(self.actor, method).remote(self.identity, *args)
        except RoomGone:
            raise
        except RayActorError as exc:
            raise RoomGone(f"{self.kind}/{self.room_id}: {type(exc).__name__}") from None

    async def send_batch(self, gateway_id: str, events: list[tuple]) -> int:
        return await self._call("send_batch", gateway_id, events)

    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        return await self._call("pull", gateway_id, timeout, epoch)

    async def open_channel(self, gateway_id: str) -> dict:
        return await self._call("open_channel", gateway_id)

    async def request(self, request: HttpRequest) -> HttpResponse:
        return await self._call("request", request)

    async def stats(self) -> dict:
        return await self._call("stats")

    async def hibernate(self) -> bool:
        return await self._call("hibernate")

    async def fire_alarm(self) -> bool:
        return await self._call("fire_alarm")

    async def migrate(self) -> dict:
        """``RoomHost.migrate``: hibernate for a move to another node (``starhold drain``)."""
        return await self._call("migrate")


class RayDirectory(RoomDirectory):
    """Rooms on Ray actors (``RoomHost``) in ``namespace``; ``config`` is passed to every host.
    Which host holds which room is claimed in the GCS (``pool``). Needs ``ray.init()``."""

    def __init__(self, config: dict, namespace: str = "starhold", room_classes: dict | None = None,
                 pool_size: int = 0):
        """``room_classes``: kind -> ``Room`` subclass, overriding the registry; the classes
        travel to the hosts by value (cloudpickle), so a room defined in a test module works.
        ``pool_size``: spare hosts kept started, so that a room wakes without starting a
        process (a gateway keeps a few; room actors' own directories none)."""
        self.config = {**config, "namespace": namespace}
        self.namespace = namespace
        self._kv = kv_namespace(namespace)
        self._probe: asyncio.Future | None = None
        if config.get("rooms") is not None:  # the server's modules of room kinds (--rooms)
            load_rooms(config["rooms"])
        self.room_classes = dict(room_classes or {})
        for cls in self.room_classes.values():
            module = sys.modules.get(cls.__module__)
            if module is not None and not cls.__module__.startswith("starhold."):
                ray.cloudpickle.register_pickle_by_value(module)
                make_portable(cls)  # its message Structs too (msgspec classes lose their fields)
        self.pool = SparePool(pool_size, self._create_host, self._host_ready, SPARE_MAX_AGE)

    def _create_host(self, name: str):
        """Start a blank host named ``name`` (blocking: Ray's actor creation call)."""
        RAY_CALLS["create_host"] += 1
        return _RemoteRoomHost.options(
            name=name, namespace=self.namespace, lifetime="detached", max_restarts=-1, num_cpus=0,
            max_concurrency=1000,
        ).remote(self.config, self.room_classes or None)

    async def _host_ready(self, actor) -> dict:
        RAY_CALLS["ready"] += 1
        return await actor.ready.remote()

    async def start(self) -> None:
        """Start the alarm scheduler (``start_scheduler``) and top up the spare hosts. A
        scheduler failure (its index unreachable: S3 down, or no credentials on its node) is
        logged as one warning line, not raised: the gateway serves on and calls this again
        every few seconds."""
        self.pool.refill()
        try:
            await self.start_scheduler()
        except Exception as exc:
            log.warning("the alarm scheduler could not start: %s: %s", type(exc).__name__, str(exc)[:500])

    async def probe(self, timeout: float) -> None:
        """Raise unless Ray's GCS answers one small request (an internal KV read) within
        ``timeout`` seconds: ``TimeoutError`` (also while an earlier probe is still stuck in
        its thread: at most one runs at a time), or Ray's error (``RpcError``...). The
        gateway's ``/healthz`` runs it every 2 s."""
        if self._probe is not None and not self._probe.done():
            raise TimeoutError("the previous probe of Ray's GCS has not returned")

        def ask():
            gcs = ray._private.worker.global_worker.gcs_client
            gcs.internal_kv_get(b"starhold-probe", self.namespace.encode(), timeout=timeout)

        self._probe = asyncio.ensure_future(asyncio.to_thread(ask))
        await asyncio.wait_for(asyncio.shield(self._probe), timeout + 0.5)

    def room_class(self, kind: str) -> type:
        """``room_classes[kind]``, else the registry's class. Raises ``KeyError``."""
        return self.room_classes.get(kind) or room_class(kind)

    async def start_scheduler(self) -> int:
        """Create the namespace's alarm scheduler if needed and have it load its alarms;
        returns how many are pending. Idempotent: the gateway calls it periodically."""
        scheduler = await asyncio.to_thread(scheduler_actor, self.config, self.room_classes)
        RAY_CALLS["scheduler"] += 1
        return await scheduler.start.remote()

    def _lookup(self, kind: str, room_id: str, gen: int | None = None) -> tuple[int, str | None, object]:
        """``(gen, host, actor)`` of the room's claim ``gen`` (default: the latest recorded,
        ``pool.latest_hint``); ``host`` None when there is no such claim, ``actor`` None
        unless the host is alive. Blocking (two or three GCS RPCs)."""
        if gen is None:
            gen = latest_hint(self._kv, kind, room_id)
            if gen < 0:
                return -1, None, None
        claim = read_claim(self._kv, kind, room_id, gen)
        if claim is None:
            return gen, None, None
        try:
            return gen, claim.host, ray.get_actor(claim.host, namespace=self.namespace)
        except ValueError:  # dead: its name is free
            return gen, claim.host, None

    async def get(self, kind: str, room_id: str, params: dict | None = None) -> RayRoomHandle:
        """The handle on the room's live host; when its latest host is dead (or it never had
        one), claims the next generation with a spare host (``pool``). ``params`` are those
        of the claim that wins (later callers' are ignored, as with Ray's get-if-exists).
        Raises ``KeyError`` (unknown kind), ``ValueError`` (unsafe id), ``RoomGone`` when
        ``MAX_CLAIM_ROUNDS`` generations were lost in a row."""
        if kind not in self.room_classes:
            room_class(kind)  # KeyError for unknown kinds, before anything is created
        room_db_path(self.config["data_dir"], kind, room_id)  # ValueError for unsafe ids
        RAY_CALLS["get_or_create"] += 1
        gen, host, actor = await asyncio.to_thread(self._lookup, kind, room_id)
        for _ in range(MAX_CLAIM_ROUNDS):
            if actor is not None:
                return RayRoomHandle(actor, kind, room_id, gen)
            spare = await self.pool.take()
            won = await asyncio.to_thread(try_claim, self._kv, kind, room_id, gen + 1, spare.name,
                                          dict(params or {}), host)
            if won:
                RAY_CALLS["claim"] += 1
                return RayRoomHandle(spare.actor, kind, room_id, gen + 1)
            if not self.pool.give_back(spare):
                ray.kill(spare.actor, no_restart=True)
            gen, host, actor = await asyncio.to_thread(self._lookup, kind, room_id, gen + 1)
        raise RoomGone(f"{kind}/{room_id}: {MAX_CLAIM_ROUNDS} claims lost in a row")

    async def get_if_active(self, kind: str, room_id: str) -> RayRoomHandle | None:
        RAY_CALLS["get_actor"] += 1
        gen, _, actor = await asyncio.to_thread(self._lookup, kind, room_id)
        return None if actor is None else RayRoomHandle(actor, kind, room_id, gen)

    async def is_active(self, kind: str, room_id: str) -> bool:
        return await self.get_if_active(kind, room_id) is not None

    def host_names(self) -> list[str]:
        """Names of the live hosts of this namespace (``host:<hex>``), spares included."""
        return sorted(
            a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == self.namespace and a["name"].startswith(HOST_PREFIX)
        )

    def actor_names(self) -> list[str]:
        """``room:<kind>:<id>`` of every room held by a live host of this namespace (blocking)."""
        names = []
        for host in self.host_names():
            room = room_of_host(self._kv, host)
            if room is not None:
                names.append(actor_name(room[0], room[1]))
        return sorted(names)

    async def list_rooms(self) -> list[str]:
        names = await asyncio.to_thread(self.actor_names)
        return [name.split(":", 1)[1].replace(":", "/", 1) for name in names]

    async def close(self, hibernate_rooms: bool = True) -> None:
        """End this directory's spare hosts; optionally hibernate every live room of the
        namespace (snapshots taken)."""
        for spare in await self.pool.close():
            try:
                ray.kill(spare.actor, no_restart=True)
            except Exception:
                pass
        if not hibernate_rooms:
            return
        for name in await asyncio.to_thread(self.actor_names):
            _, kind, room_id = name.split(":", 2)
            handle = await self.get_if_active(kind, room_id)
            if handle is not None:
                try:
                    await handle.hibernate()
                except RoomGone:
                    pass


HEALTH_CHECK_CONFIG = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
"""Ray's node health checks as Starhold wants them (GCS ``_system_config``): a node that stops
answering is declared dead after about 3 s (Ray's defaults: 3 s x 5 failures, ~15 s), and its
room actors restart elsewhere. ``starhold serve`` applies it to the Ray it starts; for a
cluster, give it to the head: ``ray start --head --system-config='<this as JSON>'``."""


def forwarded_env(environ=os.environ) -> dict[str, str]:
    """The variables of ``FORWARDED_ENV`` that are set (non-empty) in ``environ``."""
    return {name: environ[name] for name in FORWARDED_ENV if environ.get(name)}


def ray_init_kwargs(address: str | None, namespace: str = "starhold", environ=os.environ, **kwargs) -> dict:
    """The keyword arguments ``init_ray`` gives ``ray.init``. ``address`` None means a fresh
    local Ray (``address="local"``: never the cluster named by ``RAY_ADDRESS`` or the last one
    started on this machine, ``/tmp/ray/ray_current_cluster``, which plain ``ray.init()``
    would join), without dashboard unless ``include_dashboard=True``. The set ``FORWARDED_ENV``
    variables of ``environ`` are added to ``runtime_env["env_vars"]`` (under any given there),
    so the job's actors get them on every node. Extra ``kwargs`` go to ``ray.init``."""
    kwargs = dict(kwargs)
    env = forwarded_env(environ)
    if env:
        runtime_env = dict(kwargs.get("runtime_env") or {})
        runtime_env["env_vars"] = {**env, **(runtime_env.get("env_vars") or {})}
        kwargs["runtime_env"] = runtime_env
    if not address:
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("_system_config", dict(HEALTH_CHECK_CONFIG))
    return {"address": address or "local", "namespace": namespace, **kwargs}


def init_ray(address: str | None = None, namespace: str = "starhold", **kwargs) -> None:
    """Connect to the Ray cluster at ``address``, or start a fresh local one (no dashboard
    unless ``include_dashboard=True``); see ``ray_init_kwargs``. Extra ``kwargs`` go to
    ``ray.init``. Does nothing when Ray is already initialized in this process."""
    if ray.is_initialized():
        return
    # Ray starts workers (our room actors) at nice 15 by default: on a busy machine they then
    # lose the CPU to the gateway and miss their ticks. Rooms are the latency-critical work.
    # (Read by the raylets this process starts: on a cluster set it where `ray start` runs.)
    os.environ.setdefault("RAY_worker_niceness", "0")
    # Per-task bookkeeping a room server does not use: handler timing statistics, task events
    # for the dashboard's task list, and Ray's own metrics (rooms report theirs through the
    # gateways' /metrics). Together they cost an idle room actor 2-4 % of a core here, and
    # more per call under load; without them an idle actor costs 0.3 %.
    for name in ("RAY_event_stats", "RAY_task_events_report_interval_ms", "RAY_enable_metrics_collection"):
        os.environ.setdefault(name, "0")
    ray.init(**ray_init_kwargs(address, namespace, **kwargs))


class RayConnectError(RuntimeError):
    """``check_ray_address`` could not connect; the message says why and what to set."""


AUTH_HELP = ("the cluster uses Ray's token authentication: set RAY_AUTH_MODE=token and give this process "
             "the cluster's token, as RAY_AUTH_TOKEN=<token>, RAY_AUTH_TOKEN_PATH=<file> or the file "
             "~/.ray/auth_token (`ray get-auth-token` on the head node prints it)")


def check_ray_address(address: str, environ=os.environ) -> None:
    """Connect to the GCS at ``address`` (``host:port``) once, before ``ray.init``, to turn
    Ray's retry loop (about 20 s of log lines, then a bare ``ConnectionError``) into one
    message. Raises ``RayConnectError`` saying whether the token was missing or wrong
    (``AUTH_HELP``; immediate) or the address unreachable (after Ray's GCS connect timeout,
    about 40 s). Blocking."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError, RpcError

    try:
        GcsClient(address=address)
    except AuthenticationError as exc:
        mode = environ.get("RAY_AUTH_MODE", "")
        if mode.lower() != "token":
            raise RayConnectError(f"Ray at {address} refused this process: {AUTH_HELP} "
                                  f"(RAY_AUTH_MODE is {mode or 'not set'})") from None
        raise RayConnectError(f"Ray at {address} refused this process's token ({exc}): give it the "
                              f"cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)") from None
    except (RpcError, ConnectionError, OSError) as exc:
        raise RayConnectError(f"cannot reach Ray's GCS at {address}: {exc} (is the head node up, and is "
                              f"{address} its address and GCS port, `ray start --head --port`?)") from None

"""The Ray host: one room = one Ray actor (DESIGN §4).

Actors are named ``room:<kind>:<id>`` in the directory's namespace (default ``starhold``) and
created on first use with ``get_if_exists=True``, ``lifetime="detached"``,
``max_restarts=-1`` and ``num_cpus=0`` (rooms are mostly idle; a CPU reservation each would
cap a 2-core node at two rooms). Ray's GCS is the directory of rooms. When its room hibernates
the actor kills itself without restart, freeing its name; the next ``get`` creates a new
activation, on whichever node Ray picks, which restores the room from its snapshot. An actor
whose room fails to start (its snapshot store unreachable, ``on_start`` raising) ends itself
the same way, so that no actor outlives a failed start; the next call creates a fresh one.

Alarms of sleeping rooms are held by one more actor, ``scheduler`` in the same namespace
(``SchedulerActor``: an ``AlarmScheduler`` on ``scheduler.alarm_index_from_config``: its own
SQLite file with local snapshots, one object per alarm in the snapshot bucket with S3), which
wakes their rooms when the alarms fall due.

A room actor keeps its SQLite file under ``paths.node_data_dir``: the node's
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
    """The Ray actor name of a room: ``room:<kind>:<id>``."""
    return f"room:{kind}:{room_id}"


class RoomActor(LocalRoomHandle):
    """Hosts one ``RoomRuntime`` in a Ray actor process (an async actor: one event loop); its
    methods are those of the in-process handle, called remotely.

    ``config``: ``data_dir`` (absolute path), ``idle_timeout`` (seconds), ``rooms`` (the modules
    of room kinds the server hosts, loaded here too; None: the entry point group),
    ``snapshots`` (a snapshot spec, ``storage.factory``). The room's SQLite file lives under
    ``paths.node_data_dir`` (per node with S3 snapshots). Room state is started lazily by the
    first call, so construction never fails on room code; a failed start ends the actor
    (``_activate``).
    """

    def __init__(self, kind: str, room_id: str, params: dict, config: dict, cls: type | None = None):
        logging.basicConfig(level=config.get("log_level", "INFO"))
        if cls is None and config.get("rooms") is not None:
            load_rooms(config["rooms"])
        data_dir = Path(config["data_dir"])
        spec = config.get("snapshots")
        rooms_dir = node_data_dir(data_dir, ray.get_runtime_context().get_node_id(),
                                  s3_snapshots=bool(spec and spec.get("kind") == "s3"))
        runtime = RoomRuntime(
            cls or room_class(kind),
            room_id,
            params,
            db_path=room_db_path(rooms_dir, kind, room_id),
            clock=SystemClock(),
            snapshots=snapshot_store_from_config(config.get("snapshots"), data_dir),
            idle_timeout=float(config.get("idle_timeout", 10.0)),
            on_exit=self._exit,
            alarm_service=_SchedulerClient(config),
            channel_host=ray.util.get_node_ip_address(),
            directory=lambda: RayDirectory(config, config.get("namespace", "starhold")),
        )
        super().__init__(runtime, kind, room_id)
        heap.settle()  # Ray's, NumPy's and our modules: out of every later collection

    _starting: asyncio.Task | None = None  # the activation's one start attempt (start_task)

    async def _activate(self) -> None:
        """Start the room on the first call (all concurrent calls share that attempt). A start
        that fails ends this actor, as hibernation does (``_exit``): an actor whose room never
        started would otherwise live on, holding its memory, with nothing to hibernate it; the
        next call creates a fresh actor, which tries again (docs/rooms.md: a failed
        ``on_start`` is retried by the next call). The callers of the failed attempt get its
        exception (``StorageError`` when the snapshot store cannot be reached, what
        ``on_start`` raised); later callers of this actor get ``RoomGone``."""
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

    async def send_batch(self, gateway_id: str, events: list[tuple]) -> int:
        await self._activate()
        return await super().send_batch(gateway_id, events)

    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        await self._activate()
        return await super().pull(gateway_id, timeout, epoch)

    async def open_channel(self, gateway_id: str) -> dict:
        await self._activate()
        return await super().open_channel(gateway_id)

    async def request(self, request: HttpRequest) -> HttpResponse:
        await self._activate()
        return await super().request(request)

    async def hibernate(self) -> bool:
        await self._activate()
        return await super().hibernate()

    async def fire_alarm(self) -> bool:
        await self._activate()
        return await super().fire_alarm()

    async def _exit(self) -> None:
        # Let in-flight replies (the hibernate call's, RoomGone to pullers) go out first, then
        # end without a restart, which frees the actor's name for the next activation.
        me = ray.get_runtime_context().current_actor
        asyncio.get_running_loop().call_later(0.05, lambda: ray.kill(me, no_restart=True))

    async def stats(self) -> dict:
        return {**await super().stats(), "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    async def migrate(self) -> dict:
        """``LocalRoomHandle.migrate`` (hibernate for a move, gateways told ``("moved",)``), whose
        result also has ``node`` (the Ray node id this activation ran on, hex) and ``config``
        (the config it was created with, namespace included: ``starhold.drain`` wakes the room
        through a ``RayDirectory`` built from it, as its gateways would)."""
        config = self.runtime.directory().config  # the RayDirectory built from this actor's config
        return {**await super().migrate(), "node": ray.get_runtime_context().get_node_id(), "config": config}


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


_RemoteRoomActor = ray.remote(RoomActor)
_RemoteScheduler = ray.remote(SchedulerActor)


class RayRoomHandle(RoomHandle):
    """A handle on a room actor. Actor death or a hibernated room raise ``RoomGone``."""

    def __init__(self, actor, kind: str, room_id: str):
        self.actor = actor
        self.kind = kind
        self.room_id = room_id

    async def _call(self, method: str, *args):
        RAY_CALLS[method] += 1
        try:
            return await getattr(self.actor, method).remote(*args)
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
        """``RoomActor.migrate``: hibernate for a move to another node (``starhold drain``)."""
        return await self._call("migrate")


class RayDirectory(RoomDirectory):
    """Rooms as Ray actors in ``namespace``; ``config`` is passed to every ``RoomActor``.
    Needs ``ray.init()`` to have been called."""

    def __init__(self, config: dict, namespace: str = "starhold", room_classes: dict | None = None):
        """``room_classes``: kind -> ``Room`` subclass, overriding the registry; the classes
        travel to the actors by value (cloudpickle), so a room defined in a test module works."""
        self.config = {**config, "namespace": namespace}
        self.namespace = namespace
        self._probe: asyncio.Future | None = None
        if config.get("rooms") is not None:  # the server's modules of room kinds (--rooms)
            load_rooms(config["rooms"])
        self.room_classes = dict(room_classes or {})
        for cls in self.room_classes.values():
            module = sys.modules.get(cls.__module__)
            if module is not None and not cls.__module__.startswith("starhold."):
                ray.cloudpickle.register_pickle_by_value(module)
                make_portable(cls)  # its message Structs too (msgspec classes lose their fields)

    async def start(self) -> None:
        """Start the alarm scheduler (``start_scheduler``). A failure (its index unreachable:
        S3 down, or no credentials on its node) is logged as one warning line, not raised: the
        gateway serves on and calls this again every few seconds."""
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

    async def get(self, kind: str, room_id: str, params: dict | None = None) -> RayRoomHandle:
        cls = self.room_classes.get(kind)
        if cls is None:
            room_class(kind)  # KeyError for unknown kinds, before anything is created
        room_db_path(self.config["data_dir"], kind, room_id)  # ValueError for unsafe ids

        def create():
            return _RemoteRoomActor.options(
                name=actor_name(kind, room_id),
                namespace=self.namespace,
                get_if_exists=True,
                lifetime="detached",
                max_restarts=-1,
                num_cpus=0,
                max_concurrency=1000,
            ).remote(kind, room_id, dict(params or {}), self.config, cls)

        RAY_CALLS["get_or_create"] += 1
        actor = await asyncio.to_thread(create)
        return RayRoomHandle(actor, kind, room_id)

    async def get_if_active(self, kind: str, room_id: str) -> RayRoomHandle | None:
        def lookup():
            try:
                return ray.get_actor(actor_name(kind, room_id), namespace=self.namespace)
            except ValueError:
                return None

        RAY_CALLS["get_actor"] += 1
        actor = await asyncio.to_thread(lookup)
        return None if actor is None else RayRoomHandle(actor, kind, room_id)

    async def is_active(self, kind: str, room_id: str) -> bool:
        return await self.get_if_active(kind, room_id) is not None

    def actor_names(self) -> list[str]:
        """Names of the live room actors in this namespace (``room:<kind>:<id>``)."""
        return sorted(
            a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == self.namespace and a["name"].startswith("room:")
        )

    async def list_rooms(self) -> list[str]:
        names = await asyncio.to_thread(self.actor_names)
        return [name.split(":", 1)[1].replace(":", "/", 1) for name in names]

    async def close(self, hibernate_rooms: bool = True) -> None:
        """Optionally hibernate every live room of the namespace (snapshots taken)."""
        if not hibernate_rooms:
            return
        for name in self.actor_names():
            _, kind, room_id = name.split(":", 2)
            try:
                actor = ray.get_actor(name, namespace=self.namespace)
                await RayRoomHandle(actor, kind, room_id).hibernate()
            except (RoomGone, ValueError):
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

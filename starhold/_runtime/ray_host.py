"""The Ray host: rooms run by room host actors that a host pool places (DESIGN §4).

Each namespace (default ``starhold``) has one ``HostPool`` actor, ``hosts``
(``starhold._runtime.host_pool``), which maps every awake room to the ``RoomHost`` actor
(``starhold._runtime.room_host``, named ``host:<hex>``) that runs it, up to ``rooms_per_host``
rooms per host, and keeps spare hosts started so that a waking room costs actor calls, not a
new process. ``RayDirectory.get`` asks the pool for the room's host and returns a
``RayRoomHandle`` whose calls go to that host with the room's ``kind, room_id``. When its room
hibernates, the host forgets it and tells the pool; the next ``get`` assigns a new
activation, possibly on another host or node, which restores the room from its snapshot. A
room whose start fails (its snapshot store unreachable, ``on_start`` raising) is forgotten the
same way; the next call starts a fresh activation. ``room:<kind>:<id>`` (``actor_name``)
remains the name ops and tests use for a room (``RayDirectory.actor_names``).

Alarms of sleeping rooms are held by the pool's actor too (``pool_alarms.PoolAlarms``: an
``AlarmScheduler`` on ``scheduler.alarm_index_from_config``: its own SQLite file with local
snapshots, one object per alarm in the snapshot bucket with S3), which wakes their rooms when
the alarms fall due.

A room keeps its SQLite file under ``paths.node_data_dir``: the node's
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

import ray
from ray.exceptions import RayActorError

from ..kinds import load_rooms, room_class
from ..messages import make_portable
from ..room import HttpRequest, HttpResponse
from .handle import RoomDirectory, RoomGone, RoomHandle
from .host_pool import POOL_NAME, pool_actor
from .paths import room_db_path
from .room_host import RoomHost

FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_ENDPOINT_URL")
"""Environment variables that ``init_ray`` hands to the job's actors (the room hosts and the
host pool, on any node) through ``runtime_env={"env_vars": ...}``, those that are set."""

log = logging.getLogger("starhold.ray")

RAY_CALLS: collections.Counter = collections.Counter()
"""Ray actor calls made by this process's handles, by method name."""


def actor_name(kind: str, room_id: str) -> str:
    """A room's name as ``RayDirectory.actor_names`` lists it: ``room:<kind>:<id>``."""
    return f"room:{kind}:{room_id}"


_RemoteHost = ray.remote(RoomHost)


def remote_host(config: dict, name: str, room_classes: dict | None = None, node: str | None = None):
    """Create room host ``name`` (``host:<hex>``) in the config's namespace: detached, no
    restart (``room_host``), no CPU reservation (rooms are mostly idle; a CPU each would cap a
    2-core node at two hosts), spread over the nodes, or on node ``node`` (hex id) if given.
    Blocking: call it in a thread."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    strategy = "SPREAD" if node is None else NodeAffinitySchedulingStrategy(node, soft=False)
    return _RemoteHost.options(
        name=name, namespace=config["namespace"], lifetime="detached", max_restarts=0, num_cpus=0,
        max_concurrency=1000, scheduling_strategy=strategy,
    ).remote(name, config, room_classes)


class RayRoomHandle(RoomHandle):
    """A handle on a room run by a room host (``room_host.RoomHost``): each call goes to the
    host actor with the room's ``kind, room_id`` first. The host's death, or the room gone
    from it (hibernated, never started there), raise ``RoomGone``; the handle then tells its
    directory, whose next ``get`` has the pool check that host (``HostPool.get``'s
    ``stale``)."""

    def __init__(self, actor, kind: str, room_id: str, host: str = "", directory: "RayDirectory | None" = None):
        self.actor = actor
        self.kind = kind
        self.room_id = room_id
        self.host = host
        self.directory = directory

    async def _call(self, method: str, *args):
        RAY_CALLS[method] += 1
        try:
            return await getattr(self.actor, method).remote(self.kind, self.room_id, *args)
        except RoomGone:
            self._gone()
            raise
        except RayActorError as exc:
            self._gone()
            raise RoomGone(f"{self.kind}/{self.room_id}: {type(exc).__name__}") from None

    def _gone(self) -> None:
        if self.directory is not None:
            self.directory._stale[(self.kind, self.room_id)] = self.host

    async def send_batch(self, gateway_id: str, events: list[tuple]) -> int:
        return await self._call("send_batch", gateway_id, events)

    async def pull(self, gateway_id: str, timeout: float, epoch: int | None = None) -> list[tuple]:
        return await self._call("pull", gateway_id, timeout, epoch)

    async def open_channel(self, gateway_id: str) -> dict:
        return await self._call("open_channel", gateway_id)

    async def request(self, request: HttpRequest) -> HttpResponse:
        return await self._call("request", request)

    async def stats(self) -> dict:
        """The runtime's figures plus ``pid``, ``node`` (Ray node id, hex) and ``host`` (the
        host actor's name)."""
        return await self._call("stats")

    async def hibernate(self) -> bool:
        return await self._call("hibernate")

    async def fire_alarm(self) -> bool:
        return await self._call("fire_alarm")

    async def migrate(self) -> dict:
        """``RoomHost.migrate``: hibernate for a move to another node (``starhold drain``)."""
        return await self._call("migrate")


class RayDirectory(RoomDirectory):
    """Rooms run by room hosts (Ray actors) in ``namespace``, placed by the namespace's
    ``HostPool`` (``starhold._runtime.host_pool``); ``config`` is given to the pool and every
    host: ``data_dir`` (absolute), ``idle_timeout`` (seconds), ``rooms`` (modules of room
    kinds), ``snapshots`` (spec), ``rooms_per_host`` (default 10), ``spare_hosts`` (default 2), ``pool_on_head`` (place the
    host pool on the head node; default False),
    ``log_level``. Needs ``ray.init()`` to have been called."""

    def __init__(self, config: dict, namespace: str = "starhold", room_classes: dict | None = None):
        """``room_classes``: kind -> ``Room`` subclass, overriding the registry; the classes
        travel to the pool and hosts by value (cloudpickle), so a room defined in a test
        module works."""
        self.config = {**config, "namespace": namespace}
        self.namespace = namespace
        self._probe: asyncio.Future | None = None
        self._pool = None
        self._stale: dict[tuple[str, str], str] = {}
        if config.get("rooms") is not None:  # the server's modules of room kinds (--rooms)
            load_rooms(config["rooms"])
        self.room_classes = dict(room_classes or {})
        for cls in self.room_classes.values():
            module = sys.modules.get(cls.__module__)
            if module is not None and not cls.__module__.startswith("starhold."):
                ray.cloudpickle.register_pickle_by_value(module)
                make_portable(cls)  # its message Structs too (msgspec classes lose their fields)

    async def start(self) -> None:
        """Start the host pool (spare hosts) and the alarm scheduler (``start_scheduler``). A
        failure (the scheduler's index unreachable: S3 down, or no credentials on its node) is
        logged as one warning line, not raised: the gateway serves on and calls this again
        every few seconds."""
        try:
            await self._call_pool("start")
        except Exception as exc:
            log.warning("the host pool could not start: %s: %s", type(exc).__name__, str(exc)[:500])
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
        """Have the namespace's alarm scheduler (in the host pool's actor, created if needed)
        load its alarms; returns how many are pending. Idempotent: the gateway calls it
        periodically. Raises what opening its index raised, ``RoomGone`` while the pool
        restarts."""
        return await self._call_pool("start_scheduler")

    async def pending_alarms(self) -> dict[str, float]:
        """``{"kind/room_id": due time (Unix seconds)}`` of the alarms of sleeping rooms."""
        return await self._call_pool("pending")

    async def _call_pool(self, method: str, *args):
        """Call the host pool (created on first use). While Ray restarts it (its node lost)
        the call raises ``RoomGone``: callers resolve the room again after a pause."""
        RAY_CALLS[f"pool.{method}"] += 1
        if self._pool is None:
            self._pool = await asyncio.to_thread(pool_actor, self.config, self.room_classes)
        try:
            return await getattr(self._pool, method).remote(*args)
        except RayActorError as exc:
            raise RoomGone(f"the host pool of {self.namespace} is restarting: {type(exc).__name__}") from None

    async def get(self, kind: str, room_id: str, params: dict | None = None) -> RayRoomHandle:
        """A handle on the room, assigned to a host by the pool if it was asleep (the room
        starts on the handle's first call, which raises what the start raised). Raises
        ``KeyError`` for an unknown kind and ``ValueError`` for an unsafe room id before
        anything is placed, ``RoomGone`` while the pool restarts."""
        if kind not in self.room_classes:
            room_class(kind)  # KeyError for unknown kinds, before anything is created
        room_db_path(self.config["data_dir"], kind, room_id)  # ValueError for unsafe ids
        stale = self._stale.pop((kind, room_id), None)
        name, actor = await self._call_pool("get", kind, room_id, dict(params or {}), stale)
        return RayRoomHandle(actor, kind, room_id, name, self)

    async def place(self, kind: str, room_id: str, node: str, params: dict | None = None) -> RayRoomHandle:
        """``get``, placing a sleeping room on a host on Ray node ``node`` (hex id); an awake
        room stays where it is (hibernate it first to move it)."""
        room_db_path(self.config["data_dir"], kind, room_id)
        name, actor = await self._call_pool("get", kind, room_id, dict(params or {}), None, node)
        return RayRoomHandle(actor, kind, room_id, name, self)

    async def placement(self) -> dict[str, str]:
        """``{"kind/room_id": Ray node id}`` of the awake rooms."""
        return await self._call_pool("placement")

    async def get_if_active(self, kind: str, room_id: str) -> RayRoomHandle | None:
        found = await self._call_pool("lookup", kind, room_id)
        return None if found is None else RayRoomHandle(found[1], kind, room_id, found[0], self)

    async def is_active(self, kind: str, room_id: str) -> bool:
        return await self.get_if_active(kind, room_id) is not None

    def _existing_pool(self):
        try:
            return ray.get_actor(POOL_NAME, namespace=self.namespace)
        except ValueError:
            return None

    def actor_names(self) -> list[str]:
        """``room:<kind>:<id>`` of the rooms awake in this namespace (blocking: one call to the
        pool; none when it was never started)."""
        pool = self._existing_pool()
        if pool is None:
            return []
        return sorted("room:" + key.replace("/", ":", 1) for key in ray.get(pool.rooms.remote()))

    def host_names(self) -> list[str]:
        """Names of the live room host actors of this namespace (``host:<hex>``; blocking)."""
        return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["namespace"] == self.namespace and a["name"].startswith("host:"))

    async def list_rooms(self) -> list[str]:
        return sorted(await self._call_pool("rooms"))

    async def close(self, hibernate_rooms: bool = True) -> None:
        """Optionally hibernate every live room of the namespace (snapshots taken)."""
        if not hibernate_rooms or await asyncio.to_thread(self._existing_pool) is None:
            return
        for key, name in (await self._call_pool("rooms")).items():
            kind, room_id = key.split("/", 1)
            found = await self._call_pool("lookup", kind, room_id)
            if found is None:
                continue
            try:
                await RayRoomHandle(found[1], kind, room_id, found[0]).hibernate()
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
    apply_ray_env_defaults()
    ray.init(**ray_init_kwargs(address, namespace, **kwargs))


RAY_ENV_DEFAULTS = {
    # Ray starts workers (our room actors) at nice 15 by default: on a busy machine they then
    # lose the CPU to the gateway and miss their ticks. Rooms are the latency-critical work.
    "RAY_worker_niceness": "0",
    # Per-task bookkeeping a room server does not use: handler timing statistics, task events
    # for the dashboard's task list, and Ray's own metrics (rooms report theirs through the
    # gateways' /metrics). Together they cost an idle room actor 2-4 % of a core here, and
    # more per call under load; without them an idle actor costs 0.3 %.
    "RAY_event_stats": "0",
    "RAY_task_events_report_interval_ms": "0",
    "RAY_enable_metrics_collection": "0",
    # Ray's log monitor (which forwards the actors' output to the driver) lists the session's
    # log directory ten times a second while it holds fewer than this many files: 0.7-0.8 % of
    # a core here, idle. With 0 it lists it every LOG_NAME_UPDATE_INTERVAL_S seconds (0.3 %): a
    # new process's output reaches the driver up to 2 s later, none of it lost (it reads new
    # files from their start).
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0",
    "LOG_NAME_UPDATE_INTERVAL_S": "2",
}
"""Environment variables ``init_ray`` sets (where unset) before starting a local Ray: read by
the raylet, the workers and the log monitor that ``ray.init`` starts. On a cluster set them
where ``ray start`` runs."""


def apply_ray_env_defaults(environ=os.environ) -> dict[str, str]:
    """Set each ``RAY_ENV_DEFAULTS`` variable that ``environ`` does not set (an operator's value
    wins); returns the ones set."""
    applied = {name: value for name, value in RAY_ENV_DEFAULTS.items() if name not in environ}
    environ.update(applied)
    return applied


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

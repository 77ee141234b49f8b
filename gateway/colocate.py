"""Sockets in room hosts: a player's WebSocket served by the process that runs its room.

Without this, every input and every frame crosses two processes on its way: the gateway process
that holds the socket, then the room host (a Ray actor) over the room's data channel
(``starhold._runtime.channel``), and back. A Durable Object holds its WebSockets in the object
itself once the Worker has routed the upgrade; ``starhold serve`` (``--colocate``, its default)
does the same on one node: a gateway process that accepts the upgrade of a room that is **awake
on a host of this node** passes the connection (file-descriptor passing, as room affinity does
between gateway processes: ``gateway/affinity.py``) to that host, which serves it with a gateway
of its own (``HostSockets``, started on the first hand-off) on its own event loop. That gateway
reaches its rooms through the in-process channel (the batches and pushes handed over as objects,
no TCP, no msgpack), so an input and its frame cross no process boundary but the client's.

The upgrade of a room that sleeps is a wake: the gateway has the pool place the room
(``RoomDirectory.get``, with the kind's params), starts its activation (an empty batch, the
room's first call) without waiting for it, and hands the socket to the host it was placed on, so
that every socket of an awake room sits in its host from the first one on (a room with one
socket left in a node gateway would wait at each tick's input barrier for that process's mark:
``gateway/room_link.py``). A start that fails is seen by the socket as any failed wake (the
host's gateway refuses it as a gateway would: docs/protocol.md), and the room is not woken on
an upgrade again for ``WAKE_HOLD`` seconds: meanwhile its upgrades are served where they land,
whose link refuses them at once while its own failure holds. Concurrent upgrades to one room
share one lookup (one pool call per room, not per socket, in a join storm).

The rest is unchanged. The upgrade of a room on another node is served where it lands (the data
channel proxies it); so is any upgrade when the pool cannot answer, or the host cannot be
reached or refuses (a hand-off never refuses a player). A host's gateway is a gateway like any
other: the same token check, limits, admission control and protocol; when its room moves
(``starhold drain``) or sleeps, its sockets stay open and follow the room over the data channel,
as a gateway's would.

What changes for operations: a host's sockets live and die with its process. A host that crashes
(or is killed) drops them (1006) as a gateway that crashes does, and their clients reconnect and
take their seats back (docs/protocol.md); a host holding sockets is not retired while it holds
them. When ``starhold serve`` shuts down, each gateway process has the hosts that took its
sockets close them with 1001 (``close_sockets``) before the rooms hibernate, as it closes its
own; a ``starhold gateway`` that stops leaves them open. The host's gateway does not serve
``/metrics`` itself: a node gateway process reports it, in its own ``/metrics``, as samples
labelled ``host="<host name>"`` (``HostRouter.metrics``, ``gateway.metrics.exposition``). Each
host is reported by one gateway process, the first that asks for its figures (its owner), so
summing over the gateway processes' scrape targets counts every socket once; a host whose owner
has not asked for ``METRICS_OWNER_TIMEOUT`` seconds (a gateway process that died) is taken over
by the next that asks."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..ratelog import RateLimitedLog, describe
from .room_link import UNAVAILABLE_HOLD

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("starhold.gateway")

HOST_RETRY = 30.0
"""Seconds a gateway does not ask a host again after the host could not take sockets."""
ROUTE_TTL = 5.0
"""Seconds a gateway remembers where an awake room runs before asking the pool again: a join
storm costs one pool call per room, not per socket. A room that moved or slept meanwhile is
still served correctly (the host's gateway reaches it wherever it is). That a room sleeps is
not remembered."""
ROUTES_MAX = 10_000
"""Rooms remembered at most (routes, and rooms that could not wake); the oldest half is
forgotten when it is full."""
WAKE_HOLD = UNAVAILABLE_HOLD
"""Seconds during which a room whose wake on an upgrade failed (placing it, or starting its
activation) is not woken on an upgrade again: its upgrades are served where they land."""
METRICS_TIMEOUT = 2.0
"""Seconds a scrape waits for the hosts' metrics; a host that has not answered is left out of it."""
CLOSE_TIMEOUT = 10.0
"""Seconds a shutting-down gateway waits for its hosts to close their sockets (``close_sockets``)."""
METRICS_OWNER_TIMEOUT = 60.0
"""Seconds after which a host whose owner has not asked for its metrics reports to the next
gateway process that asks (see the module docstring)."""
FAILURES = RateLimitedLog(log)


def host_sockets_dir(pid: int) -> Path:
    """The directory (mode 0700) of the hand-off socket of the room host process ``pid``."""
    return Path(tempfile.gettempdir()) / f"starhold-host-{pid}"


class HostRouter:
    """A gateway process's side: where to send the upgrade of a room (see the module docstring).

    ``directory``: the gateway's ``RayDirectory``; ``config``: the plain data a host needs to
    build its gateway (``gateway_config``), sent with the first request to each host;
    ``node``: this process's Ray node id (default: asked of Ray on first use)."""

    def __init__(self, directory, config: dict, node: str | None = None):
        self.directory = directory
        self.config = config
        self._node = node
        self._hosts: dict[str, tuple[Path | None, float]] = {}  # host name -> (hand-off path or None, until)
        self._asking: dict[str, asyncio.Future] = {}
        self._routes: dict[tuple[str, str], tuple[tuple, float]] = {}  # room -> ((host, actor), until)
        self._routing: dict[tuple[str, str], asyncio.Future] = {}  # room -> its lookup in flight
        self._unwakeable: dict[tuple[str, str], float] = {}  # room -> until when it is not woken here
        self._starting: set[asyncio.Future] = set()  # activations started here, until they answer
        self._serving: dict[str, object] = {}  # host name -> actor, for the hosts that took our sockets
        self.closed = False
        """Set by ``close_sockets``: the server is shutting down and nothing is handed off."""
        self.gateway_id = f"router-{os.getpid()}"
        """Who the rooms started here hear from: their first call is an empty batch from this id."""

    def _this_node(self) -> str:
        if self._node is None:
            import ray

            self._node = ray.get_runtime_context().get_node_id()
        return self._node

    async def target(self, kind: str, room_id: str, wake: dict | None = None) -> tuple[str, Path] | None:
        """``(host name, hand-off socket path)`` of the host of this node running room
        ``kind/room_id`` now, or None: the room runs on another node, sleeps (and ``wake`` is
        None, or it could not wake on an upgrade less than ``WAKE_HOLD`` seconds ago), or its
        host cannot take sockets (then not asked again for ``HOST_RETRY`` seconds). ``wake``:
        wake a sleeping room with these params (see the module docstring). One Ray call to the
        pool per room per ``ROUTE_TTL``, shared by concurrent callers, plus one to the host the
        first time. Never raises."""
        if self.closed:
            return None
        route = await self._route(kind, room_id, wake)
        if route is None:
            return None
        host, actor = route
        path, until = self._hosts.get(host, (None, 0.0))
        if path is None and time.monotonic() >= until:
            path = await self._ask(host, actor)
        return (host, path) if path is not None else None

    async def _route(self, kind: str, room_id: str, wake: dict | None) -> tuple | None:
        """``(host name, host actor)`` of the room (remembered ``ROUTE_TTL`` seconds), None when
        it sleeps (and is not woken) or the pool cannot say. One lookup per room at a time."""
        key = (kind, room_id)
        route, until = self._routes.get(key, (None, 0.0))
        if time.monotonic() < until:
            return route
        pending = self._routing.get(key)
        if pending is None:
            pending = self._routing[key] = asyncio.ensure_future(self._look_up(key, wake))
            pending.add_done_callback(lambda _: self._routing.pop(key, None))
        return await asyncio.shield(pending)

    async def _look_up(self, key: tuple[str, str], wake: dict | None) -> tuple | None:
        kind, room_id = key
        try:
            handle = await self.directory.get_if_active(kind, room_id)
        except Exception as exc:  # noqa: BLE001 - the pool is busy or restarting: serve here
            FAILURES.log(logging.INFO, "active", "cannot tell where %s/%s runs (%s); serving here", kind, room_id,
                         describe(exc))
            return None
        if handle is None and wake is not None and time.monotonic() >= self._unwakeable.get(key, 0.0):
            handle = await self._wake(key, wake)
        actor, host = getattr(handle, "actor", None), getattr(handle, "host", "")
        if handle is None or actor is None or not host:
            return None  # not remembered: the next socket may be the one that finds it awake
        self._remember(self._routes, key, ((host, actor), time.monotonic() + ROUTE_TTL))
        return host, actor

    async def _wake(self, key: tuple[str, str], params: dict):
        """Place the sleeping room ``key`` and start its activation without waiting for it; the
        room's handle, or None when it could not be placed (then not woken here for
        ``WAKE_HOLD`` seconds)."""
        try:
            handle = await self.directory.get(key[0], key[1], params)
        except Exception as exc:  # noqa: BLE001 - the pool is restarting, the kind is not hosted...
            self._wake_failed(key, exc)
            return None
        start = asyncio.ensure_future(handle.send_batch(self.gateway_id, []))
        self._starting.add(start)
        start.add_done_callback(lambda done: self._started(key, done))
        return handle

    def _started(self, key: tuple[str, str], start: asyncio.Future) -> None:
        self._starting.discard(start)
        if not start.cancelled() and start.exception() is not None:
            self._wake_failed(key, start.exception())
            self._routes.pop(key, None)

    def _wake_failed(self, key: tuple[str, str], exc: BaseException) -> None:
        FAILURES.log(logging.INFO, "wake", "room %s/%s did not wake on an upgrade (%s); its upgrades are served "
                     "where they land for %.0f s", key[0], key[1], describe(exc), WAKE_HOLD)
        self._remember(self._unwakeable, key, time.monotonic() + WAKE_HOLD)

    @staticmethod
    def _remember(table: dict, key, value) -> None:
        """``table[key] = value``, forgetting the oldest half of ``table`` first when it holds
        ``ROUTES_MAX`` entries."""
        if len(table) >= ROUTES_MAX:
            for old in list(table)[:ROUTES_MAX // 2]:
                del table[old]
        table.pop(key, None)
        table[key] = value

    async def _ask(self, host: str, actor) -> Path | None:
        """The hand-off path of ``host`` (starting its gateway), or None; one call per host at a time."""
        pending = self._asking.get(host)
        if pending is None:
            pending = self._asking[host] = asyncio.ensure_future(self._call(host, actor))
            pending.add_done_callback(lambda _: self._asking.pop(host, None))
        return await asyncio.shield(pending)

    async def _call(self, host: str, actor) -> Path | None:
        path = None
        try:
            info = await actor.serve_sockets.remote(self.config)
            if info.get("node") == self._this_node():
                path = Path(info["path"])
                self._serving[host] = actor
        except Exception as exc:  # noqa: BLE001 - an old host, a dying one: serve here
            FAILURES.log(logging.WARNING, ("host", host), "host %s cannot take sockets (%s); serving its rooms' "
                         "sockets in the gateway", host, describe(exc))
        self._hosts[host] = (path, time.monotonic() + HOST_RETRY)
        return path

    async def metrics(self, gateway_id: str, timeout: float = METRICS_TIMEOUT) -> list[tuple[str, bytes]]:
        """``(host name, exposition)`` of each host of this node that took sockets from this
        process and reports to ``gateway_id`` (this process's id: see the module docstring),
        asked in parallel for at most ``timeout`` seconds; a host that has not answered by then
        is left out of this scrape, one whose call failed (its actor died) is forgotten. Never
        raises."""
        if not self._serving:
            return []
        hosts = list(self._serving.items())
        calls = [asyncio.ensure_future(actor.socket_metrics.remote(gateway_id)) for _, actor in hosts]
        done, pending = await asyncio.wait(calls, timeout=timeout)
        for call in pending:
            call.cancel()
        out = []
        for (host, actor), call in zip(hosts, calls):
            if call not in done:
                continue
            exc = call.exception()
            if exc is not None:
                if self._serving.get(host) is actor:
                    del self._serving[host]
                log.debug("host %s: no metrics (%s)", host, describe(exc))
            elif call.result():
                out.append((host, call.result()))
        return out

    async def close_sockets(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """The server is shutting down: hand nothing off from now on (``target`` returns None)
        and have every host that took sockets from this process close them with 1001 (going
        away: ``RoomHost.close_sockets``), as the gateway closes its own; waits at most
        ``timeout`` seconds, in parallel. Returns how many sockets the hosts closed. Never
        raises (a dead host's sockets are gone already)."""
        self.closed = True
        hosts, self._serving = list(self._serving.items()), {}
        if not hosts:
            return 0
        calls = [asyncio.ensure_future(actor.close_sockets.remote()) for _, actor in hosts]
        done, pending = await asyncio.wait(calls, timeout=timeout)
        for call in pending:
            call.cancel()
        closed = 0
        for (host, _), call in zip(hosts, calls):
            if call in done and call.exception() is None:
                closed += call.result()
            else:
                log.warning("host %s did not close its sockets (%s)", host,
                            describe(call.exception()) if call in done else f"no answer in {timeout:.0f} s")
        return closed

    def failed(self, host: str) -> None:
        """A hand-off to ``host`` did not reach it: do not try it again for ``HOST_RETRY`` s,
        and ask the pool again where its rooms are."""
        self._hosts[host] = (None, time.monotonic() + HOST_RETRY)
        self._serving.pop(host, None)
        for key in [key for key, (route, _) in self._routes.items() if route[0] == host]:
            del self._routes[key]


def gateway_config(settings) -> dict:
    """What a room host needs to build the gateway of its sockets, from the node gateway's
    ``starhold.config.Settings`` (plain data, sent over Ray): the same rooms, keys, limits and
    route options."""
    return {"rooms": settings.room_modules(), "jwt_keys": settings.jwt_keys, "data_dir": str(settings.data_dir),
            "snapshots": settings.room_config()["snapshots"], "shed_lag": settings.shed_lag,
            "options": settings.route_options()}


def build_app(directory, config: dict) -> "web.Application":
    """The gateway application for ``directory`` from ``gateway_config``'s plain data (the
    node gateways build theirs the same way)."""
    from .app import create_app
    from .auth import TokenService

    data_dir = Path(config["data_dir"])
    return create_app(directory, rooms=config["rooms"],
                      tokens=TokenService.from_config(config["jwt_keys"], data_dir, snapshots=config["snapshots"]),
                      data_dir=data_dir, shed_lag=config["shed_lag"], options=config["options"],
                      snapshots=config["snapshots"])


class HostSockets:
    """A room host's side: the gateway that serves the sockets handed to this process.

    ``start(directory, config)`` builds the gateway (``build_app``) and listens for hand-offs
    on ``host_sockets_dir(pid)/g0.sock``, returning that path (raises what building the
    gateway or listening raised: ``ImportError`` for a room module it cannot load,
    ``PermissionError`` for a directory another user owns); ``sockets`` counts the open ones;
    ``metrics(gateway_id)`` is this process's exposition for its owner; ``close()`` closes the
    sockets with 1001 (going away) and stops listening. ``clock``: seconds, for the owner's
    timeout (default ``time.monotonic``)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.path: Path | None = None
        self._runner: "web.AppRunner | None" = None
        self._handoff = None
        self._gateway = None
        self._clock = clock
        self._owner: str | None = None  # the gateway process that reports this host's metrics
        self._owner_asked = 0.0

    async def start(self, directory, config: dict) -> Path:
        from aiohttp import web

        from .affinity import Handoff
        from .app import GATEWAY

        app = build_app(directory, config)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()  # startup hooks: route plugins load their data
        handoff = Handoff(0, 1, host_sockets_dir(os.getpid()))
        try:
            await handoff.start(app[GATEWAY])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._handoff, self._gateway = runner, handoff, app[GATEWAY]
        self.path = handoff.path(0)
        return self.path

    def metrics(self, gateway_id: str) -> bytes | None:
        """This process's Prometheus exposition (its gateway's figures: ``gateway.metrics``) if
        ``gateway_id`` reports them: the first gateway process that asks becomes the owner, and
        another takes over once the owner has not asked for ``METRICS_OWNER_TIMEOUT`` seconds;
        None for the others (see the module docstring)."""
        now = self._clock()
        if self._owner is not None and self._owner != gateway_id and now - self._owner_asked < METRICS_OWNER_TIMEOUT:
            return None
        from .metrics import exposition

        self._owner, self._owner_asked = gateway_id, now
        return exposition()[0]

    @property
    def sockets(self) -> int:
        return len(self._gateway.sockets) if self._gateway is not None else 0

    async def close(self) -> None:
        if self._handoff is not None:
            self._handoff.stop_listening()
        if self._runner is not None:
            await self._runner.cleanup()  # the gateway's shutdown: its sockets close with 1001
        if self._handoff is not None:
            await self._handoff.close()


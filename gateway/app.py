"""The aiohttp gateway: WebSocket endpoints, framework HTTP routes, static web client (DESIGN §6).

The gateway holds no game code. Its own routes:

- ``GET /rooms/{kind}/{id}/ws``: the WebSocket of any hosted room kind (docs/protocol.md §2-5);
  a kind may restrict its ids (``GatewayAPI.room_ids``): unknown rooms are refused with 4004.
- ``POST /api/auth/guest``, ``GET /api/auth/me``: guest tokens and token checks
  (``gateway/auth.py``). Every WebSocket needs a token.
- ``GET /api/rooms``: ``{"rooms": ["system/sol", ...]}``, the rooms with a live activation.
- ``GET /metrics``: Prometheus metrics (``gateway/metrics.py``).
- ``GET /healthz``: health and counters (connections, rooms, Ray calls): 200 with
  ``"ok": true``, or 503 with ``"ok": false`` while the gateway cannot reach Ray
  (``"ray": "unreachable: <why>"``), from a probe of the directory every ``PROBE_INTERVAL``
  seconds (``Gateway.probe_ray``), never one per request; ``"ray": "n/a"`` for in-process rooms.
- ``/``: the browser client (``client/web/dist``).

Every other route is declared by the modules of room kinds the server hosts
(``starhold.http.define_routes``, mounted by ``gateway/plugins.py``): Starhold's game declares
``/api/galaxy``, ``/api/systems/...``, ``/api/game/...`` and ``/api/auth/register|login``.

The gateway depends on rooms only through a ``RoomDirectory`` (Ray or in-process).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import protocol
from .._runtime.handle import RoomDirectory
from .._runtime.paths import room_db_path
from ..http import RETRY_AFTER, AuthError, Identity, RoomUnavailable
from ..kinds import load_rooms, room_class
from ..room import HttpRequest, HttpResponse, Room
from ..wsdirect import DirectWebSocketResponse
from . import admission, http_log, metrics
from .admission import LoadShedder
from .affinity import Handoff, send_upgrade
from .auth import TokenService, add_auth_routes, load_or_create_keys, token_from_request
from .room_link import RoomLink
from .sockets import ClientSocket

if TYPE_CHECKING:
    from .colocate import HostRouter

log = logging.getLogger("starhold.gateway")

WEB_DIST = Path(__file__).resolve().parent.parent / "client" / "web" / "dist"
"""The built browser client (``npm --prefix client/web run build``)."""

MAINTAIN_INTERVAL = 5.0
"""Seconds between checks that the directory's services (the alarm scheduler) are running."""
PROBE_INTERVAL = 2.0
"""Seconds between two probes of the room directory's cluster (``/healthz``'s ``"ray"``)."""
PROBE_TIMEOUT = 2.0
"""Seconds a probe may take before the cluster counts as unreachable."""
HEARTBEAT_SWEEP = protocol.HEARTBEAT_INTERVAL / 8
"""Seconds between heartbeat sweeps over the sockets: a silent peer is pinged after 20-22.5 s
and dropped 10-12.5 s after the ping, so it lasts at most 35 s."""

WS_READ_LIMIT = 16 * protocol.MAX_MESSAGE_BYTES
"""Largest WebSocket message aiohttp reads at all (1009 at once beyond it); messages over
``protocol.MAX_MESSAGE_BYTES`` but under this get 1009 after the answers already queued."""

_NOT_BUILT = """<!doctype html><title>Starhold</title>
<p>The web client is not built. Run <code>npm --prefix client/web ci &amp;&amp;
npm --prefix client/web run build</code> and reload.</p>"""

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


class Gateway:
    """State of one gateway process: its id, the kinds it hosts, its room links and counters.

    ``kinds``: kind -> ``Room`` subclass (what ``starhold.kinds.load_rooms`` returned);
    ``data_dir``: the shared key files; ``options``: the route plugins' options;
    ``snapshots``: the rooms' snapshot spec (``storage.factory``): with S3, the shared secrets
    live in its bucket (``shared_secret``)."""

    def __init__(self, directory: RoomDirectory, web_dist: Path | None, tokens: TokenService,
                 shedder: LoadShedder | None = None, *, kinds: Mapping[str, type[Room]] | None = None,
                 data_dir: Path | None = None, options: Mapping[str, Any] | None = None,
                 snapshots: dict | None = None):
        self.directory = directory
        self.snapshots = snapshots
        self._secrets: dict[str, bytes] = {}
        # /healthz's view of the cluster: "n/a" (no probe: in-process rooms), "ok", or
        # "unreachable: <why>"; set by probe_ray.
        self.ray_state = "n/a" if getattr(directory, "probe", None) is None else "unknown"
        self._ray_prober: asyncio.Task | None = None
        self.web_dist = web_dist
        self.tokens = tokens
        self.kinds = dict(kinds or {})
        self.data_dir = data_dir
        self.options = dict(options or {})
        self.gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
        self.links: dict[tuple[str, str], RoomLink] = {}
        self.sockets: set[ClientSocket] = set()
        self.stats: collections.Counter = collections.Counter()
        self.shedder = shedder or LoadShedder()
        self.handoff: Handoff | None = None
        """Room affinity with the node's other gateway processes (``gateway/affinity.py``), or None."""
        self.hosts: HostRouter | None = None
        """Sockets in room hosts (``gateway/colocate.py``; ``starhold serve``'s default, ``--colocate``), or None."""
        self.resolvers: dict[str, Callable[[str], str | None]] = {}  # GatewayAPI.room_ids
        self.params: dict[str, Callable[[str], dict]] = {}  # GatewayAPI.room_params
        self._maintainer: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._prober: asyncio.Task | None = None

    def shared_secret(self, name: str) -> bytes:
        """The 32-byte secret ``name`` shared by every gateway (``GatewayAPI.shared_secret``):
        the active key of the key document ``<name>.json`` (``auth.load_or_create_keys``: in
        the snapshot bucket under ``<prefix>_cluster/`` with S3 snapshots, else under
        ``<data_dir>/auth/``), created on first use, cached in this gateway. Blocking on first
        use. Raises ``ValueError``, ``storage.s3_client.S3StorageError``."""
        secret = self._secrets.get(name)
        if secret is None:
            keys, active = load_or_create_keys(f"{name}.json", self.data_dir, self.snapshots)
            secret = self._secrets[name] = keys[active]
        return secret

    def kind_class(self, kind: str) -> type[Room]:
        """The ``Room`` subclass of a hosted ``kind`` (else of the registry; ``KeyError``)."""
        cls = self.kinds.get(kind)
        return cls if cls is not None else room_class(kind)

    def link(self, kind: str, room_id: str) -> RoomLink:
        """The link to a room, created on first use and kept (one per room this gateway has
        served: a few hundred bytes each). Keeping it means a socket that joins while the
        previous one's pull is still in flight is served by that same pull loop. The link
        batches by the kind's ``tick_rate`` and wakes the room with the kind's params."""
        key = (kind, room_id)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = RoomLink(self.directory, self.gateway_id, kind, room_id,
                                              self.room_params(kind, room_id),
                                              tick_rate=self.kind_class(kind).tick_rate)
        return link

    def room_params(self, kind: str, room_id: str) -> dict:
        """The params a room of ``kind`` wakes with (``GatewayAPI.room_params``; ``{}`` when
        the kind declares none)."""
        return self.params[kind](room_id) if kind in self.params else {}

    def resolve(self, kind: str, raw_id: str) -> str | None:
        """The id of the room ``raw_id`` names in a hosted ``kind``, or None when there is no
        such room (an unknown kind, an id its resolver refuses, or an invalid id)."""
        if kind not in self.kinds:
            return None
        resolver = self.resolvers.get(kind)
        if resolver is not None:
            return resolver(raw_id)
        try:
            room_db_path(".", kind, raw_id)
        except ValueError:
            return None
        return raw_id

    def refusal(self, kind: str, room_id: str) -> str | None:
        """Why a new player may not join this room now (``gateway/admission.py``): ``"gateway"``
        while this process is overloaded, ``"room"`` while the room's ticks overrun, else None.
        A shedder with ``lag_limit <= 0`` (``--shed-lag 0``) turns admission control off: both
        signals, not only the gateway's lag."""
        if self.shedder.lag_limit <= 0:
            return None
        if self.shedder.overloaded:
            return "gateway"
        link = self.links.get((kind, room_id))
        if link is not None and link.tick_reports.overloaded:
            return "room"
        return None

    def players(self, kind: str) -> dict[str, int]:
        """Joined sockets per room of ``kind`` on this gateway."""
        return {room_id: sum(1 for s in link.sockets.values() if s.connected)
                for (k, room_id), link in self.links.items() if k == kind}

    def identity(self, request: web.Request) -> Identity:
        """The verified identity of a request's token. Raises ``AuthError``."""
        token = token_from_request(request)
        if not token:
            raise AuthError("missing token: log in (POST /api/auth/guest or /api/auth/login) and send it")
        return self.tokens.verify(token)

    # ---- HTTP to rooms -----------------------------------------------------------------------
    async def call_room(self, kind: str, room_id: str, req: HttpRequest, *, wake: bool = True) -> HttpResponse | None:
        """Send ``req`` to the room's ``on_request`` (``RoomLink.call``). ``wake=False`` only
        asks a live activation and returns None when the room sleeps (nothing is activated).
        Raises ``RoomUnavailable`` when the room keeps going away or cannot wake (its snapshot
        store is unreachable)."""
        return await self.link(kind, room_id).call(req, wake=wake)

    async def forward(self, request: web.Request, kind: str, room_id: str, path: str) -> web.Response:
        """``GET .../state`` and the like (``GatewayAPI.forward``): with a valid token, wake the
        room if needed and answer; without a token, answer only from an awake room (401 when it
        sleeps: an anonymous request never starts an activation) unless the kind declares
        ``wake_on_http``; an invalid token is 401; 503 with ``Retry-After`` when the room keeps
        going away or cannot wake."""
        body = await request.read() if request.can_read_body else b""
        req = HttpRequest(request.method, path, {k: v for k, v in request.query.items() if k != "token"}, body)
        wake = True
        if token_from_request(request) is not None:
            try:
                self.identity(request)
            except AuthError as exc:
                return web.json_response({"error": exc.message}, status=401, headers=_UNAUTHORIZED)
        else:
            wake = bool(self.kind_class(kind).wake_on_http)
        try:
            response = await self.call_room(kind, room_id, req, wake=wake)
        except RoomUnavailable:
            return web.json_response({"error": "room unavailable; retry later"}, status=503,
                                     headers={"Retry-After": str(RETRY_AFTER)})
        if response is None:
            return web.json_response({"error": "missing token: the room is asleep and only a request with a token "
                                               "wakes it (POST /api/auth/guest)"},
                                     status=401, headers=_UNAUTHORIZED)
        return web.json_response(response.body, status=response.status)

    # ---- WebSockets --------------------------------------------------------------------------
    async def room_ws(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /rooms/{kind}/{id}/ws``: the WebSocket of a room of any hosted kind."""
        kind, raw_id = request.match_info["kind"], request.match_info["id"]
        return await self.serve_socket(request, kind, self.resolve(kind, raw_id), "unknown room")

    async def serve_socket(self, request: web.Request, kind: str, room_id: str | None,
                           unknown: str = "unknown room", here: bool = False) -> web.WebSocketResponse:
        """Terminate one WebSocket: refuse unknown rooms (4004) and missing or invalid tokens
        (4001) with an error frame first, else run a ``ClientSocket`` until it closes. With
        room affinity (``self.handoff``) the upgrade of a known room whose home is another
        gateway process goes there first (``gateway/affinity.py``); with sockets in room hosts
        (``self.hosts``) the upgrade of a room awake on a host of this node goes to that host
        before that, waking the room first if it sleeps (``gateway/colocate.py``); ``here``:
        serve it in this process whatever its home (a socket handed to us)."""
        if room_id is not None and not here and self.hosts is not None and self._authentic(request):
            target = await self.hosts.target(kind, room_id, self.room_params(kind, room_id))
            if target is not None:
                if await send_upgrade(request, kind, room_id, target[1]):
                    Handoff.abandon(request)
                    raise asyncio.CancelledError  # the host answers it
                self.hosts.failed(target[0])
        if room_id is not None and not here and self.handoff is not None and self.handoff.elsewhere(kind, room_id) \
                and await self.handoff.hand_off(request, kind, room_id):
            self.handoff.abandon(request)
            raise asyncio.CancelledError  # nothing more to answer here: aiohttp drops the request quietly
        # No permessage-deflate (as Colyseus and PartyKit): frames are small msgpack, and
        # compressing each one for each client would cost more CPU than the bytes it saves.
        # receive_timeout=None: the swept heartbeat already drops a peer silent for at most 35 s
        # (protocol.HEARTBEAT_INTERVAL); a receive timeout costs a timer per message (a fifth of a
        # gateway's time at 1,000 players) and could only fire after the heartbeat has.
        # DirectWebSocketResponse: each message goes to ClientSocket.receive from aiohttp's parser,
        # with no reader task wake-up per message, and the heartbeat is swept (_sweep_heartbeats)
        # rather than rescheduled for every message received (starhold.wsdirect).
        ws = DirectWebSocketResponse(swept_heartbeat=protocol.HEARTBEAT_INTERVAL, heartbeat=None,
                                     receive_timeout=None, max_msg_size=WS_READ_LIMIT, autoping=True,
                                     compress=False)
        await ws.prepare(request)
        self.stats["connections_total"] += 1
        if room_id is None:
            await self._refuse(ws, protocol.ERR_UNKNOWN_ROOM, unknown, protocol.CLOSE_UNKNOWN_ROOM)
            return ws
        try:
            identity = self.identity(request)
        except AuthError as exc:
            await self._refuse(ws, protocol.ERR_UNAUTHORIZED, exc.message, protocol.CLOSE_UNAUTHORIZED)
            return ws
        sock = ClientSocket(self, ws, kind, room_id, identity)
        self.sockets.add(sock)
        metrics.CONNECTIONS.inc()
        log.info("socket open", extra=sock.log_extra())
        try:
            await sock.run()
        finally:
            self.sockets.discard(sock)
            metrics.CONNECTIONS.dec()
            log.info("socket closed %s", ws.close_code, extra=sock.log_extra())
        return ws

    def _authentic(self, request: web.Request) -> bool:
        """Whether the request carries a valid token (an upgrade without one is refused here,
        and costs no Ray call)."""
        try:
            self.identity(request)
        except AuthError:
            return False
        return True

    @staticmethod
    async def _refuse(ws: web.WebSocketResponse, error: int, message: str, close: int) -> None:
        metrics.ERRORS_SENT.labels(str(error)).inc()
        metrics.CLOSES.labels(str(close)).inc()
        await ws.send_bytes(protocol.error_frame(error, message))
        await ws.close(code=close, message=message.encode()[:120])

    async def metrics_text(self, request: web.Request) -> web.Response:
        body, content_type = metrics.exposition(await self.host_metrics())
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def host_metrics(self) -> list[tuple[str, bytes]]:
        """The expositions of the room hosts this process reports (sockets in room hosts:
        ``gateway.colocate.HostRouter.metrics``), for ``metrics.exposition``; none without."""
        return await self.hosts.metrics(self.gateway_id) if self.hosts is not None else []

    async def healthz(self, request: web.Request) -> web.Response:
        """200 ``{"ok": true, "status": "ok", "ray": "ok" | "n/a", ...counters}``, or 503
        ``{"ok": false, "status": "unhealthy", "ray": "unreachable: <why>", ...}`` while the last
        probe of the cluster failed (``probe_ray``); ``"unknown"`` (503) before the first one."""
        from .._runtime import ray_host  # counters only; importing it does not start Ray

        ok = self.ray_state in ("ok", "n/a")
        return web.json_response({
            "ok": ok,
            "status": "ok" if ok else "unhealthy",
            "ray": self.ray_state,
            "gateway": self.gateway_id,
            "connections": len(self.sockets),
            "rooms": len(self.links),
            "batches_sent": sum(link.batches_sent for link in self.links.values()),
            "ray_calls": dict(ray_host.RAY_CALLS),
            **self.stats,
        }, status=200 if ok else 503)

    async def rooms(self, request: web.Request) -> web.Response:
        return web.json_response({"rooms": await self.directory.list_rooms()})

    async def index(self, request: web.Request) -> web.StreamResponse:
        if self.web_dist is None or not (self.web_dist / "index.html").exists():
            return web.Response(text=_NOT_BUILT, content_type="text/html", status=503)
        return web.FileResponse(self.web_dist / "index.html")

    async def background(self, app: web.Application):
        """The gateway's ``cleanup_ctx``: start the directory's services and the maintenance,
        heartbeat sweep and lag probe tasks; at cleanup, stop them."""
        await self.directory.start()
        self._maintainer = asyncio.create_task(self._maintain(), name="gateway-maintain")
        self._sweeper = asyncio.create_task(self._sweep_heartbeats(), name="gateway-heartbeats")
        self._prober = asyncio.create_task(self.shedder.run(), name="gateway-lag-probe")
        tasks = [self._maintainer, self._sweeper, self._prober]
        if self.ray_state != "n/a":
            await self.probe_ray()  # /healthz tells the truth from the first request on
            self._ray_prober = asyncio.create_task(self._probe_ray_forever(), name="gateway-ray-probe")
            tasks.append(self._ray_prober)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sweep_heartbeats(self) -> None:
        """Every ``HEARTBEAT_SWEEP`` seconds, ping the sockets silent for a heartbeat and drop
        the ones silent through a ping (``DirectWebSocketResponse.sweep``)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HEARTBEAT_SWEEP)
            now = loop.time()
            for sock in list(self.sockets):
                try:
                    sock.ws.sweep(now)
                except Exception:
                    log.exception("heartbeat sweep failed", extra=sock.log_extra())

    async def probe_ray(self, timeout: float = PROBE_TIMEOUT) -> str:
        """Ask the directory's cluster once (``directory.probe(timeout)``, e.g.
        ``RayDirectory.probe``: one small request to Ray's GCS) and set ``ray_state`` to
        ``"ok"`` or ``"unreachable: <why>"``; returns it. Logs a change of state once."""
        try:
            await asyncio.wait_for(self.directory.probe(timeout), timeout + 1.0)
            state = "ok"
        except asyncio.TimeoutError:
            state = f"unreachable: no answer within {timeout:g} s"
        except Exception as exc:
            state = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        if (state == "ok") != (self.ray_state == "ok"):
            (log.info if state == "ok" else log.warning)("Ray cluster %s", "reachable" if state == "ok" else state)
        self.ray_state = state
        return state

    async def _probe_ray_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            await self.probe_ray()

    async def _maintain(self) -> None:
        """Keep the directory's services (the alarm scheduler) running."""
        while True:
            await asyncio.sleep(MAINTAIN_INTERVAL)
            try:
                await self.directory.start()
            except Exception:
                log.exception("directory maintenance failed")

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every socket (1001) and stop every room link."""
        for sock in list(self.sockets):
            sock.close_soon(protocol.CLOSE_GOING_AWAY, "server shutting down")
        for link in list(self.links.values()):
            await link.stop()


GATEWAY = web.AppKey("gateway", Gateway)
"""The ``Gateway`` of an application: ``app[GATEWAY]``."""


def create_app(directory: RoomDirectory, web_dist: Path | None = WEB_DIST, *,
               rooms: Iterable[str] | None = None, tokens: TokenService | None = None,
               data_dir: Path | None = None, shed_lag: float = admission.LAG_LIMIT,
               options: Mapping[str, Any] | None = None, snapshots: dict | None = None) -> web.Application:
    """The gateway's aiohttp application, routing rooms through ``directory``.

    ``rooms``: modules of room kinds to load (``starhold.kinds.load_rooms``; dotted names); the
    default None loads the ``starhold.rooms`` entry point group (Starhold's game). The
    application hosts every kind registered in the process and mounts every route function
    registered with ``starhold.http.define_routes`` (``gateway/plugins.py``), to which
    ``options`` (plain data or objects, as each plugin documents) are given. Raises
    ``ImportError``/``ValueError`` as ``load_rooms`` does, and whatever a route function raises.

    ``tokens`` signs and verifies player tokens; by default from the key file under
    ``data_dir``, which also holds the plugins' shared secrets (a fresh temporary directory
    when None: fine for tests, not for several gateway processes, which must share keys).
    ``snapshots``: the rooms' snapshot spec (``storage.factory``); when it is S3, the default
    token keys and the shared secrets are kept in its bucket under ``<prefix>_cluster/``
    (``auth.load_or_create_keys``) instead, shared by every gateway of the cluster.
    ``shed_lag``: seconds of sustained event-loop lag at which new players are refused
    (``gateway/admission.py``; 0 disables)."""
    from .plugins import mount_route_plugins

    kinds = load_rooms(None if rooms is None else list(rooms))
    data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="starhold-keys-"))
    tokens = tokens or TokenService.from_config(None, data_dir, snapshots=snapshots)
    http_log.install()  # malformed requests: a 400 and one INFO line, not an ERROR traceback
    gateway = Gateway(directory, web_dist, tokens, LoadShedder(shed_lag), kinds=kinds, data_dir=data_dir,
                      options=options, snapshots=snapshots)
    app = web.Application(client_max_size=64 * 1024)
    app[GATEWAY] = gateway
    app.cleanup_ctx.append(gateway.background)
    add_auth_routes(app, tokens)
    app.router.add_get("/rooms/{kind}/{id}/ws", gateway.room_ws)
    app.router.add_get("/api/rooms", gateway.rooms)
    app.router.add_get("/metrics", gateway.metrics_text)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/", gateway.index)
    if web_dist is not None and (web_dist / "assets").is_dir():
        app.router.add_static("/assets", web_dist / "assets")
    mount_route_plugins(app, gateway)
    app.on_shutdown.append(gateway.on_shutdown)
    return app

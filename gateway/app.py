"""The aiohttp gateway: HTTP API, WebSocket endpoints, static web client (DESIGN §6).

Routes:
- ``GET /api/galaxy``: every system with lanes and players online (docs/protocol.md §1).
- ``GET /api/route?from=<system>&to=<system>``: the shortest chain of jumps between two
  systems, ``{"systems": [ids], "parsecs": total}`` (docs/protocol.md §1).
- ``GET /api/systems/{system}``: one system with its planets (static data; does not wake it).
- ``GET /api/systems/{system}/state``: the live room's state (``Room.on_request``); only a
  request with a valid token wakes a sleeping room (401 without one).
- ``GET /api/systems/{system}/ws``: the system's WebSocket (docs/protocol.md §2-5).
- ``POST /api/game/new``, ``GET /api/game/{id}/state``, ``GET /api/game/{id}/ws``: game
  sessions (docs/protocol.md §7).
- ``/api/auth/*``: accounts and tokens (``gateway/auth.py``). Every WebSocket needs a token.
- ``GET /api/rooms``: ``{"rooms": ["system/sol", ...]}``, the rooms with a live activation.
- ``GET /metrics``: Prometheus metrics (``gateway/metrics.py``).
- ``GET /healthz``: liveness and counters (connections, rooms, Ray calls).
- ``/``: the browser client (``client/web/dist``).

The gateway depends on rooms only through a ``RoomDirectory`` (Ray or in-process).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import tempfile
import uuid
from pathlib import Path

from aiohttp import web

from .. import protocol
from ..rooms.galaxy.catalogue import Galaxy, load_galaxy
from .._runtime.handle import RoomDirectory, RoomGone
from ..rooms.galaxy.planets import system_info
from ..room import HttpRequest
from ..wsdirect import DirectWebSocketResponse
from . import admission, http_log, metrics
from .admission import LoadShedder
from .auth import AuthError, TokenService, add_auth_routes, token_from_request
from .quotas import GameQuota, QuotaExceeded
from .room_link import RoomLink
from .sessions import SessionIds
from .throttle import LoginThrottle, retry_after_header
from .sockets import ClientSocket

log = logging.getLogger("starhold.gateway")

WEB_DIST = Path(__file__).resolve().parent.parent / "client" / "web" / "dist"
"""The built browser client (``npm --prefix client/web run build``)."""

MAINTAIN_INTERVAL = 5.0
"""Seconds between checks that the directory's services (the alarm scheduler) are running."""
HEARTBEAT_SWEEP = protocol.HEARTBEAT_INTERVAL / 8
"""Seconds between heartbeat sweeps over the sockets: a silent peer is pinged after 20-22.5 s
and dropped 10-12.5 s after the ping, so it lasts at most 35 s."""

WS_READ_LIMIT = 16 * protocol.MAX_MESSAGE_BYTES
"""Largest WebSocket message aiohttp reads at all (1009 at once beyond it); messages over
``protocol.MAX_MESSAGE_BYTES`` but under this get 1009 after the answers already queued."""

_NOT_BUILT = """<!doctype html><title>Starhold</title>
<p>The web client is not built. Run <code>npm --prefix client/web ci &amp;&amp;
npm --prefix client/web run build</code> and reload.</p>"""


class Gateway:
    """State of one gateway process: its id, its room links and counters."""

    def __init__(self, directory: RoomDirectory, galaxy: Galaxy, web_dist: Path | None, tokens: TokenService,
                 sessions: SessionIds, shedder: LoadShedder | None = None, quota: GameQuota | None = None):
        self.directory = directory
        self.quota = quota or GameQuota()
        self.galaxy = galaxy
        self.web_dist = web_dist
        self.tokens = tokens
        self.session_ids = sessions
        self.gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
        self.links: dict[tuple[str, str], RoomLink] = {}
        self.sockets: set[ClientSocket] = set()
        self.stats: collections.Counter = collections.Counter()
        self.shedder = shedder or LoadShedder()
        self._maintainer: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._prober: asyncio.Task | None = None

    def link(self, kind: str, room_id: str) -> RoomLink:
        """The link to a room, created on first use and kept (one per room this gateway has
        served: a few hundred bytes each). Keeping it means a socket that joins while the
        previous one's pull is still in flight is served by that same pull loop."""
        key = (kind, room_id)
        link = self.links.get(key)
        if link is None:
            params = {"system": system_info(self.galaxy.get(room_id))} if kind == "system" else {}
            link = self.links[key] = RoomLink(self.directory, self.gateway_id, kind, room_id, params)
        return link

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

    def players(self) -> dict[str, int]:
        """Joined sockets per system on this gateway."""
        return {room_id: sum(1 for s in link.sockets.values() if s.connected)
                for (kind, room_id), link in self.links.items() if kind == "system"}

    # ---- handlers --------------------------------------------------------------------------
    async def galaxy_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.galaxy.to_json(self.players()))

    def _system(self, request: web.Request):
        system = self.galaxy.resolve(request.match_info["system"])
        if system is None:
            raise web.HTTPNotFound(text='{"error": "unknown system"}', content_type="application/json")
        return system

    async def route_json(self, request: web.Request) -> web.Response:
        """``GET /api/route?from=&to=`` (ids, names or aliases): 400 without both, 404 for an
        unknown system (or no route)."""
        keys = {k: request.query.get(k, "").strip() for k in ("from", "to")}
        missing = [k for k, v in keys.items() if not v]
        if missing:
            return web.json_response({"error": f"missing query parameter(s): {', '.join(missing)}"}, status=400)
        systems = {k: self.galaxy.resolve(v) for k, v in keys.items()}
        for k, system in systems.items():
            if system is None:
                return web.json_response({"error": f"unknown system: {keys[k][:64]}"}, status=404)
        found = self.galaxy.route(systems["from"].id, systems["to"].id)
        if found is None:
            return web.json_response({"error": "no route"}, status=404)
        ids, parsecs = found
        return web.json_response({"systems": ids, "parsecs": parsecs})

    async def system_json(self, request: web.Request) -> web.Response:
        system = self._system(request)
        info = system_info(system)
        body = {**system.to_json(), "lanes": list(self.galaxy.lanes(system.id)),
                "players": self.players().get(system.id, 0), "star_radius": info["star_radius"],
                "planets": info["planets"]}
        return web.json_response(body)

    async def _room_request(self, kind: str, room_id: str, req: HttpRequest, *, wake: bool = True) -> web.Response | None:
        """Forward ``req`` to the room's ``on_request``. ``wake=False`` only asks a live
        activation and returns None when the room sleeps (nothing is activated). Raises
        ``HTTPServiceUnavailable`` (503) when the room keeps going away."""
        link = self.link(kind, room_id)
        for _ in range(3):
            handle = None
            try:
                if wake:
                    handle = await link.handle()
                else:
                    handle = await self.directory.get_if_active(kind, room_id)
                    if handle is None:
                        return None
                response = await handle.request(req)
                return web.json_response(response.body, status=response.status)
            except RoomGone:
                link._lost(handle)
        raise web.HTTPServiceUnavailable(text='{"error": "room unavailable"}', content_type="application/json")

    async def _state(self, request: web.Request, kind: str, room_id: str) -> web.Response:
        """``GET .../state``: with a valid token, wake the room if needed and answer; without a
        token, answer only from an awake room (401 when it sleeps: an anonymous request never
        starts an activation); an invalid token is 401."""
        req = HttpRequest("GET", "state", {k: v for k, v in request.query.items() if k != "token"})
        if token_from_request(request) is not None:
            try:
                self._identity(request)
            except AuthError as exc:
                return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
            return await self._room_request(kind, room_id, req)
        response = await self._room_request(kind, room_id, req, wake=False)
        if response is None:
            return web.json_response({"error": "missing token: the room is asleep and only a request with a token "
                                               "wakes it (POST /api/auth/guest)"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        return response

    async def system_state(self, request: web.Request) -> web.Response:
        return await self._state(request, "system", self._system(request).id)

    async def system_ws(self, request: web.Request) -> web.WebSocketResponse:
        system = self.galaxy.resolve(request.match_info["system"])
        return await self._serve_socket(request, "system", system.id if system else None, "unknown system")

    # ---- game sessions -----------------------------------------------------------------------
    def _game_id(self, request: web.Request) -> str:
        game_id = request.match_info["game"]
        if not self.session_ids.valid(game_id):
            raise web.HTTPNotFound(text='{"error": "no such game"}', content_type="application/json")
        return game_id

    def _identity(self, request: web.Request):
        """The verified identity of a request's token. Raises ``AuthError``."""
        token = token_from_request(request)
        if not token:
            raise AuthError("missing token: log in (POST /api/auth/guest or /api/auth/login) and send it")
        return self.tokens.verify(token)

    async def game_new(self, request: web.Request) -> web.Response:
        """``POST /api/game/new``: 401 without a valid token, 400/413 for a bad body, 429 with
        ``Retry-After`` past the player's limits (``gateway/quotas.py``), else the room's
        answer (201 with the game)."""
        try:
            identity = self._identity(request)
        except AuthError as exc:
            return web.json_response({"error": exc.message}, status=401, headers={"WWW-Authenticate": "Bearer"})
        raw = await request.content.read(protocol.MAX_MESSAGE_BYTES + 1)
        if len(raw) > protocol.MAX_MESSAGE_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        seed, max_players = body.get("seed"), body.get("max_players", 100)
        if seed is None:
            seed = secrets.randbits(32)
        if not (type(seed) is int and 0 <= seed < 2**53 and type(max_players) is int and 1 <= max_players <= 500):
            return web.json_response({"error": "seed must be an integer in [0, 2^53), max_players in [1, 500]"},
                                     status=400)
        game_id = self.session_ids.new()
        try:
            await self.quota.begin(identity.player, game_id, lambda g: self.directory.is_active("session", g))
        except QuotaExceeded as exc:
            return web.json_response({"error": exc.message}, status=429,
                                     headers={"Retry-After": retry_after_header(exc.retry_after)})
        create = {"seed": seed, "max_players": max_players, "created_by": identity.player}
        try:
            response = await self._room_request("session", game_id,
                                                HttpRequest("POST", "create", {}, json.dumps(create).encode()))
        finally:
            self.quota.end(game_id)
        if response.status == 201:
            info = json.loads(response.body)
            return web.json_response({**info, "ws": f"/api/game/{game_id}/ws", "state": f"/api/game/{game_id}/state"},
                                     status=201)
        return response

    async def game_state(self, request: web.Request) -> web.Response:
        return await self._state(request, "session", self._game_id(request))

    async def game_ws(self, request: web.Request) -> web.WebSocketResponse:
        game_id = request.match_info["game"]
        return await self._serve_socket(request, "session", game_id if self.session_ids.valid(game_id) else None,
                                        "no such game")

    # ---- WebSockets --------------------------------------------------------------------------
    async def _serve_socket(self, request: web.Request, kind: str, room_id: str | None, unknown: str):
        """Terminate one WebSocket: refuse unknown rooms (4004) and missing or invalid tokens
        (4001) with an error frame first, else run a ``ClientSocket`` until it closes."""
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
            identity = self._identity(request)
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

    @staticmethod
    async def _refuse(ws: web.WebSocketResponse, error: int, message: str, close: int) -> None:
        metrics.ERRORS_SENT.labels(str(error)).inc()
        metrics.CLOSES.labels(str(close)).inc()
        await ws.send_bytes(protocol.error_frame(error, message))
        await ws.close(code=close, message=message.encode()[:120])

    async def metrics_text(self, request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(self, request: web.Request) -> web.Response:
        from .._runtime import ray_host  # counters only; importing it does not start Ray

        return web.json_response({
            "status": "ok",
            "gateway": self.gateway_id,
            "connections": len(self.sockets),
            "rooms": len(self.links),
            "batches_sent": sum(link.batches_sent for link in self.links.values()),
            "ray_calls": dict(ray_host.RAY_CALLS),
            **self.stats,
        })

    async def rooms(self, request: web.Request) -> web.Response:
        return web.json_response({"rooms": await self.directory.list_rooms()})

    async def index(self, request: web.Request) -> web.StreamResponse:
        if self.web_dist is None or not (self.web_dist / "index.html").exists():
            return web.Response(text=_NOT_BUILT, content_type="text/html", status=503)
        return web.FileResponse(self.web_dist / "index.html")

    async def on_startup(self, app: web.Application) -> None:
        await self.directory.start()
        self._maintainer = asyncio.create_task(self._maintain())
        self._sweeper = asyncio.create_task(self._sweep_heartbeats())
        self._prober = asyncio.create_task(self.shedder.run())

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

    async def _maintain(self) -> None:
        """Keep the directory's services (the alarm scheduler) running."""
        while True:
            await asyncio.sleep(MAINTAIN_INTERVAL)
            try:
                await self.directory.start()
            except Exception:
                log.exception("directory maintenance failed")

    async def on_shutdown(self, app: web.Application) -> None:
        for task in (self._maintainer, self._sweeper, self._prober):
            if task is not None:
                task.cancel()
        for sock in list(self.sockets):
            sock.close_soon(protocol.CLOSE_GOING_AWAY, "server shutting down")
        for link in list(self.links.values()):
            await link.stop()


GATEWAY = web.AppKey("gateway", Gateway)
"""The ``Gateway`` of an application: ``app[GATEWAY]``."""


def create_app(directory: RoomDirectory, galaxy: Galaxy | None = None, web_dist: Path | None = WEB_DIST, *,
               tokens: TokenService | None = None, sessions: SessionIds | None = None,
               data_dir: Path | None = None, shed_lag: float = admission.LAG_LIMIT,
               quota: GameQuota | None = None, login_throttle: LoginThrottle | None = None) -> web.Application:
    """The gateway's aiohttp application, routing rooms through ``directory``.

    ``tokens`` signs and verifies player tokens and ``sessions`` game ids; by default both use
    key files under ``data_dir`` (a fresh temporary directory when None: fine for tests, not
    for several gateway processes, which must share keys). ``shed_lag``: seconds of sustained
    event-loop lag at which new players are refused (``gateway/admission.py``; 0 disables).
    ``quota``: game creation limits per player (default ``GameQuota()``, ``gateway/quotas.py``);
    ``login_throttle``: failed-login limits (default ``LoginThrottle()``, ``gateway/throttle.py``)."""
    if tokens is None or sessions is None:
        data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="starhold-keys-"))
        tokens = tokens or TokenService.from_config(None, data_dir)
        sessions = sessions or SessionIds.from_config(None, data_dir)
    http_log.install()  # malformed requests: a 400 and one INFO line, not an ERROR traceback
    gateway = Gateway(directory, galaxy or load_galaxy(), web_dist, tokens, sessions, LoadShedder(shed_lag), quota)
    app = web.Application(client_max_size=64 * 1024)
    app[GATEWAY] = gateway
    add_auth_routes(app, directory, tokens, login_throttle)
    app.router.add_get("/api/galaxy", gateway.galaxy_json)
    app.router.add_get("/api/route", gateway.route_json)
    app.router.add_get("/api/systems/{system}", gateway.system_json)
    app.router.add_get("/api/systems/{system}/state", gateway.system_state)
    app.router.add_get("/api/systems/{system}/ws", gateway.system_ws)
    app.router.add_post("/api/game/new", gateway.game_new)
    app.router.add_get("/api/game/{game}/state", gateway.game_state)
    app.router.add_get("/api/game/{game}/ws", gateway.game_ws)
    app.router.add_get("/api/rooms", gateway.rooms)
    app.router.add_get("/metrics", gateway.metrics_text)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/", gateway.index)
    if web_dist is not None and (web_dist / "assets").is_dir():
        app.router.add_static("/assets", web_dist / "assets")
    app.on_startup.append(gateway.on_startup)
    app.on_shutdown.append(gateway.on_shutdown)
    return app

"""The aiohttp gateway: HTTP API, WebSocket endpoints, static web client (DESIGN §6).

Routes:
- ``GET /api/galaxy``: every system with lanes and players online (docs/protocol.md §1).
- ``GET /api/systems/{system}``: one system with its planets (static data; does not wake it).
- ``GET /api/systems/{system}/state``: the live room's state (wakes it; ``Room.on_request``).
- ``GET /api/systems/{system}/ws``: the system's WebSocket (docs/protocol.md §2-5).
- ``GET /api/rooms``: ``{"rooms": ["system/sol", ...]}``, the rooms with a live activation.
- ``GET /healthz``: liveness and counters (connections, rooms, Ray calls).
- ``/``: the browser client (``client/web/dist``).

The gateway depends on rooms only through a ``RoomDirectory`` (Ray or in-process).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from pathlib import Path

from aiohttp import web

from .. import protocol
from ..rooms.galaxy import Galaxy, load_galaxy
from ..rooms.handle import RoomDirectory, RoomGone
from ..rooms.planets import system_info
from ..rooms.room import HttpRequest
from .room_link import RoomLink
from .sockets import HEARTBEAT, ClientSocket

log = logging.getLogger("starhold.gateway")

WEB_DIST = Path(__file__).resolve().parent.parent / "client" / "web" / "dist"
"""The built browser client (``npm --prefix client/web run build``)."""

MAINTAIN_INTERVAL = 5.0
"""Seconds between checks that the directory's services (the alarm scheduler) are running."""

_NOT_BUILT = """<!doctype html><title>Starhold</title>
<p>The web client is not built. Run <code>npm --prefix client/web ci &amp;&amp;
npm --prefix client/web run build</code> and reload.</p>"""


class Gateway:
    """State of one gateway process: its id, its room links and counters."""

    def __init__(self, directory: RoomDirectory, galaxy: Galaxy, web_dist: Path | None = WEB_DIST):
        self.directory = directory
        self.galaxy = galaxy
        self.web_dist = web_dist
        self.gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
        self.links: dict[tuple[str, str], RoomLink] = {}
        self.sockets: set[ClientSocket] = set()
        self.stats: collections.Counter = collections.Counter()
        self._maintainer: asyncio.Task | None = None

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

    async def system_json(self, request: web.Request) -> web.Response:
        system = self._system(request)
        info = system_info(system)
        body = {**system.to_json(), "lanes": list(self.galaxy.lanes(system.id)),
                "players": self.players().get(system.id, 0), "star_radius": info["star_radius"],
                "planets": info["planets"]}
        return web.json_response(body)

    async def system_state(self, request: web.Request) -> web.Response:
        system = self._system(request)
        link = self.link("system", system.id)
        for _ in range(3):
            handle = None
            try:
                handle = await link.handle()
                response = await handle.request(HttpRequest("GET", "state", dict(request.query)))
                return web.json_response(response.body, status=response.status)
            except RoomGone:
                link._lost(handle)
        raise web.HTTPServiceUnavailable(text='{"error": "room unavailable"}', content_type="application/json")

    async def system_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=protocol.MAX_MESSAGE_BYTES, autoping=True)
        await ws.prepare(request)
        system = self.galaxy.resolve(request.match_info["system"])
        self.stats["connections_total"] += 1
        if system is None:
            await ws.send_bytes(protocol.error_frame(protocol.ERR_UNKNOWN_ROOM, "unknown system"))
            await ws.close(code=protocol.CLOSE_UNKNOWN_ROOM, message=b"unknown system")
            return ws
        sock = ClientSocket(self, ws, "system", system.id)
        self.sockets.add(sock)
        try:
            await sock.run()
        finally:
            self.sockets.discard(sock)
        return ws

    async def healthz(self, request: web.Request) -> web.Response:
        from ..rooms import ray_host  # counters only; importing it does not start Ray

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

    async def _maintain(self) -> None:
        """Keep the directory's services (the alarm scheduler) running."""
        while True:
            await asyncio.sleep(MAINTAIN_INTERVAL)
            try:
                await self.directory.start()
            except Exception:
                log.exception("directory maintenance failed")

    async def on_shutdown(self, app: web.Application) -> None:
        if self._maintainer is not None:
            self._maintainer.cancel()
        for sock in list(self.sockets):
            sock.close_soon(protocol.CLOSE_GOING_AWAY, "server shutting down")
        for link in list(self.links.values()):
            await link.stop()


GATEWAY = web.AppKey("gateway", Gateway)
"""The ``Gateway`` of an application: ``app[GATEWAY]``."""


def create_app(directory: RoomDirectory, galaxy: Galaxy | None = None, web_dist: Path | None = WEB_DIST) -> web.Application:
    """The gateway's aiohttp application, routing rooms through ``directory``."""
    gateway = Gateway(directory, galaxy or load_galaxy(), web_dist)
    app = web.Application()
    app[GATEWAY] = gateway
    app.router.add_get("/api/galaxy", gateway.galaxy_json)
    app.router.add_get("/api/systems/{system}", gateway.system_json)
    app.router.add_get("/api/systems/{system}/state", gateway.system_state)
    app.router.add_get("/api/systems/{system}/ws", gateway.system_ws)
    app.router.add_get("/api/rooms", gateway.rooms)
    app.router.add_get("/healthz", gateway.healthz)
    app.router.add_get("/", gateway.index)
    if web_dist is not None and (web_dist / "assets").is_dir():
        app.router.add_static("/assets", web_dist / "assets")
    app.on_startup.append(gateway.on_startup)
    app.on_shutdown.append(gateway.on_shutdown)
    return app

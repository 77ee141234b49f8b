"""The galaxy's HTTP routes and the ``system`` rooms' ids and params (docs/protocol.md §1-2).

- ``GET /api/galaxy``: every system with lanes and players online on this gateway.
- ``GET /api/route?from=<system>&to=<system>``: the shortest chain of jumps between two
  systems, ``{"systems": [ids], "parsecs": total}``.
- ``GET /api/systems/{system}``: one system with its planets (static data; wakes nothing).
- ``GET /api/systems/{system}/state``: the live room's state (``Room.on_request``); only a
  request with a valid token wakes a sleeping room (401 without one).
- ``GET /api/systems/{system}/ws``: the system's WebSocket (also ``/rooms/system/{id}/ws``).

``{system}`` is an id, a name or an alias (``sol``, ``Sol``, ``Alpha Centauri``...). The
galaxy (~1 s to build) is loaded in a thread when the gateway starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from starhold.http import GatewayAPI

from ..galaxy.catalogue import Galaxy, StarSystem, load_galaxy
from ..galaxy.planets import system_info
from .params import system_params

KIND = "system"


class GalaxyRoutes:
    """The routes above over one gateway's ``api``; ``galaxy`` is set by ``load`` (the
    gateway's startup), before any request."""

    def __init__(self, api: GatewayAPI):
        self.api = api
        self.galaxy: Galaxy | None = None

    async def load(self) -> AsyncIterator[None]:
        """A cleanup context: load the galaxy in a thread (the catalogue is parsed once per
        process: ``load_galaxy`` is cached)."""
        self.galaxy = await asyncio.to_thread(load_galaxy)
        yield

    def resolve(self, name: str) -> str | None:
        """The id of the system ``name`` (id, name or alias), or None."""
        system = self.galaxy.resolve(name)
        return None if system is None else system.id

    def params(self, system_id: str) -> dict:
        """A system room's params: ``{"system": system_info(...), "lanes": [...], "star":
        {...}}`` (star, planets, lanes, and the star's catalogue entry, so that the room's
        actor never loads the catalogue: ``rooms.system.params``)."""
        return system_params(system_id, self.galaxy)

    def _system(self, request: web.Request) -> StarSystem:
        system = self.galaxy.resolve(request.match_info["system"])
        if system is None:
            raise web.HTTPNotFound(text='{"error": "unknown system"}', content_type="application/json")
        return system

    async def galaxy_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.galaxy.to_json(self.api.players(KIND)))

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
                "players": self.api.players(KIND).get(system.id, 0), "star_radius": info["star_radius"],
                "planets": info["planets"]}
        return web.json_response(body)

    async def system_state(self, request: web.Request) -> web.Response:
        return await self.api.forward(request, KIND, self._system(request).id, "state")

    async def system_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self.api.serve_socket(request, KIND, self.resolve(request.match_info["system"]),
                                           "unknown system")


def galaxy_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """Declare the ``system`` kind's ids and params on ``api`` and return the galaxy's routes."""
    routes = GalaxyRoutes(api)
    api.add_cleanup_ctx(routes.load)
    api.room_ids(KIND, routes.resolve)
    api.room_params(KIND, routes.params)
    return [
        web.get("/api/galaxy", routes.galaxy_json),
        web.get("/api/route", routes.route_json),
        web.get("/api/systems/{system}", routes.system_json),
        web.get("/api/systems/{system}/state", routes.system_state),
        web.get("/api/systems/{system}/ws", routes.system_ws),
    ]

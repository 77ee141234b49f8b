"""Starhold-the-game's HTTP routes, mounted by every gateway that hosts the game
(``starhold.http.define_routes`` in ``game.py``): the galaxy and its systems
(``system/http.py``), game sessions (``session/http.py``), accounts (``accounts/http.py``),
pilots' profiles (``pilot/http.py``), the Knowledge Graph (``atlas/http.py``,
``pilot/graph_http.py``).
"""

from __future__ import annotations

from aiohttp import web

from starhold.http import GatewayAPI

from .accounts.http import account_routes
from .atlas.http import atlas_routes
from .market.http import market_routes
from .pilot.graph_http import graph_routes
from .pilot.http import player_routes
from .session.http import session_routes
from .system.http import galaxy_routes


CLOSED_KINDS = ("counter", "reminder")
"""Kinds the game registers (the docs' examples, ``examples.py``) that no client may reach
through ``/rooms/{kind}/{id}/ws``: any id would otherwise create a room (an actor on Ray)."""


def game_routes(api: GatewayAPI) -> list[web.RouteDef]:
    """Every route of the game over one gateway's ``api`` (see the modules above). Every kind
    of the game declares its ids: systems by the galaxy, sessions by their signature, and
    accounts and the examples have none a socket may name."""
    for kind in CLOSED_KINDS:
        api.room_ids(kind, lambda room_id: None)
    return [*galaxy_routes(api), *session_routes(api), *account_routes(api), *player_routes(api),
            *atlas_routes(api), *graph_routes(api), *market_routes(api)]

"""Starhold-the-game: importing this module registers every room kind of the game and its
HTTP routes (``http.py``).

It is the module ``starhold serve`` loads by default (the ``starhold.rooms`` entry point in
``setup.py``); ``starhold serve --rooms <module>`` hosts other kinds instead.
"""

from __future__ import annotations

from starhold import define_routes

from . import examples  # noqa: F401  counter, reminder: the docs' examples
from .accounts import room as _accounts  # noqa: F401  accounts
from .atlas import room as _atlas  # noqa: F401  atlas
from .market import room as _market  # noqa: F401  market
from .pilot import room as _pilot  # noqa: F401  pilot
from .session import room as _session  # noqa: F401  session
from .system import room as _system  # noqa: F401  system


@define_routes
def routes(api):
    """The game's HTTP routes (``http.game_routes``), imported only by gateways: room hosts
    load this module without aiohttp."""
    from .http import game_routes

    return game_routes(api)

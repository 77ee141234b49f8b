"""The Python client of the Starhold protocol: ``StarholdClient`` (reconnection, offline
queue, deltas, prediction), ``WorldState``/``Predictor``, ``Backoff``, bots and the load tool
(``starhold loadtest``, ``client/loadtest.py``)."""

from .backoff import Backoff
from .connection import (ClientClosed, StarholdClient, StarholdHTTPError, create_game, game_path, guest_token,
                         system_path)
from .market import MarketClient
from .state import Predictor, WorldState

__all__ = ["Backoff", "ClientClosed", "MarketClient", "Predictor", "StarholdClient", "StarholdHTTPError", "WorldState",
           "create_game", "game_path", "guest_token", "system_path"]

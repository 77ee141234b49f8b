"""The Python client of the Starhold protocol: ``StarholdClient`` and bots."""

from .connection import ClientClosed, StarholdClient

__all__ = ["ClientClosed", "StarholdClient"]

"""Starhold-the-game: importing this module registers every room kind of the game.

It is the module ``starhold serve`` loads by default (the ``starhold.rooms`` entry point in
``setup.py``); ``starhold serve --rooms <module>`` hosts other kinds instead.
"""

from __future__ import annotations

from . import examples  # noqa: F401  counter, reminder: the docs' examples
from .accounts import room as _accounts  # noqa: F401  accounts
from .session import room as _session  # noqa: F401  session
from .system import room as _system  # noqa: F401  system

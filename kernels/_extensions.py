"""Which implementation a kernel module uses: its compiled extension, or its pure-Python twin."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The compiled extension ``starhold.kernels.<name>`` (e.g. ``"_combat"``), or None when
    ``STARHOLD_NO_EXTENSIONS=1`` is set or the extension was not built: the caller then uses
    its twin and sets ``COMPILED = False``."""
    if os.environ.get("STARHOLD_NO_EXTENSIONS") == "1":
        return None
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None

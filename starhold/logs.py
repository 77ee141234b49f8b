"""Logging setup of Starhold processes: text, or JSON lines with room and connection ids.

Gateway and room code log with ``extra={"room": "kind/id", "conn": conn_id, "player": ...}``;
the JSON formatter puts those fields at the top level of each line, so a log pipeline can
filter one room's or one connection's story.
"""

from __future__ import annotations

import json
import logging
import time

_EXTRA_FIELDS = ("room", "conn", "player", "gateway", "epoch")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``msg``, the
    extra fields present (``room``, ``conn``, ``player``, ``gateway``, ``epoch``) and ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = " ".join(f"{n}={getattr(record, n)}" for n in _EXTRA_FIELDS if getattr(record, n, None) is not None)
        return f"{text} [{extras}]" if extras else text


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger: ``fmt`` ``text`` (human) or ``json`` (one object per line)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

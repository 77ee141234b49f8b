"""Quiet logging of malformed HTTP requests.

aiohttp answers a request it cannot parse (a request line or header over its 8 KB limits, a
bad header, ...) with 400, which is right, but logs it on ``aiohttp.server`` at ERROR with a
full traceback, as if the server had failed. ``install()`` adds ``ClientErrorFilter`` to that
logger: a record whose exception is an ``aiohttp.http_exceptions.HttpProcessingError`` with a
4xx code becomes one INFO line, ``bad HTTP request from <addr>: <reason>``, without the
traceback. Everything else on that logger (server errors, handler crashes) is untouched.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

LOGGER = "aiohttp.server"
"""The logger aiohttp's request handler reports errors on."""


class ClientErrorFilter(logging.Filter):
    """Rewrites records of client (4xx) HTTP parse errors to one INFO line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            reason = " ".join(str(exc.message or type(exc).__name__).split())[:200]
            record.msg, record.args = "bad HTTP request from %s: %s %s", (remote, exc.code, reason)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = ClientErrorFilter()


def install() -> None:
    """Add the filter to ``aiohttp.server`` (idempotent; the gateway calls it in ``create_app``)."""
    logger = logging.getLogger(LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)

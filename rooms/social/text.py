"""Chat text: what a ``say`` or ``tell`` may carry (docs/protocol.md, "Chat").

``clean_text`` is the one rule both messages apply before anything else: line breaks and tabs
become single spaces, invisible characters are removed, surrounding whitespace is trimmed, and
the result must be 1..``MAX_CHAT_LENGTH`` code points (else ``ERR_OUT_OF_RANGE``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_CHAT_LENGTH", "CHAT_BURST", "CHAT_REFILL_SECONDS", "clean_text"]

MAX_CHAT_LENGTH = 280
"""Most characters (Unicode code points) of a chat text after ``clean_text``."""
CHAT_BURST = 5
"""Chat messages (``say`` and ``tell`` together) a player may send at once (token bucket size)."""
CHAT_REFILL_SECONDS = 2.0
"""Seconds for one chat token to come back (a sustained 0.5 message/s per player)."""

_BREAKS = re.compile("[\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029]+")
"""Runs of line breaks and tabs (the ASCII ones, NEL, and the Unicode line/paragraph
separators, which would break a chat line as well): each run becomes one space."""
_REMOVED = frozenset(("Cc", "Cf", "Cs"))
"""Unicode categories removed: controls (C0, DEL, C1), format characters (zero-width space and
joiner, BOM, soft hyphen, bidirectional marks, embeddings, overrides and isolates, tag
characters...) and lone surrogates (they cannot be encoded as UTF-8)."""


def clean_text(text: str, limit: int = MAX_CHAT_LENGTH) -> str:
    """The cleaned chat ``text``: every run of CR, LF, tabs and other line breaks becomes one
    space, then every character of Unicode category Cc (control), Cf (format, e.g. U+200B
    zero-width space, U+200D zero-width joiner, U+202E right-to-left override, U+FEFF) or Cs
    (lone surrogate) is removed, and surrounding whitespace (Unicode ``str.strip``) is trimmed.
    Spaces inside the text, other scripts (right-to-left letters included), emoji and private
    use characters are kept as typed; no Unicode normalisation.

    ``limit``: most code points of the result (>= 1). Raises ``TypeError`` when ``text`` is not
    a ``str``, ``ValueError`` when ``limit`` < 1 or the result is empty or longer than
    ``limit``.
    """
    if not isinstance(text, str):
        raise TypeError(f"chat text must be a str, not {type(text).__name__}")
    if limit < 1:
        raise ValueError("limit must be >= 1")
    spaced = _BREAKS.sub(" ", text)
    cleaned = "".join(c for c in spaced if unicodedata.category(c) not in _REMOVED).strip()
    if not cleaned:
        raise ValueError("chat text is empty")
    if len(cleaned) > limit:
        raise ValueError(f"chat text is longer than {limit} characters")
    return cleaned

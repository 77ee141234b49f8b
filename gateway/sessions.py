"""Game session ids: unguessable, and signed so a gateway can refuse ids it never issued.

An id is ``<12 hex random><8 hex tag>``: the tag is the first 4 bytes of
HMAC-SHA256(key, random part). A request naming an id whose tag does not verify answers 404
without resolving (and so creating) a room: probing random ids cannot spawn actors. The key
is shared by every gateway (``<data_dir>/auth/session-key.json`` by default, created once,
like the token key; or ``STARHOLD_SESSION_KEY``, base64); it is an id namespace, not a
credential, and is never rotated (rotating it would orphan every existing game).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path

from .auth import load_or_create_key_file

KEY_FILE = Path("auth") / "session-key.json"
_ID_RE = re.compile(r"^[0-9a-f]{20}$")


class SessionIds:
    """Issues and checks game ids with ``key`` (bytes, at least 16)."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("session id key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_config(cls, key_b64: str | None, data_dir) -> "SessionIds":
        """From a base64 key, else the shared key file under ``data_dir`` (created if missing)."""
        if key_b64:
            return cls(base64.b64decode(key_b64))
        keys, active = load_or_create_key_file(Path(data_dir) / KEY_FILE)
        return cls(keys[active])

    def _tag(self, random_part: str) -> str:
        return hmac.new(self._key, random_part.encode(), hashlib.sha256).hexdigest()[:8]

    def new(self) -> str:
        """A fresh game id (20 lowercase hex characters)."""
        random_part = secrets.token_hex(6)
        return random_part + self._tag(random_part)

    def valid(self, game_id: str) -> bool:
        """Whether ``game_id`` was issued with this key."""
        if not _ID_RE.match(game_id):
            return False
        return hmac.compare_digest(game_id[12:], self._tag(game_id[:12]))

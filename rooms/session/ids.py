"""Game session ids: unguessable, and signed so a gateway can refuse ids it never issued.

An id is 96 lowercase hex characters: ``<32 hex random><64 hex tag>``, 128 random bits and the
whole HMAC-SHA256(key, random part) (256 bits, not truncated), checked in constant time
(``hmac.compare_digest``). A request naming an id whose tag does not verify answers 404
without resolving (and so creating) a room: probing ids cannot spawn actors, since forging a
tag means guessing 256 bits. The key is shared by every gateway
(``<data_dir>/auth/session-key.json`` by default, created once, like the token key:
``GatewayAPI.shared_secret("session-key")``; or ``STARHOLD_SESSION_KEY``, base64); it is an id namespace, not a credential, and is never
rotated (rotating it would orphan every existing game). Ids of the earlier 20-character format
(a 32-bit tag) are no longer accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

KEY_NAME = "session-key"
"""Name of the gateways' shared secret that signs game ids (``GatewayAPI.shared_secret``)."""
RANDOM_BYTES = 16
"""Random bytes of an id (128 bits)."""
TAG_HEX = 2 * hashlib.sha256().digest_size
"""Hex characters of an id's tag: the full HMAC-SHA256 (64)."""
ID_LENGTH = 2 * RANDOM_BYTES + TAG_HEX
"""Characters of a game id (96)."""
_ID_RE = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")


class SessionIds:
    """Issues and checks game ids with ``key`` (bytes, at least 16; ``ValueError`` if shorter)."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("session id key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_config(cls, key_b64: str | None, shared_secret) -> "SessionIds":
        """From a base64 key, else from ``shared_secret(KEY_NAME)`` (bytes; the gateway's
        ``GatewayAPI.shared_secret``: one key file shared by every gateway on a data dir)."""
        if key_b64:
            return cls(base64.b64decode(key_b64))
        return cls(shared_secret(KEY_NAME))

    def _tag(self, random_part: str) -> str:
        return hmac.new(self._key, random_part.encode(), hashlib.sha256).hexdigest()

    def new(self) -> str:
        """A fresh game id (``ID_LENGTH`` = 96 lowercase hex characters)."""
        random_part = secrets.token_hex(RANDOM_BYTES)
        return random_part + self._tag(random_part)

    def valid(self, game_id: str) -> bool:
        """Whether ``game_id`` was issued with this key (format checked first, then the whole
        tag compared in constant time)."""
        if not isinstance(game_id, str) or not _ID_RE.fullmatch(game_id):
            return False
        split = 2 * RANDOM_BYTES
        return hmac.compare_digest(game_id[split:], self._tag(game_id[:split]))

"""The accounts room: usernames and password hashes (kind ``accounts``, one room, id
``"accounts"``). The game's ``/api/auth/register`` and ``/login`` routes (``http.py``) talk to
it and have the gateway sign the tokens; this room only answers "who is this?" and never sees a token.

Requests (``HttpRequest(method="POST", path=..., body=<UTF-8 JSON object>)``):

- ``register`` ``{"username": str, "password": str, "name": str?}`` ->
  201 ``{"player", "username", "name"}``; 409 ``{"error": "username taken"}``;
  400 ``{"error": "..."}`` for a malformed body or an invalid field.
- ``login`` ``{"username": str, "password": str}`` -> 200 ``{"player", "username", "name"}``;
  401 ``{"error": "invalid username or password"}`` for a wrong password *and* for an unknown
  user (same body; an unknown user costs one hash against a dummy salt, so the timing is
  similar too); 400 for a malformed body.
- anything else: 404 (unknown path) or 405 (not POST), JSON ``{"error": ...}``.

Fields: ``username`` 3-32 characters of ``[A-Za-z0-9_.-]``, compared case-insensitively (stored
case-folded: ``Ada`` and ``ada`` are one account, answered as ``ada``); ``password`` 8-256
characters (any; NFKC-normalised before hashing, as NIST SP 800-63B suggests, so the same
password typed on two keyboards matches); ``name`` 1-32 printable characters after stripping
surrounding spaces, defaulting to the username as typed at registration (``Ada``, while the
account's key is ``ada``). ``player`` is ``"u-"`` + 16 random hex digits.

Storage: one SQL table ``accounts`` (created in ``on_start``): ``username`` TEXT PRIMARY KEY
(case-folded), ``player`` TEXT UNIQUE, ``name`` TEXT, ``salt`` BLOB (16 bytes), ``n``/``r``/``p``
INTEGER (the scrypt parameters of this row's hash), ``hash`` BLOB (32 bytes), ``created`` REAL
(``self.clock`` seconds). Each row keeps its own parameters, so the class parameters can be
raised later: a successful login with a hash made under lower parameters rehashes the password
with the current ones (new salt) in the same hook.

KDF: scrypt (RFC 7914) through ``hashlib.scrypt`` with N=2**14, r=8, p=1, 32-byte output and a
16-byte salt from ``secrets`` -- the minimum the OWASP Password Storage Cheat Sheet gives for
scrypt (N=2^17 r=8 p=1 is its first choice, N=2^14 with r=8 p=1 its low-memory setting); it uses
128*N*r = 16 MiB per hash. Hashes are compared with ``hmac.compare_digest``.

Throughput: scrypt runs in a worker thread (``asyncio.to_thread``; hashlib releases the GIL), so
the room's event loop (and, in-process, the gateway's) is never blocked. But the runtime runs
a room's hooks one at a time (the input gate), so this room processes registrations and logins
**one at a time**: one hash measured 37-45 ms (mean ~40 ms) on the project's 2-core machine,
i.e. about 25 registrations or logins per second for the whole deployment while there is one
accounts room. Requests beyond that queue at the room (and anyone can fill that queue with bad
logins: rate limiting belongs in the gateway). To scale out, shard accounts over several rooms by
a hash of the case-folded username.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import unicodedata

from starhold import HttpRequest, HttpResponse, Room, define_room
from starhold.http import check_display_name

SCRYPT_N = 2**14
"""scrypt CPU/memory cost (a power of two), for new hashes."""
SCRYPT_R = 8
"""scrypt block size, for new hashes."""
SCRYPT_P = 1
"""scrypt parallelism, for new hashes."""
HASH_BYTES = 32
SALT_BYTES = 16

USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
PASSWORD_MIN, PASSWORD_MAX = 8, 256

LOGIN_FAILED = "invalid username or password"

_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)
"""Salt hashed against for unknown users, so that they cost as much as known ones."""


class InvalidField(ValueError):
    """A request field is missing or invalid; the message is safe to show to the client."""


def check_name(value, field: str = "name") -> str:
    """A display name: a str of 1-32 printable characters once surrounding whitespace is
    stripped. Returns the stripped name; raises ``InvalidField``. The framework's rule
    (``starhold.http.check_display_name``), which guest tokens obey too."""
    try:
        return check_display_name(value, field)
    except ValueError as exc:
        raise InvalidField(str(exc)) from None


def check_username(value) -> str:
    """A username, case-folded; raises ``InvalidField``."""
    if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
        raise InvalidField("username must be 3-32 characters: letters, digits, '_', '.', '-'")
    return value.casefold()


def check_password(value) -> bytes:
    """A password of 8-256 characters, NFKC-normalised and UTF-8 encoded; raises ``InvalidField``."""
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidField(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    try:
        return unicodedata.normalize("NFKC", value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in the JSON)
        raise InvalidField("password must be valid Unicode") from None


async def scrypt_hash(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """scrypt(password, salt, N=n, r, p) -> 32 bytes, in a worker thread (~40 ms at the defaults)."""
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024  # what OpenSSL needs, plus slack
    return await asyncio.to_thread(hashlib.scrypt, password, salt=salt, n=n, r=r, p=p,
                                   maxmem=maxmem, dklen=HASH_BYTES)


def _error(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, {"error": message})


@define_room
class AccountsRoom(Room):
    """All accounts in one SQL table; see the module docstring for requests and answers.
    ``SCRYPT_N``/``SCRYPT_R``/``SCRYPT_P`` (class attributes, from the module constants) are the
    parameters of new hashes; raising them upgrades old hashes at their owners' next login."""

    kind = "accounts"
    SCRYPT_N = SCRYPT_N
    SCRYPT_R = SCRYPT_R
    SCRYPT_P = SCRYPT_P

    async def on_start(self) -> None:
        await self.storage.sql(
            "CREATE TABLE IF NOT EXISTS accounts ("
            " username TEXT PRIMARY KEY, player TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
            " salt BLOB NOT NULL, n INTEGER NOT NULL, r INTEGER NOT NULL, p INTEGER NOT NULL,"
            " hash BLOB NOT NULL, created REAL NOT NULL) WITHOUT ROWID")

    async def on_request(self, request: HttpRequest) -> HttpResponse:
        handler = {"register": self._register, "login": self._login}.get(request.path)
        if handler is None:
            return _error(404, "not found")
        if request.method != "POST":
            return _error(405, "use POST")
        try:
            body = json.loads(request.body)
        except (ValueError, TypeError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return _error(400, "body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        try:
            return await handler(body)
        except InvalidField as exc:
            return _error(400, str(exc))

    async def _register(self, body: dict) -> HttpResponse:
        username = check_username(body.get("username"))
        password = check_password(body.get("password"))
        # the display name defaults to the username as typed (``Ada``), not its case-folded key
        name = check_name(body["name"]) if body.get("name") is not None else body["username"]
        if await self.storage.sql("SELECT 1 FROM accounts WHERE username = ?", username):
            return _error(409, "username taken")
        # No await between the check above and the insert below lets another request in: the
        # input gate runs this room's hooks one at a time.
        salt = secrets.token_bytes(SALT_BYTES)
        n, r, p = self.SCRYPT_N, self.SCRYPT_R, self.SCRYPT_P
        digest = await scrypt_hash(password, salt, n, r, p)
        player = "u-" + secrets.token_hex(8)
        await self.storage.sql(
            "INSERT INTO accounts (username, player, name, salt, n, r, p, hash, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            username, player, name, salt, n, r, p, digest, float(self.clock.now()))
        return HttpResponse(201, {"player": player, "username": username, "name": name})

    async def _login(self, body: dict) -> HttpResponse:
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return _error(400, "username and password must be strings")
        try:  # an invalid username or password cannot match any account: same answer as a miss
            username, password = check_username(username), check_password(password)
        except InvalidField:
            username, password = None, b""
        rows = await self.storage.sql(
            "SELECT player, name, salt, n, r, p, hash FROM accounts WHERE username = ?", username) if username else []
        if not rows:
            await scrypt_hash(password, _DUMMY_SALT, self.SCRYPT_N, self.SCRYPT_R, self.SCRYPT_P)
            return _error(401, LOGIN_FAILED)
        player, name, salt, n, r, p, stored = rows[0]
        digest = await scrypt_hash(password, bytes(salt), n, r, p)
        if not hmac.compare_digest(digest, bytes(stored)):
            return _error(401, LOGIN_FAILED)
        if n < self.SCRYPT_N or r < self.SCRYPT_R or p < self.SCRYPT_P:
            await self._rehash(username, password)
        return HttpResponse(200, {"player": player, "username": username, "name": name})

    async def _rehash(self, username: str, password: bytes) -> None:
        """Re-hash a verified password with the current parameters and a new salt."""
        salt = secrets.token_bytes(SALT_BYTES)
        n, r, p = self.SCRYPT_N, self.SCRYPT_R, self.SCRYPT_P
        digest = await scrypt_hash(password, salt, n, r, p)
        await self.storage.sql("UPDATE accounts SET salt = ?, n = ?, r = ?, p = ?, hash = ? WHERE username = ?",
                               salt, n, r, p, digest, username)

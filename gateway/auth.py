"""Signed tokens: the ``TokenService`` that every WebSocket checks, and the framework's
``/api/auth/*`` routes (docs/protocol.md, "Accounts and tokens").

Routes (``add_auth_routes``), JSON bodies of at most 4 KiB (413 beyond, 400 when malformed):

- ``POST /api/auth/guest`` ``{"name"}`` -> 200 with a guest token (no account, no room);
- ``GET /api/auth/me`` -> 200 ``{"player", "name", "kind", "expires"}`` for the request's token.

A token answer is ``{"token", "expires", "player", "name", "kind"}``. Every error is JSON
``{"error": message}``; 401s carry ``WWW-Authenticate: Bearer``. Accounts (``POST
/api/auth/register`` and ``/api/auth/login``) are the game's routes (``rooms/accounts/http.py``),
which ask the accounts room and have the gateway sign (``GatewayAPI.issue_token``).

**Token format.** A JWT (RFC 7519) signed with HS256 (HMAC-SHA256) through PyJWT. Header:
``{"alg": "HS256", "typ": "JWT", "kid": <key id>}``. Claims: ``sub`` (player id: ``u-`` + 16 hex
for accounts, ``g-`` + 16 hex for guests), ``name`` (display name), ``kind`` (``"user"`` or
``"guest"``), ``iat`` and ``exp`` (Unix seconds, integers), ``iss`` and ``aud`` (both
``"starhold"``). Verification requires ``sub``, ``iat`` and ``exp``, checks ``iss`` and ``aud``
and allows ``LEEWAY`` (5 s) of clock skew between gateway processes.

**Expiry.** ``USER_TTL`` (24 h) for accounts, ``GUEST_TTL`` (12 h) for guests. There is no
revocation list: a token is good until it expires or its key is removed, which is one reason
they are short-lived (the other: tokens travel in WebSocket URLs, see ``token_from_request``).
A client logs in again when its token expires.

**Keys.** ``STARHOLD_JWT_KEYS="kid1:base64secret,kid2:base64secret"``: the first entry is the
active key (it signs new tokens); every listed key verifies. Secrets are at least 32 bytes
(RFC 7518 §3.2), e.g. ``python -c "import secrets,base64;print(base64.b64encode(secrets.token_bytes(32)).decode())"``.
Every gateway replica must be given the same list. Without the variable the gateways share a
generated key document ``{"active": kid, "keys": {kid: base64secret}}`` with one random key,
created once by the first process that needs it: with S3 snapshots (``--snapshots s3://...``)
the object ``<prefix>_cluster/jwt-keys.json`` in the snapshot bucket (created with
``If-None-Match: *``: every gateway on every node gets the same key; ``storage.cluster_secrets``),
otherwise the file ``<data_dir>/auth/jwt-keys.json`` (mode 0600): fine for one machine, not for
replicas on several machines.

**Rotation** (no token is invalidated early):

1. Add the new key at the front: ``STARHOLD_JWT_KEYS="k2:NEW,k1:OLD"`` and restart (roll) the
   gateways. New tokens carry ``kid: k2``; old ones still verify with ``k1``.
2. Wait for the longest TTL (24 h) plus the leeway: every ``k1`` token has expired.
3. Remove the old key: ``STARHOLD_JWT_KEYS="k2:NEW"``. A leaked key is removed at once instead
   (its tokens stop working: players log in again).

In a running process: ``tokens.add_key("k2", secret, activate=True)`` then, later,
``tokens.remove_key("k1")``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import jwt
from aiohttp import web

from ..http import AuthError, HttpError, Identity, check_display_name, read_json

log = logging.getLogger("starhold.gateway.auth")

ENV_KEYS = "STARHOLD_JWT_KEYS"
"""Environment variable with the signing keys, ``"kid1:base64secret,kid2:base64secret"``."""
KEY_FILE = Path("auth") / "jwt-keys.json"
"""The generated key file, below the data dir, when no keys are configured."""

USER_TTL = 24 * 3600.0
"""Lifetime of an account's token, seconds."""
GUEST_TTL = 12 * 3600.0
"""Lifetime of a guest's token, seconds."""
LEEWAY = 5.0
"""Clock skew tolerated when checking ``exp`` and ``iat``, seconds."""
ISSUER = AUDIENCE = "starhold"
ALGORITHM = "HS256"
MIN_KEY_BYTES = 32
"""Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's output size)."""
KINDS = ("user", "guest")

MAX_BODY = 4096
"""Largest request body of the auth routes, bytes."""

_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


__all__ = ["AuthError", "Identity", "TokenService", "add_auth_routes", "load_or_create_key_file", "load_or_create_keys",
           "parse_keys_spec", "token_answer", "token_from_request"]


class TokenService:
    """Issues and verifies HS256 JWTs (see the module docstring for the format).

    ``keys`` maps key ids to secrets (bytes, >= 32); ``active`` is the id that signs. ``ttl``
    maps a kind to its token lifetime in seconds (defaults: ``USER_TTL``, ``GUEST_TTL``).
    ``now`` returns Unix seconds (``time.time``; tests inject a fake clock instead of sleeping).
    """

    def __init__(self, keys: Mapping[str, bytes], active: str, ttl: Mapping[str, float] | None = None,
                 *, now: Callable[[], float] = time.time, leeway: float = LEEWAY):
        self._keys: dict[str, bytes] = {}
        for kid, secret in keys.items():
            self.add_key(kid, secret)
        self._active = ""
        self.activate(active)
        self.ttl = {"user": USER_TTL, "guest": GUEST_TTL, **(ttl or {})}
        self.now = now
        self.leeway = leeway

    # ---- keys ------------------------------------------------------------------------------
    @property
    def active(self) -> str:
        """The id of the key that signs new tokens."""
        return self._active

    @property
    def kids(self) -> list[str]:
        """Ids of every key that verifies."""
        return list(self._keys)

    def add_key(self, kid: str, secret: bytes, *, activate: bool = False) -> None:
        """Add (or replace) a verification key; ``activate`` makes it the signing key too."""
        if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
            raise ValueError(f"key id {kid!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        if not isinstance(secret, (bytes, bytearray)) or len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"key {kid!r}: the secret must be at least {MIN_KEY_BYTES} bytes")
        self._keys[kid] = bytes(secret)
        if activate:
            self.activate(kid)

    def activate(self, kid: str) -> None:
        """Sign new tokens with the known key ``kid``."""
        if kid not in self._keys:
            raise ValueError(f"unknown key id {kid!r}")
        self._active = kid

    def remove_key(self, kid: str) -> None:
        """Forget ``kid``: its tokens no longer verify. The active key cannot be removed."""
        if kid == self._active:
            raise ValueError("cannot remove the active key; activate another one first")
        self._keys.pop(kid, None)

    # ---- tokens ----------------------------------------------------------------------------
    def issue(self, player: str, name: str, kind: str, ttl: float | None = None) -> tuple[str, float]:
        """A token for ``player``; returns ``(token, expires)`` with ``expires`` in Unix seconds.
        ``ttl`` (seconds) defaults to the kind's lifetime."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        now = int(self.now())
        exp = now + int(self.ttl[kind] if ttl is None else ttl)
        claims = {"sub": player, "name": name, "kind": kind, "iat": now, "exp": exp,
                  "iss": ISSUER, "aud": AUDIENCE}
        token = jwt.encode(claims, self._keys[self._active], algorithm=ALGORITHM, headers={"kid": self._active})
        return token, float(exp)

    def verify(self, token: str) -> Identity:
        """The identity of a valid token. Raises ``AuthError`` saying why it is refused:
        malformed, unknown key id, bad signature, wrong issuer/audience, missing claim,
        expired, issued in the future."""
        if not isinstance(token, str) or not token:
            raise AuthError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError("malformed token: unsupported algorithm")
        key = self._keys.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
        if key is None:
            raise AuthError("unknown key id")
        try:
            # Times are checked below against self.now (PyJWT would read the system clock).
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub"], "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidSignatureError:
            raise AuthError("bad token signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise AuthError("token not issued for starhold") from None
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        exp, iat = claims["exp"], claims["iat"]
        sub, name, kind = claims["sub"], claims.get("name"), claims.get("kind")
        if (not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat))
                or not sub or not isinstance(name, str) or kind not in KINDS):
            raise AuthError("malformed token: bad claims")
        now = self.now()
        if exp <= now - self.leeway:
            raise AuthError("token expired")
        if iat > now + self.leeway:
            raise AuthError("token issued in the future")
        return Identity(player=sub, name=name, kind=kind, expires=float(exp))

    # ---- configuration ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, keys_spec: str | None, data_dir: str | os.PathLike,
                    ttl: Mapping[str, float] | None = None, *, now: Callable[[], float] = time.time,
                    snapshots: dict | None = None) -> TokenService:
        """From ``keys_spec`` (``STARHOLD_JWT_KEYS`` format, first key active) or, when it is
        None or blank, from the shared key document ``jwt-keys.json`` (``load_or_create_keys``:
        in S3 when ``snapshots`` is an S3 snapshot spec, else ``<data_dir>/auth/``), created if
        missing. Blocking on first use of S3. Raises ``ValueError`` for a bad spec or document,
        ``storage.s3_client.S3StorageError`` when S3 fails."""
        if keys_spec is not None and keys_spec.strip():
            keys, active = parse_keys_spec(keys_spec)
        else:
            keys, active = load_or_create_keys(KEY_FILE.name, data_dir, snapshots)
        return cls(keys, active, ttl, now=now)


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    text = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_keys_spec(spec: str) -> tuple[dict[str, bytes], str]:
    """``"kid1:base64secret,kid2:base64secret"`` -> ``({kid: secret}, first kid)``. Raises
    ``ValueError`` naming the bad entry's key id (never the secret)."""
    keys: dict[str, bytes] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        kid, sep, encoded = entry.partition(":")
        kid = kid.strip()
        if not sep or not _KID_RE.fullmatch(kid):
            raise ValueError(f"{ENV_KEYS}: entries are kid:base64secret (kid of [A-Za-z0-9_.-])")
        if kid in keys:
            raise ValueError(f"{ENV_KEYS}: key id {kid!r} listed twice")
        try:
            secret = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raise ValueError(f"{ENV_KEYS}: the secret of {kid!r} is not base64") from None
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"{ENV_KEYS}: the secret of {kid!r} has {len(secret)} bytes; at least {MIN_KEY_BYTES} needed")
        keys[kid] = secret
    if not keys:
        raise ValueError(f"{ENV_KEYS}: no key given")
    return keys, next(iter(keys))


def _parse_key_doc(raw: bytes, where: object) -> tuple[dict[str, bytes], str]:
    doc = json.loads(raw)
    keys = {kid: _b64decode(secret) for kid, secret in doc["keys"].items()}
    if doc["active"] not in keys:
        raise ValueError(f"{where}: the active key {doc['active']!r} is not among its keys")
    return keys, doc["active"]


def _new_key_doc() -> bytes:
    """A key document with one random 32-byte key, ``k-`` + 8 hex as its id."""
    kid = "k-" + secrets.token_hex(4)
    return json.dumps({"active": kid, "keys": {kid: base64.b64encode(secrets.token_bytes(32)).decode()}}).encode()


def _read_key_file(path: Path) -> tuple[dict[str, bytes], str]:
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode & 0o777)
    return _parse_key_doc(path.read_bytes(), path)


def load_or_create_keys(name: str, data_dir: str | os.PathLike, snapshots: dict | None = None
                        ) -> tuple[dict[str, bytes], str]:
    """The key document ``name`` (``"jwt-keys.json"``, ``"session-key.json"``...) shared by
    every gateway: ``({kid: secret}, active kid)``. With an S3 snapshot spec ``snapshots``
    (``storage.factory``) it is the object ``<prefix>_cluster/<name>`` of the snapshot bucket,
    created once for the whole cluster (``storage.cluster_secrets.ClusterSecrets``: one GET, a
    conditional PUT the first time); otherwise the file ``<data_dir>/auth/<name>``
    (``load_or_create_key_file``). Blocking. Raises ``ValueError`` for a document that is not
    a key document, ``storage.s3_client.S3StorageError`` when S3 fails."""
    if snapshots and snapshots.get("kind") == "s3":
        from ..storage.cluster_secrets import ClusterSecrets

        store = ClusterSecrets(snapshots)
        try:
            raw = store.get_or_create(name, _new_key_doc)
        finally:
            store.objects.close()
        try:
            return _parse_key_doc(raw, store.where(name))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{store.where(name)}: not a valid key document ({exc})") from None
    return load_or_create_key_file(Path(data_dir) / KEY_FILE.parent / name)


def load_or_create_key_file(path: Path) -> tuple[dict[str, bytes], str]:
    """The keys of ``path`` (``{"active": kid, "keys": {kid: base64secret}}``), creating it with
    one random 32-byte key if missing. Creation is atomic and exclusive, so processes starting
    together on one machine end up with the same key: each writes a private temporary file
    (``O_CREAT|O_EXCL``, mode 0600) and hard-links it to ``path``; the link fails for all but
    the first (like ``O_EXCL`` on ``path``, but nobody can read a half-written file); the others
    read the winner's file."""
    for _ in range(100):
        try:
            return _read_key_file(path)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a valid key file ({exc})") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        doc = _new_key_doc()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(doc)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
                log.info("created the key %s in %s", json.loads(doc)["active"], path)
            except FileExistsError:
                pass  # another process created it first: read theirs
        finally:
            tmp.unlink(missing_ok=True)
    raise RuntimeError(f"could not create or read {path}")


def token_from_request(request: web.Request) -> str | None:
    """The request's token: from ``Authorization: Bearer <token>``, else from the ``token``
    query parameter; None if neither. The query parameter exists because browsers cannot set
    headers on a WebSocket upgrade (``new WebSocket(url)``); URLs, query string included, may be
    written to proxy and access logs, one reason tokens are short-lived (see ``USER_TTL``)."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


TOKENS = web.AppKey("starhold_tokens", TokenService)
"""The ``TokenService`` of an application (set by ``add_auth_routes``): ``app[TOKENS]``."""


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def token_answer(tokens: TokenService, player: str, name: str, kind: str) -> dict:
    """A new token for ``player`` as the routes answer it: ``{"token", "expires", "player",
    "name", "kind"}``."""
    token, expires = tokens.issue(player, name, kind)
    return {"token": token, "expires": expires, "player": player, "name": name, "kind": kind}


class _AuthRoutes:
    def __init__(self, tokens: TokenService):
        self.tokens = tokens

    async def guest(self, request: web.Request) -> web.Response:
        body = await read_json(request, MAX_BODY)
        try:
            name = check_display_name(body.get("name"))
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return web.json_response(token_answer(self.tokens, "g-" + secrets.token_hex(8), name, "guest"),
                                 headers={"Cache-Control": "no-store"})

    async def me(self, request: web.Request) -> web.Response:
        token = token_from_request(request)
        if token is None:
            raise AuthError("missing token")
        return web.json_response(self.tokens.verify(token).to_json(), headers={"Cache-Control": "no-store"})


def json_errors(handler):
    """Wrap an aiohttp handler: ``AuthError`` becomes its status (401) with ``WWW-Authenticate:
    Bearer`` and ``HttpError`` its status, both as JSON ``{"error": message}``."""
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except AuthError as exc:
            return _error(exc.status, exc.message, **{"WWW-Authenticate": "Bearer"})
        except HttpError as exc:
            return _error(exc.status, exc.message)
    return wrapped


def add_auth_routes(app: web.Application, tokens: TokenService) -> None:
    """Add ``POST /api/auth/guest`` and ``GET /api/auth/me`` to ``app``, and store ``tokens``
    as ``app[TOKENS]``. Accounts (register, login) are routes of the game
    (``starhold.rooms.accounts.http``)."""
    routes = _AuthRoutes(tokens)
    app[TOKENS] = tokens
    app.router.add_post("/api/auth/guest", json_errors(routes.guest))
    app.router.add_get("/api/auth/me", json_errors(routes.me))

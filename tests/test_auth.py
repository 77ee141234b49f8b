"""Accounts and tokens: the accounts room in-process (no Ray) behind a small aiohttp app with
the auth routes on 127.0.0.1; tokens on the test's ManualClock, so expiry needs no sleeping."""

import asyncio
import base64
import hashlib
import json
import stat
import threading
from types import SimpleNamespace

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import make_mocked_request
from starhold.gateway import auth
from starhold.rooms.accounts.throttle import LOCKOUT_MAX, LoginThrottle
from starhold.gateway.auth import (
    AuthError,
    Identity,
    TokenService,
    load_or_create_key_file,
    parse_keys_spec,
    token_from_request,
)
from starhold.rooms.accounts import room as accounts
from starhold.rooms.accounts.room import AccountsRoom
from starhold._runtime.local_host import InProcessDirectory
from starhold.kinds import room_class
from starhold.room import HttpRequest

KEY1 = b"1" * 32
KEY2 = b"2" * 32


def b64(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


@pytest.fixture
async def api(room_directory, manual_clock, gateway_factory):
    tokens = TokenService({"k1": KEY1}, "k1", now=manual_clock.now)
    base = await gateway_factory(room_directory, tokens=tokens,
                                 options={"login_throttle": LoginThrottle(now=manual_clock.now)})
    session = aiohttp.ClientSession()

    async def call(method, path, body=None, *, data=None, headers=None):
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        elif data is not None:
            kwargs["data"] = data
        async with session.request(method, base + path, **kwargs) as resp:
            assert resp.content_type == "application/json", (resp.status, await resp.text())
            return resp.status, await resp.json(), resp.headers

    async def post(path, body=None, **kwargs):
        status, answer, _ = await call("POST", path, body, **kwargs)
        return status, answer

    yield SimpleNamespace(url=base, tokens=tokens, call=call, post=post, directory=room_directory, clock=manual_clock)
    await session.close()


async def account_rows(directory, username):
    handle = await directory.get("accounts", "accounts")
    storage = directory.runtime("accounts", "accounts").storage
    assert handle is not None
    return await storage.sql("SELECT player, name, salt, n, r, p, hash, created FROM accounts WHERE username = ?", username)


async def test_register_login_and_token_name_the_same_player(api):
    status, reg = await api.post("/api/auth/register", {"username": "Ada_L", "password": "correct horse", "name": "Ada"})
    assert status == 201
    assert set(reg) == {"token", "expires", "player", "name", "kind"}
    assert reg["player"].startswith("u-") and len(reg["player"]) == 18 and reg["name"] == "Ada" and reg["kind"] == "user"
    assert reg["expires"] == int(api.clock.now()) + auth.USER_TTL

    status, login = await api.post("/api/auth/login", {"username": "ada_l", "password": "correct horse"})
    assert status == 200 and login["player"] == reg["player"] and login["name"] == "Ada"
    assert login["token"] != "" and api.tokens.verify(login["token"]) == Identity(reg["player"], "Ada", "user", login["expires"])
    assert api.tokens.verify(reg["token"]).player == reg["player"]

    # the name defaults to the username as typed (the account itself is case-insensitive)
    status, bob = await api.post("/api/auth/register", {"username": "Bob.99", "password": "password!"})
    assert status == 201 and bob["name"] == "Bob.99" and bob["player"] != reg["player"]
    status, again = await api.post("/api/auth/login", {"username": "BOB.99", "password": "password!"})
    assert status == 200 and again["name"] == "Bob.99" and again["player"] == bob["player"]


async def test_me_answers_the_identity_of_the_token(api):
    _, reg = await api.post("/api/auth/register", {"username": "carol", "password": "hunter2hunter2"})
    for kwargs, path in [({"headers": {"Authorization": "Bearer " + reg["token"]}}, "/api/auth/me"),
                         ({}, "/api/auth/me?token=" + reg["token"])]:
        status, me, _ = await api.call("GET", path, **kwargs)
        assert status == 200
        assert me == {"player": reg["player"], "name": "carol", "kind": "user", "expires": reg["expires"]}

    status, body, headers = await api.call("GET", "/api/auth/me")
    assert (status, body) == (401, {"error": "missing token"}) and headers["WWW-Authenticate"] == "Bearer"
    status, body, _ = await api.call("GET", "/api/auth/me", headers={"Authorization": "Bearer nonsense"})
    assert (status, body) == (401, {"error": "malformed token"})


async def test_usernames_are_unique_case_insensitively(api):
    assert (await api.post("/api/auth/register", {"username": "Dave", "password": "12345678"}))[0] == 201
    for username in ("Dave", "dave", "DAVE"):
        assert await api.post("/api/auth/register", {"username": username, "password": "other-password"}) == (
            409, {"error": "username taken"})
    # the first password still holds
    assert (await api.post("/api/auth/login", {"username": "dAvE", "password": "12345678"}))[0] == 200
    assert (await api.post("/api/auth/login", {"username": "dave", "password": "other-password"}))[0] == 401


def count_hashes(monkeypatch) -> list:
    """Record the salt of every scrypt hash computed from now on; returns the list."""
    hashes = []
    real = accounts.scrypt_hash

    async def counting(password, salt, n, r, p):
        hashes.append(salt)
        return await real(password, salt, n, r, p)

    monkeypatch.setattr(accounts, "scrypt_hash", counting)
    return hashes


async def test_wrong_password_and_unknown_user_get_the_same_401(api, monkeypatch):
    await api.post("/api/auth/register", {"username": "erin", "password": "right password"})
    hashes = count_hashes(monkeypatch)
    expected = (401, {"error": "invalid username or password"})
    assert await api.post("/api/auth/login", {"username": "erin", "password": "wrong password"}) == expected
    assert await api.post("/api/auth/login", {"username": "nobody", "password": "wrong password"}) == expected
    assert await api.post("/api/auth/login", {"username": "x", "password": "short"}) == expected  # can't exist
    # every failed login cost one hash, an unknown user's against the dummy salt
    assert len(hashes) == 3 and hashes[1] == hashes[2] == accounts._DUMMY_SALT != hashes[0]


@pytest.mark.parametrize("body, message", [
    ({"username": "ab", "password": "12345678"}, "username"),
    ({"username": "a" * 33, "password": "12345678"}, "username"),
    ({"username": "with space", "password": "12345678"}, "username"),
    ({"username": "émile", "password": "12345678"}, "username"),
    ({"username": 123, "password": "12345678"}, "username"),
    ({"password": "12345678"}, "username"),
    ({"username": "frank", "password": "1234567"}, "password"),
    ({"username": "frank", "password": "x" * 257}, "password"),
    ({"username": "frank", "password": 12345678}, "password"),
    ({"username": "frank", "password": "\ud800abcdefgh"}, "password"),
    ({"username": "frank", "password": "12345678", "name": ""}, "name"),
    ({"username": "frank", "password": "12345678", "name": "   "}, "name"),
    ({"username": "frank", "password": "12345678", "name": "n" * 33}, "name"),
    ({"username": "frank", "password": "12345678", "name": "bell\x07"}, "name"),
    ({"username": "frank", "password": "12345678", "name": 5}, "name"),
])
async def test_invalid_fields_are_400(api, body, message):
    status, answer = await api.post("/api/auth/register", body)
    assert status == 400 and message in answer["error"]
    assert await account_rows(api.directory, "frank") == []


async def test_limits_are_inclusive(api):
    status, reg = await api.post("/api/auth/register", {"username": "abc", "password": "p" * 256, "name": " " + "é" * 32 + " "})
    assert status == 201 and reg["name"] == "é" * 32
    assert (await api.post("/api/auth/register", {"username": "z" * 32, "password": "p" * 8}))[0] == 201


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/guest"])
async def test_oversized_bodies_are_413(api, path):
    body = json.dumps({"username": "gina", "password": "x" * 5000, "name": "G"}).encode()
    assert (await api.post(path, data=body))[0] == 413

    async def chunked():  # no Content-Length: the limit holds while reading
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    status, answer = await api.post(path, data=chunked())
    assert status == 413 and "4096" in answer["error"]
    assert await account_rows(api.directory, "gina") == []


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/guest"])
@pytest.mark.parametrize("data", [b"", b"{", b"[1, 2]", b'"name"', b"\xff\xfe", b"null"])
async def test_malformed_json_is_400(api, path, data):
    assert await api.post(path, data=data) == (400, {"error": "body must be a JSON object"})


async def test_guest_tokens(api):
    status, guest = await api.post("/api/auth/guest", {"name": "  Wanderer  "})
    assert status == 200 and guest["kind"] == "guest" and guest["name"] == "Wanderer"
    assert guest["player"].startswith("g-") and len(guest["player"]) == 18
    assert guest["expires"] == int(api.clock.now()) + auth.GUEST_TTL
    assert api.tokens.verify(guest["token"]) == Identity(guest["player"], "Wanderer", "guest", guest["expires"])
    _, other = await api.post("/api/auth/guest", {"name": "Wanderer"})
    assert other["player"] != guest["player"]
    for bad in ({}, {"name": ""}, {"name": "x" * 33}, {"name": "tab\there"}, {"name": ["x"]}):
        status, answer = await api.post("/api/auth/guest", bad)
        assert status == 400 and "name" in answer["error"]
    assert not await api.directory.is_active("accounts", "accounts")  # guests never wake the accounts room


async def test_expired_tokens_are_refused(api):
    _, guest = await api.post("/api/auth/guest", {"name": "Hal"})
    token = guest["token"]
    await api.clock.advance(auth.GUEST_TTL + auth.LEEWAY - 1)  # within the leeway
    assert api.tokens.verify(token).name == "Hal"
    await api.clock.advance(2)
    with pytest.raises(AuthError, match="expired") as info:
        api.tokens.verify(token)
    assert info.value.status == 401
    status, body, _ = await api.call("GET", "/api/auth/me?token=" + token)
    assert (status, body) == (401, {"error": "token expired"})


def test_ttl_overrides():
    now = [1000.0]
    tokens = TokenService({"k1": KEY1}, "k1", {"user": 60}, now=lambda: now[0])
    token, expires = tokens.issue("u-1", "A", "user")
    assert expires == 1060.0 and tokens.issue("u-1", "A", "guest")[1] == 1000 + auth.GUEST_TTL
    assert tokens.issue("u-1", "A", "user", ttl=5)[1] == 1005.0
    now[0] = 1066.0
    with pytest.raises(AuthError, match="expired"):
        tokens.verify(token)
    with pytest.raises(ValueError):
        tokens.issue("u-1", "A", "admin")


def _resign(token, key, **changes):
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    for name in [k for k, v in changes.items() if v is None]:
        del claims[name]
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": "k1"})


def test_tampered_and_forged_tokens_are_refused():
    now = [2_000_000_000.0]
    tokens = TokenService({"k1": KEY1}, "k1", now=lambda: now[0])
    token, _ = tokens.issue("u-aaaa", "Ivy", "guest")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["kind"] = "user"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    cases = {
        f"{header}.{forged_payload}.{signature}": "bad token signature",
        f"{header}.{payload}.{signature[:-4]}AAAA": "bad token signature",
        _resign(token, b"3" * 32): "bad token signature",  # right kid, wrong secret
        _resign(token, KEY1, exp=None): "lacks the 'exp' claim",
        _resign(token, KEY1, iat=None): "lacks the 'iat' claim",
        _resign(token, KEY1, sub=None): "lacks the 'sub' claim",
        _resign(token, KEY1, aud="someone-else"): "not issued for starhold",
        _resign(token, KEY1, iss=None): "lacks the 'iss' claim",
        _resign(token, KEY1, iss="elsewhere"): "not issued for starhold",
        _resign(token, KEY1, kind="admin"): "bad claims",
        _resign(token, KEY1, iat=now[0] + 60): "issued in the future",
        jwt.encode({"sub": "u-x"}, None, algorithm="none", headers={"kid": "k1"}): "unsupported algorithm",
        jwt.encode({"sub": "u-x"}, KEY1, algorithm="HS256"): "unknown key id",  # no kid
        "not.a.token": "malformed",
        "": "malformed",
    }
    for bad, message in cases.items():
        with pytest.raises(AuthError, match=message):
            tokens.verify(bad)
    assert tokens.verify(token).kind == "guest"  # the original is still fine


def test_key_rotation():
    now = [2_000_000_000.0]
    tokens = TokenService({"k1": KEY1}, "k1", now=lambda: now[0])
    old, _ = tokens.issue("u-1", "Old", "user")
    assert jwt.get_unverified_header(old)["kid"] == "k1"

    tokens.add_key("k2", KEY2, activate=True)
    new, _ = tokens.issue("u-2", "New", "user")
    assert tokens.active == "k2" and jwt.get_unverified_header(new)["kid"] == "k2"
    assert jwt.decode(new, KEY2, algorithms=["HS256"], audience="starhold",
                      options={"verify_iat": False})["sub"] == "u-2"  # signed with k2
    assert tokens.verify(old).player == "u-1" and tokens.verify(new).player == "u-2"

    with pytest.raises(ValueError):
        tokens.remove_key("k2")  # the active key
    tokens.remove_key("k1")
    assert tokens.kids == ["k2"]
    with pytest.raises(AuthError, match="unknown key id"):
        tokens.verify(old)
    assert tokens.verify(new).player == "u-2"

    # a gateway that only knows the old key does not accept the new tokens
    with pytest.raises(AuthError, match="unknown key id"):
        TokenService({"k1": KEY1}, "k1", now=lambda: now[0]).verify(new)


def test_keys_must_be_long_enough_and_named_sanely():
    with pytest.raises(ValueError, match="32 bytes"):
        TokenService({"k1": b"short"}, "k1")
    with pytest.raises(ValueError, match="key id"):
        TokenService({"k:1": KEY1}, "k:1")
    with pytest.raises(ValueError, match="unknown key id"):
        TokenService({"k1": KEY1}, "k2")


def test_from_config_with_a_spec(tmp_path):
    spec = f"new:{b64(KEY2)}, old:{b64(KEY1).rstrip('=')}"  # spaces and missing padding tolerated
    tokens = TokenService.from_config(spec, tmp_path)
    assert tokens.active == "new" and sorted(tokens.kids) == ["new", "old"]
    old_gateway = TokenService({"old": KEY1}, "old")
    token, _ = old_gateway.issue("u-1", "A", "user")
    assert tokens.verify(token).player == "u-1"
    assert jwt.get_unverified_header(tokens.issue("u-1", "A", "user")[0])["kid"] == "new"
    assert not (tmp_path / "auth").exists()  # no key file when keys are given
    # url-safe base64 works too
    assert parse_keys_spec("u:" + base64.urlsafe_b64encode(b"\xfb" * 32).decode()) == ({"u": b"\xfb" * 32}, "u")

    for bad, message in [("", "no key"), (" , ", "no key"), ("k1", "kid:base64"), (f"k1:{b64(b'x' * 16)}", "16 bytes"),
                         ("k1:@@@@", "not base64"), (f"k1:{b64(KEY1)},k1:{b64(KEY2)}", "twice")]:
        with pytest.raises(ValueError, match=message) as info:
            parse_keys_spec(bad)
        assert b64(KEY1) not in str(info.value)


def test_from_config_shares_one_generated_key_per_data_dir(tmp_path):
    first = TokenService.from_config(None, tmp_path)
    second = TokenService.from_config("", tmp_path)
    path = tmp_path / "auth" / "jwt-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.kids == second.kids == [first.active]
    token, _ = first.issue("u-1", "A", "user")
    assert second.verify(token).player == "u-1"
    doc = json.loads(path.read_text())
    assert len(base64.b64decode(doc["keys"][first.active])) == 32
    assert [p.name for p in path.parent.iterdir()] == ["jwt-keys.json"]  # no temporary files left
    # another data dir, another key
    with pytest.raises(AuthError, match="unknown key id"):
        TokenService.from_config(None, tmp_path / "other").verify(token)


def test_processes_starting_together_end_up_with_one_key(tmp_path):
    path = tmp_path / "auth" / "jwt-keys.json"
    barrier = threading.Barrier(8)
    results = []

    def start():
        barrier.wait()
        results.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert sorted(p.name for p in path.parent.iterdir()) == ["jwt-keys.json"]


def test_a_corrupt_key_file_is_an_error(tmp_path):
    path = tmp_path / "auth" / "jwt-keys.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid key file"):
        TokenService.from_config(None, tmp_path)


def test_token_from_request():
    def req(url="/ws", **headers):
        return make_mocked_request("GET", url, headers=headers)

    assert token_from_request(req(Authorization="Bearer abc")) == "abc"
    assert token_from_request(req(Authorization="bearer  abc ")) == "abc"
    assert token_from_request(req("/ws?token=q", Authorization="Bearer h")) == "h"  # the header wins
    assert token_from_request(req("/ws?token=q", Authorization="Basic dXNlcg==")) == "q"
    assert token_from_request(req("/ws?token=q")) == "q"
    assert token_from_request(req("/ws?token=")) is None
    assert token_from_request(req("/ws", Authorization="Bearer ")) is None
    assert token_from_request(req()) is None


async def test_hashes_are_scrypt_with_their_parameters_stored(api):
    await api.post("/api/auth/register", {"username": "Jane", "password": "pässwörd-ﬁ"})  # ﬁ ligature: NFKC -> fi
    (_, _, salt, n, r, p, digest, created), = await account_rows(api.directory, "jane")
    assert (n, r, p) == (2**14, 8, 1) and len(salt) == 16 and len(digest) == 32
    assert created == api.clock.now()
    assert b"ssw" not in digest and "pässwörd" not in repr(await account_rows(api.directory, "jane"))
    expected = await asyncio.to_thread(hashlib.scrypt, "pässwörd-fi".encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    assert digest == expected
    # the normalised form logs in too; salts differ between accounts with one password
    assert (await api.post("/api/auth/login", {"username": "jane", "password": "pässwörd-fi"}))[0] == 200
    await api.post("/api/auth/register", {"username": "jane2", "password": "pässwörd-ﬁ"})
    (_, _, salt2, *_, digest2, _), = await account_rows(api.directory, "jane2")
    assert salt2 != salt and digest2 != digest


async def test_login_upgrades_hashes_made_with_lower_parameters(api, monkeypatch):
    monkeypatch.setattr(AccountsRoom, "SCRYPT_N", 2**10)
    await api.post("/api/auth/register", {"username": "kim", "password": "old params"})
    (*_, salt, n, _, _, digest, _), = await account_rows(api.directory, "kim")
    assert n == 2**10
    monkeypatch.setattr(AccountsRoom, "SCRYPT_N", 2**14)
    assert (await api.post("/api/auth/login", {"username": "kim", "password": "wrong params"}))[0] == 401
    assert (await account_rows(api.directory, "kim"))[0][3] == 2**10  # no upgrade without the password
    status, login = await api.post("/api/auth/login", {"username": "kim", "password": "old params"})
    assert status == 200
    (*_, salt2, n2, r2, p2, digest2, _), = await account_rows(api.directory, "kim")
    assert (n2, r2, p2) == (2**14, 8, 1) and salt2 != salt and digest2 != digest
    assert (await api.post("/api/auth/login", {"username": "kim", "password": "old params"}))[1]["player"] == login["player"]


async def test_accounts_survive_hibernation_and_restart(api, tmp_path):
    _, reg = await api.post("/api/auth/register", {"username": "leo", "password": "sleepy-password"})
    assert await api.directory.is_active("accounts", "accounts")
    await api.clock.advance(11)  # idle timeout 10 s: the room hibernates (snapshot, evicted)
    assert not await api.directory.is_active("accounts", "accounts")
    # the gateway's cached handle is now stale: the route resolves the room again
    status, login = await api.post("/api/auth/login", {"username": "leo", "password": "sleepy-password"})
    assert status == 200 and login["player"] == reg["player"]
    assert (await api.post("/api/auth/register", {"username": "LEO", "password": "another-one"}))[0] == 409
    handle = await api.directory.get("accounts", "accounts")
    assert await handle.hibernate()

    # a new process on the same data dir
    await api.directory.close()
    again = InProcessDirectory(api.directory.data_dir, clock=api.clock)
    try:
        handle = await again.get("accounts", "accounts", {})
        response = await handle.request(HttpRequest("POST", "login", {}, b'{"username": "Leo", "password": "sleepy-password"}'))
        assert response.status == 200 and response.body["player"] == reg["player"]
    finally:
        await again.close()


async def test_the_room_answers_only_post_register_and_login(room_directory):
    assert room_class("accounts") is AccountsRoom
    handle = await room_directory.get("accounts", "accounts", {})
    assert (await handle.request(HttpRequest("GET", "login"))).status == 405
    assert (await handle.request(HttpRequest("POST", "users"))).status == 404
    response = await handle.request(HttpRequest("POST", "register", {}, b'{"username": "mia", "password": "12345678"}'))
    assert response.status == 201 and response.body["username"] == "mia"
    json.dumps(response.body)  # plain JSON: it crosses process boundaries on Ray


async def test_logins_do_not_block_the_event_loop(api):
    """Several logins at once: the KDF runs in threads (the no_blocking fixture watches the
    loop), and the room serialises them; all succeed."""
    await api.post("/api/auth/register", {"username": "nia", "password": "in parallel"})
    results = await asyncio.gather(*[api.post("/api/auth/login", {"username": "nia", "password": "in parallel"})
                                     for _ in range(6)])
    assert [status for status, _ in results] == [200] * 6


async def test_failed_logins_are_throttled_with_429_and_retry_after(api, monkeypatch):
    """The audit's 30 wrong passwords in a row: 5 get 401, then the account is locked out
    (429, Retry-After, no hash spent) for 1 s, 2 s, 4 s...; the right password after the
    lockout logs in and resets the count."""
    await api.post("/api/auth/register", {"username": "Grace", "password": "right password"})
    hashes = count_hashes(monkeypatch)
    wrong = {"username": "grace", "password": "wrong password"}
    answers = [await api.call("POST", "/api/auth/login", wrong) for _ in range(30)]
    assert [a[0] for a in answers] == [401] * 5 + [429] * 25
    assert len(hashes) == 5  # a locked-out attempt costs no scrypt
    status, body, headers = answers[5]
    assert headers["Retry-After"] == "1" and body == {"error": "too many failed logins: retry in 1 s"}
    await api.clock.advance(1.0)
    assert (await api.post("/api/auth/login", {**wrong, "username": "GRACE"}))[0] == 401  # one more try
    status, _, headers = await api.call("POST", "/api/auth/login", wrong)
    assert status == 429 and headers["Retry-After"] == "2"  # doubled
    await api.clock.advance(2.0)
    status, answer = await api.post("/api/auth/login", {"username": "grace", "password": "right password"})
    assert status == 200 and answer["kind"] == "user"
    assert [(await api.post("/api/auth/login", wrong))[0] for _ in range(6)] == [401] * 5 + [429]


class Ticks:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_an_attacker_cannot_lock_the_owner_out_from_a_known_address():
    clock = Ticks()
    throttle = LoginThrottle(account_free=5, address_free=20, now=clock)
    throttle.succeeded("ada", "10.0.0.1")  # the owner logged in from home before
    for _ in range(40):  # an attacker hammers the account from another address
        throttle.failed("ada", "10.6.6.6")
    assert throttle.retry_after("ada", "10.6.6.6") == LOCKOUT_MAX  # capped at 15 min
    assert throttle.retry_after("ada", "10.9.9.9") > 0  # a new address waits like the attacker
    assert throttle.retry_after("ada", "10.0.0.1") == 0  # the owner at home is not locked out
    for _ in range(5):  # ... but has a counter of its own
        throttle.failed("ada", "10.0.0.1")
    assert throttle.retry_after("ada", "10.0.0.1") == 1.0
    clock.t += LOCKOUT_MAX  # 15 min without failures: forgotten
    assert throttle.retry_after("ada", "10.6.6.6") == throttle.retry_after("ada", "10.9.9.9") == 0


def test_one_address_spraying_many_accounts_is_throttled():
    clock = Ticks()
    throttle = LoginThrottle(account_free=5, address_free=20, now=clock)
    for i in range(20):  # one wrong password on each of 20 accounts
        assert throttle.retry_after(f"user{i}", "10.6.6.6") == 0
        throttle.failed(f"user{i}", "10.6.6.6")
    assert throttle.retry_after("user99", "10.6.6.6") == 1.0
    assert throttle.retry_after("user99", "10.0.0.2") == 0  # other addresses are unaffected
    throttle.succeeded("user0", "10.6.6.6")  # owning one account buys no more guesses
    assert throttle.retry_after("user99", "10.6.6.6") == 1.0
    off = LoginThrottle(account_free=0, address_free=0, now=clock)  # 0 disables both counters
    for _ in range(100):
        off.failed("ada", "10.6.6.6")
    assert off.retry_after("ada", "10.6.6.6") == 0

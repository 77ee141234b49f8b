// Run with `npm test`: accounts (validation, error texts, submit), combat effects, the
// new protocol constants, following the ship in net.js (4110/4111: no reconnection) and
// the ship lookup.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accountErrorText, checkCredentials, submitAccount } from "../src/accounts.js";
import { GuestAuth } from "../src/auth.js";
import { boomLook, Effects, SHOT_SECONDS } from "../src/effects.js";
import * as gp from "../src/gameProtocol.js";
import { locateShip } from "../src/shipLocation.js";

test("gameProtocol: names and values from the spec", () => {
  assert.deepEqual(
    [gp.JUMP, gp.ROUTE, gp.SAY, gp.TELL, gp.CHAT, gp.PRESENCE, gp.ELSEWHERE],
    ["jump", "route", "say", "tell", "chat", "presence", "elsewhere"],
  );
  assert.deepEqual(
    [gp.ERR_NO_LANE, gp.ERR_SHIP_BUSY, gp.ERR_NO_ROUTE, gp.ERR_ELSEWHERE, gp.ERR_UNKNOWN_PLAYER],
    [17, 18, 19, 20, 21],
  );
  assert.equal(gp.CLOSE_ELSEWHERE, 4110);
  assert.equal(gp.CLOSE_JUMPED, 4111);
});

test("checkCredentials mirrors the server's rules", () => {
  assert.equal(checkCredentials({ username: "Ada", password: "correct horse" }), null);
  assert.match(checkCredentials({ username: "ab", password: "12345678" }), /Username/);
  assert.match(checkCredentials({ username: "a b c", password: "12345678" }), /Username/);
  assert.match(checkCredentials({ username: "ada", password: "short" }), /Password/);
  assert.match(checkCredentials({ username: "ada", password: "x".repeat(257) }), /Password/);
  assert.match(checkCredentials({ username: "ada", password: "12345678", name: "n".repeat(33) }, { register: true }), /Display name/);
});

test("accountErrorText: wrong password, taken, throttled, unavailable", () => {
  assert.match(accountErrorText(401, { error: "invalid username or password" }), /Wrong username or password/);
  assert.match(accountErrorText(409, { error: "username taken" }), /taken/);
  assert.match(accountErrorText(429, { error: "too many failed logins: retry in 4 s" }, "4"), /try again in 4 s/);
  assert.match(accountErrorText(429, { error: "too many failed logins: retry in 4 s" }), /retry in 4 s/);
  assert.match(accountErrorText(503, { error: "accounts unavailable; retry" }), /unavailable/);
  assert.match(accountErrorText(400, { error: "password: too short" }), /password: too short/);
  assert.match(accountErrorText(0, { error: "Failed to fetch" }), /Network error: Failed to fetch/);
  assert.match(accountErrorText(500, null), /500/);
});

function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init = {}) => {
    calls.push({ url, init });
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return {
      status: a.status,
      ok: a.status >= 200 && a.status < 300,
      headers: { get: (k) => (a.headers || {})[k] ?? null },
      json: async () => a.body,
    };
  };
  fn.calls = calls;
  return fn;
}

test("submitAccount: register and login answers", async () => {
  const token = { token: "t", expires: 99, player: "u-0123456789abcdef", name: "Ada", kind: "user" };
  let fetch = fakeFetch([{ status: 201, body: token }]);
  let r = await submitAccount("register", { username: "Ada", password: "12345678", name: " Ada L " }, { fetch });
  assert.deepEqual(r.session, token);
  assert.equal(fetch.calls[0].url, "/api/auth/register");
  assert.deepEqual(JSON.parse(fetch.calls[0].init.body), { username: "Ada", password: "12345678", name: "Ada L" });

  fetch = fakeFetch([{ status: 429, body: { error: "too many failed logins: retry in 8 s" }, headers: { "Retry-After": "8" } }]);
  r = await submitAccount("login", { username: "Ada", password: "12345678" }, { fetch });
  assert.equal(r.status, 429);
  assert.match(r.error, /8 s/);
  assert.deepEqual(JSON.parse(fetch.calls[0].init.body), { username: "Ada", password: "12345678" });

  fetch = fakeFetch([new Error("offline")]);
  r = await submitAccount("login", { username: "Ada", password: "12345678" }, { fetch });
  assert.match(r.error, /offline/);

  fetch = fakeFetch([]);
  r = await submitAccount("login", { username: "A", password: "12345678" }, { fetch });
  assert.match(r.error, /Username/);
  assert.equal(fetch.calls.length, 0); // refused before asking
});

test("GuestAuth.adopt and logout: an account token is used, logging out goes back to a guest", async () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const fetch = fakeFetch([{ status: 200, body: { token: "guest", expires: 5000, player: "g-1", name: "P", kind: "guest" } }]);
  const auth = new GuestAuth({ fetch, storage, now: () => 1000 });
  auth.adopt({ token: "acct", expires: 9000, player: "u-1", name: "Ada", kind: "user" });
  assert.equal(await auth.token(), "acct");
  assert.equal(JSON.parse(store.get("starhold.auth")).kind, "user");
  auth.logout();
  assert.equal(store.has("starhold.auth"), false);
  assert.equal(await auth.token(), "guest");
  assert.equal(fetch.calls.length, 1);
});

test("Effects: shots last 0.2 s, explosions grow and fade, unknown kinds ignored", () => {
  const fx = new Effects();
  fx.addEvents([[0, 17, 1000001, 21], [1, 1000001, -1, 0], [9, 1, 2, 3], "junk"], 10);
  assert.equal(fx.shots, 1);
  assert.equal(fx.explosions, 1);
  assert.equal(fx.active(10).length, 2);
  assert.deepEqual(fx.active(10 + SHOT_SECONDS / 2).map((f) => f.kind), ["shot", "boom"]);
  assert.deepEqual(fx.active(10 + SHOT_SECONDS + 0.01).map((f) => f.kind), ["boom"]);
  const boom = fx.list[0];
  const early = boomLook(boom, 10.1);
  const late = boomLook(boom, 11);
  assert.ok(late.radius > early.radius && late.alpha < early.alpha);
  assert.deepEqual(boomLook(boom, 10), { radius: 0, alpha: 1 });
  assert.equal(fx.active(100).length, 0);
});

test("locateShip: /api/auth/me then /api/player/{id}; 404 is a new pilot", async () => {
  let fetch = fakeFetch([
    { status: 200, body: { player: "u-00ff", name: "Ada", kind: "user" } },
    { status: 200, body: { player: "u-00ff", system: "gj-551", transit: null, hp: 150, max_hp: 200 } },
  ]);
  const info = await locateShip("tok", { fetch });
  assert.deepEqual(info, { player: "u-00ff", system: "gj-551", transit: null, hp: 150, maxHp: 200 });
  assert.equal(fetch.calls[1].url, "/api/player/u-00ff");
  assert.equal(fetch.calls[1].init.headers.Authorization, "Bearer tok");

  fetch = fakeFetch([{ status: 200, body: { player: "g-1" } }, { status: 404, body: { error: "no such player" } }]);
  assert.equal(await locateShip("tok", { fetch }), null);
  assert.equal(await locateShip(null, { fetch }), null);

  fetch = fakeFetch([{ status: 401, body: { error: "token expired" } }]);
  await assert.rejects(locateShip("tok", { fetch }), /token expired/);
});

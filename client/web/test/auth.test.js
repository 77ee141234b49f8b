// Run with `npm test`: guest login, token storage and renewal.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AUTH_STORAGE_KEY, AuthError, GuestAuth, isUsable, parseTokenAnswer } from "../src/auth.js";

class MemoryStorage {
  constructor() {
    this.map = new Map();
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}

function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, body: JSON.parse(init.body), method: init.method });
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return { status: a.status, statusText: "", json: async () => a.body };
  };
  fn.calls = calls;
  return fn;
}

const answer = (n, expires = 1000 + 43200) => ({
  status: 200,
  body: { token: `t${n}`, expires, player: `g-${n}`, name: "Ada", kind: "guest" },
});

test("parseTokenAnswer and isUsable", () => {
  assert.equal(parseTokenAnswer({ token: "", expires: 1 }), null);
  assert.equal(parseTokenAnswer(null), null);
  assert.deepEqual(parseTokenAnswer({ token: "x", expires: 5 }), { token: "x", expires: 5, player: "", name: "", kind: "guest" });
  assert.equal(isUsable({ token: "x", expires: 1000 }, 900, 60), true);
  assert.equal(isUsable({ token: "x", expires: 1000 }, 950, 60), false);
  assert.equal(isUsable(null, 0), false);
});

test("logs in as guest once, stores the answer and reuses it", async () => {
  const storage = new MemoryStorage();
  const fetch = fakeFetch([answer(1)]);
  const auth = new GuestAuth({ getName: () => " Ada ", fetch, storage, now: () => 1000 });
  assert.equal(await auth.token(), "t1");
  assert.equal(await auth.token(), "t1");
  assert.equal(fetch.calls.length, 1);
  assert.deepEqual(fetch.calls[0], { url: "/api/auth/guest", body: { name: "Ada" }, method: "POST" });
  assert.equal(JSON.parse(storage.getItem(AUTH_STORAGE_KEY)).player, "g-1");
  // a new page (new GuestAuth) reads it back
  const again = new GuestAuth({ fetch: fakeFetch([]), storage, now: () => 2000 });
  assert.equal(await again.token(), "t1");
});

test("concurrent callers share one login", async () => {
  const fetch = fakeFetch([answer(1)]);
  const auth = new GuestAuth({ fetch, storage: null, now: () => 1000 });
  assert.deepEqual(await Promise.all([auth.token(), auth.token()]), ["t1", "t1"]);
  assert.equal(fetch.calls.length, 1);
});

test("an expired (or nearly expired) token is renewed; force and invalidate renew too", async () => {
  let now = 1000;
  const fetch = fakeFetch([answer(1, 2000), answer(2, 90000), answer(3, 90000), answer(4, 90000)]);
  const storage = new MemoryStorage();
  const auth = new GuestAuth({ fetch, storage, now: () => now });
  assert.equal(await auth.token(), "t1");
  now = 1950; // within the margin
  assert.equal(await auth.token(), "t2");
  assert.equal(await auth.token({ force: true }), "t3");
  auth.invalidate("t3");
  assert.equal(storage.getItem(AUTH_STORAGE_KEY), null);
  assert.equal(await auth.token(), "t4");
  auth.invalidate("t1"); // an old token: the current one stays
  assert.equal(await auth.token(), "t4");
  assert.equal(auth.logins, 4);
});

test("a refused name falls back to a plain one; errors are AuthErrors", async () => {
  const fetch = fakeFetch([{ status: 400, body: { error: "invalid name" } }, answer(1)]);
  const auth = new GuestAuth({ getName: () => "bad\u0000name", fetch, storage: null, now: () => 1000 });
  assert.equal(await auth.token(), "t1");
  assert.equal(fetch.calls[1].body.name, "Pilot");

  const down = new GuestAuth({ fetch: fakeFetch([{ status: 503, body: { error: "accounts unavailable" } }]), storage: null, now: () => 1 });
  await assert.rejects(down.token(), (e) => e instanceof AuthError && e.status === 503 && /accounts unavailable/.test(e.message));
  const offline = new GuestAuth({ fetch: fakeFetch([new TypeError("Failed to fetch")]), storage: null, now: () => 1 });
  await assert.rejects(offline.token(), /Failed to fetch/);
  const junk = new GuestAuth({ fetch: fakeFetch([{ status: 200, body: { nope: 1 } }]), storage: null, now: () => 1 });
  await assert.rejects(junk.token(), /malformed/);
});

// Run with `npm test`: partysocket-like reconnection delays and the client token bucket.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff, BACKOFF, backoffDelay, randomBackoffBase } from "../src/backoff.js";
import { CLIENT_BURST, CLIENT_RATE, TokenBucket } from "../src/rateLimit.js";
import { INPUT_BURST, INPUT_RATE } from "../src/protocol.generated.js";

test("backoff grows by 1.3 and is capped at 10 s", () => {
  assert.equal(backoffDelay(0, 2000), 2000);
  assert.equal(backoffDelay(1, 2000), 2600);
  assert.equal(backoffDelay(20, 5000), 10000);
});

test("the first delay is uniform in [1 s, 5 s]", () => {
  assert.equal(randomBackoffBase(() => 0), 1000);
  assert.equal(randomBackoffBase(() => 0.999999) < 5000, true);
  assert.equal(randomBackoffBase(() => 0.5), 3000);
  for (let i = 0; i < 100; i++) {
    const d = new Backoff().next();
    assert.ok(d >= BACKOFF.minDelay && d <= BACKOFF.maxFirstDelay, String(d));
  }
});

test("Backoff: one random base per outage, reset after success", () => {
  let r = 0.25;
  const b = new Backoff({ random: () => r });
  assert.deepEqual([b.next(), b.next(), b.next()], [2000, 2600, 3380]);
  for (let i = 0; i < 20; i++) b.next();
  assert.equal(b.next(), 10000);
  b.reset();
  r = 0;
  assert.equal(b.next(), 1000);
});

test("client token bucket stays below the server's limits", () => {
  assert.ok(CLIENT_RATE < INPUT_RATE && CLIENT_BURST < INPUT_BURST);
  const b = new TokenBucket({ rate: 10, burst: 3, now: 0 });
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
  assert.ok(Math.abs(b.wait(0) - 0.1) < 1e-9);
  assert.equal(b.take(0.1), true);
  assert.equal(b.take(0.1), false);
  assert.equal(b.take(0.1, true), true); // forced: goes into debt
  assert.ok(b.wait(0.1) > 0.1);
  assert.equal(b.take(10), true);
  assert.equal(b.tokens, 2); // refilled to the burst
});

// Run with `npm test`: the offline command queue and pending (unacknowledged) commands.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CommandQueue } from "../src/commandQueue.js";

function sendAll(q, firstSeq) {
  let seq = firstSeq;
  while (q.peek()) q.sent(seq++);
  return seq;
}

test("bounded outbox drops the oldest", () => {
  const q = new CommandQueue({ limit: 3 });
  for (let i = 0; i < 5; i++) q.push("move_to", { x: i, y: 0 });
  assert.equal(q.size, 3);
  assert.equal(q.dropped, 2);
  assert.deepEqual(q.outbox.map((c) => c.payload.x), [2, 3, 4]);
});

test("acks drop pending commands up to the ack and remember the latest acknowledged", () => {
  const q = new CommandQueue();
  for (let i = 0; i < 4; i++) q.push("move_to", { x: i, y: 0 });
  sendAll(q, 5);
  assert.deepEqual(q.pending.map((c) => c.seq), [5, 6, 7, 8]);
  assert.equal(q.ack(6), 2);
  assert.deepEqual(q.pending.map((c) => c.seq), [7, 8]);
  assert.equal(q.lastAcked.get("move_to").payload.x, 1);
  assert.equal(q.ack(6), 0);
  assert.equal(q.ack(100), 2);
  assert.equal(q.lastAcked.get("move_to").payload.x, 3);
});

test("rejoined: unapplied commands go back first, in order, before the offline ones", () => {
  const q = new CommandQueue();
  q.push("move_to", { x: 1, y: 0 });
  q.push("move_to", { x: 2, y: 0 });
  q.push("move_to", { x: 3, y: 0 });
  sendAll(q, 2); // seqs 2, 3, 4
  q.push("move_to", { x: 9, y: 9 }); // issued while offline
  assert.equal(q.rejoined({ ack: 2 }), 2);
  assert.deepEqual(q.outbox.map((c) => c.payload.x), [2, 3, 9]);
  assert.equal(q.outbox[0].seq, undefined);
  assert.equal(q.pending.length, 0);
  assert.equal(q.lastAcked.get("move_to").payload.x, 1);
});

test("rejoined with everything applied: only the offline commands remain; bounded", () => {
  const q = new CommandQueue({ limit: 2 });
  q.push("move_to", { x: 1, y: 0 });
  q.push("move_to", { x: 2, y: 0 });
  sendAll(q, 2);
  q.push("move_to", { x: 9, y: 9 });
  assert.equal(q.rejoined({ ack: 3 }), 0);
  assert.deepEqual(q.outbox.map((c) => c.payload.x), [9]);
  assert.equal(q.lastAcked.get("move_to").payload.x, 2);
  sendAll(q, 4);
  q.push("move_to", { x: 10, y: 0 });
  q.push("move_to", { x: 11, y: 0 });
  assert.equal(q.rejoined({ ack: 3 }), 1); // 3 commands for 2 places: the oldest goes
  assert.deepEqual(q.outbox.map((c) => c.payload.x), [10, 11]);
});

test("pendingOf filters by type", () => {
  const q = new CommandQueue();
  q.push("move_to", { x: 1, y: 0 });
  q.push("other", {});
  sendAll(q, 1);
  assert.deepEqual(q.pendingOf("move_to").map((c) => c.seq), [1]);
  q.clear();
  assert.equal(q.pending.length + q.size, 0);
});

test("retry puts a dropped command back at the front of the outbox", () => {
  const q = new CommandQueue();
  q.push("move_to", { x: 1, y: 0 });
  q.push("move_to", { x: 2, y: 0 });
  sendAll(q, 1);
  q.push("move_to", { x: 3, y: 0 });
  assert.equal(q.retry(2), true);
  assert.equal(q.retry(99), false);
  assert.deepEqual(q.pending.map((c) => c.seq), [1]);
  assert.deepEqual(q.outbox.map((c) => c.payload.x), [2, 3]);
});

// Run with `npm test` (node:test, no dependencies): SystemConnection against a fake socket.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { decode, encode } from "@msgpack/msgpack";

import { BACKOFF, backoffDelay, SystemConnection } from "../src/net.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(bytes) {
    this.sent.push(decode(bytes));
  }
  close() {
    this.readyState = 3;
  }
  // test helpers
  open() {
    this.readyState = 1;
    this.onopen();
  }
  receive(msg) {
    const b = encode(msg);
    this.onmessage({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }
  serverClose(code) {
    this.readyState = 3;
    this.onclose({ code, reason: "" });
  }
}

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
}

function connect(storage = new MemoryStorage()) {
  const statuses = [];
  const conn = new SystemConnection("sol", {
    name: "Ada",
    url: "ws://test/api/systems/sol/ws",
    storage,
    WebSocket: FakeSocket,
    onStatus: (s) => statuses.push(s.state),
  });
  conn.start();
  return { conn, statuses, storage, ws: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

const welcome = (seq, player = "key-1") => ["welcome", seq, { ship: 17, player, system: { id: "sol" }, tick: 1, time: 0.1, ships: [] }];

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

test("joins first, queues commands until welcome, then flushes them in order", () => {
  const { conn, ws, storage } = connect();
  assert.equal(conn.moveTo(1, 2), null);
  ws().open();
  assert.deepEqual(ws().sent, [["join", 1, { name: "Ada" }]]);
  assert.equal(conn.moveTo(3, 4), null); // still waiting for welcome
  ws().receive(welcome(1));
  assert.deepEqual(ws().sent.slice(1), [
    ["move_to", 2, { x: 1, y: 2 }],
    ["move_to", 3, { x: 3, y: 4 }],
  ]);
  assert.equal(conn.moveTo(5, 6), 4);
  assert.equal(storage.getItem("starhold.player.sol"), "key-1");
  assert.equal(conn.status.state, "joined");
  conn.stop();
});

test("rejoins with the stored player key", () => {
  const storage = new MemoryStorage();
  storage.setItem("starhold.player.sol", "abc_DEF-1");
  const { conn, ws } = connect(storage);
  ws().open();
  assert.deepEqual(ws().sent[0][2], { player: "abc_DEF-1", name: "Ada" });
  conn.stop();
});

test("reconnects with backoff after 4503 and keeps seq increasing", () => {
  const { conn, ws, statuses } = connect();
  ws().open();
  ws().receive(welcome(1));
  ws().serverClose(4503);
  assert.equal(conn.status.state, "reconnecting");
  const delay = conn.status.retryAt - Date.now();
  assert.ok(delay >= BACKOFF.minDelay && delay <= BACKOFF.maxFirstDelay, `delay ${delay}`);
  conn.moveTo(7, 8);
  mock.timers.tick(delay);
  assert.equal(FakeSocket.all.length, 2);
  ws().open();
  assert.deepEqual(ws().sent[0], ["join", 2, { player: "key-1", name: "Ada" }]);
  ws().receive(welcome(2));
  assert.deepEqual(ws().sent[1], ["move_to", 3, { x: 7, y: 8 }]);
  assert.deepEqual(statuses.slice(0, 6), ["connecting", "open", "joined", "reconnecting", "connecting", "open"]);
  conn.stop();
});

test("backoff grows by 1.3 and is capped at 10 s", () => {
  assert.equal(backoffDelay(0, 2000), 2000);
  assert.equal(backoffDelay(1, 2000), 2600);
  assert.equal(backoffDelay(20, 5000), 10000);
});

for (const code of [4004, 4009, 4000, 1009]) {
  test(`does not reconnect after close ${code}`, () => {
    const { conn, ws } = connect();
    ws().open();
    ws().receive(welcome(1));
    ws().serverClose(code);
    assert.equal(conn.status.state, "closed");
    mock.timers.tick(60000);
    assert.equal(FakeSocket.all.length, 1);
  });
}

test("a silent socket is dropped and reconnected", () => {
  const { conn, ws } = connect();
  ws().open();
  ws().receive(welcome(1));
  mock.timers.tick(5001);
  assert.equal(conn.status.state, "reconnecting");
  conn.stop();
});

// Run with `npm test` (node:test, no dependencies): SystemConnection against a fake socket.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { decode, encode } from "@msgpack/msgpack";

import {
  CLOSE_CLIENT_RECONNECT,
  IDLE_PING_MS,
  JOIN_PING_MS,
  MAX_CLOSES_KEPT,
  PONG_TIMEOUT_MS,
  QUICK_RETRY_MS,
  SystemConnection,
  withToken,
} from "../src/net.js";
import { CLIENT_BURST } from "../src/rateLimit.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }
  send(bytes) {
    this.sent.push(decode(bytes));
  }
  close(code, reason) {
    this.readyState = 3;
    this.closedWith = { code, reason };
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
  serverClose(code, reason = "") {
    this.readyState = 3;
    this.onclose({ code, reason });
  }
  types() {
    return this.sent.map((m) => m[0]);
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
  removeItem(k) {
    this.map.delete(k);
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

async function connect({ storage = new MemoryStorage(), random = () => 0.5 } = {}) {
  const statuses = [];
  const tokens = { n: 0, forced: 0, invalidated: [] };
  const conn = new SystemConnection("sol", {
    name: "Ada",
    url: "ws://test/api/systems/sol/ws",
    storage,
    random,
    WebSocket: FakeSocket,
    getToken: async ({ force }) => {
      if (force) tokens.forced += 1;
      tokens.n += 1;
      return `tok${tokens.n}`;
    },
    invalidateToken: (t) => tokens.invalidated.push(t),
    onStatus: (s) => statuses.push(s.state),
  });
  conn.start();
  await flush();
  return { conn, statuses, storage, tokens, ws: () => FakeSocket.all[FakeSocket.all.length - 1] };
}

const welcome = (seq, { ack = seq, resumed = false, seat = "seat-1", ship = 17 } = {}) => [
  "welcome",
  seq,
  { ship, player: "g-1", name: "Ada", seat, seat_hold: 30, resumed, ack, tick: 10, time: 1, system: { id: "sol" } },
];
const keyframe = (tick, ack, rows = [[17, 0, 0, 1]]) => [
  "frame",
  tick,
  { tick, ack, base: null, time: tick / 10, ships: rows, removed: [], names: rows.map((r) => [r[0], `s${r[0]}`]) },
];
const delta = (tick, base, ack, rows = []) => ["frame", tick, { tick, ack, base, time: tick / 10, ships: rows, removed: [], names: [] }];

beforeEach(() => {
  FakeSocket.all = [];
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
});
afterEach(() => mock.timers.reset());

test("opens the socket with the token, joins first, queues commands until welcome, flushes them in order", async () => {
  const { conn, ws } = await connect();
  assert.equal(ws().url, "ws://test/api/systems/sol/ws?token=tok1");
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
  assert.equal(conn.status.state, "joined");
  assert.equal(conn.status.connection, "connected");
  assert.equal(conn.seat, "seat-1");
  assert.equal(conn.queue.pending.length, 3);
  ws().receive(keyframe(10, 3));
  assert.deepEqual(conn.queue.pending.map((c) => c.seq), [4]);
  conn.stop();
  assert.equal(FakeSocket.all[0].closedWith.code, 1000);
});

test("withToken appends the token, URL-encoded", () => {
  assert.equal(withToken("ws://h/ws", "a.b+c"), "ws://h/ws?token=a.b%2Bc");
  assert.equal(withToken("ws://h/ws?x=1", "t"), "ws://h/ws?x=1&token=t");
  assert.equal(withToken("ws://h/ws", null), "ws://h/ws");
});

test("after 4503 (the room is back) reconnects within QUICK_RETRY_MS, resumes the seat and resends unacked commands first", async () => {
  const { conn, ws, statuses } = await connect();
  ws().open();
  ws().receive(welcome(1));
  ws().receive(keyframe(10, 1));
  conn.moveTo(10, 10); // seq 2
  conn.moveTo(20, 20); // seq 3
  ws().receive(delta(11, 10, 2)); // 2 acked, 3 pending
  ws().serverClose(4503, "room unavailable");
  assert.equal(conn.status.state, "reconnecting");
  assert.equal(conn.status.connection, "reconnecting");
  const delay = conn.status.retryAt - Date.now();
  assert.equal(delay, QUICK_RETRY_MS / 2, `delay ${delay}`); // random() = 0.5
  assert.equal(conn.moveTo(30, 30), null); // offline: queued
  mock.timers.tick(delay - 1);
  await flush();
  assert.equal(FakeSocket.all.length, 1);
  mock.timers.tick(1);
  await flush();
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(ws().url, "ws://test/api/systems/sol/ws?token=tok2");
  ws().open();
  // a rejoin is numbered with the last ack seen
  assert.deepEqual(ws().sent[0], ["join", 2, { name: "Ada", resume: "seat-1" }]);
  ws().receive(welcome(2, { ack: 2, resumed: true }));
  // seq 3 was not applied: resent (with a new seq), then the offline command
  assert.deepEqual(ws().sent.slice(1), [
    ["move_to", 4, { x: 20, y: 20 }],
    ["move_to", 5, { x: 30, y: 30 }],
  ]);
  assert.equal(conn.reconnects, 1);
  assert.equal(conn.resumed, true);
  assert.deepEqual(statuses.slice(0, 7), ["connecting", "open", "joined", "reconnecting", "connecting", "open", "joined"]);
  conn.stop();
});

test("a fresh seat (not resumed, the hold expired) acks nothing new: unapplied commands are resent", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  conn.moveTo(10, 10); // seq 2, never acked
  ws().serverClose(1006);
  conn.moveTo(30, 30);
  mock.timers.tick(10000);
  await flush();
  ws().open();
  assert.deepEqual(ws().sent[0], ["join", 1, { name: "Ada", resume: "seat-1" }]);
  ws().receive(welcome(1, { ack: 1, resumed: false, seat: "seat-2" }));
  assert.deepEqual(ws().sent.slice(1), [
    ["move_to", 3, { x: 10, y: 10 }],
    ["move_to", 4, { x: 30, y: 30 }],
  ]);
  assert.equal(conn.seat, "seat-2");
  assert.equal(conn.resumed, false);
  conn.stop();
});

test("seq carries on above the resumed seat's ack (after a page reload)", async () => {
  const storage = new MemoryStorage();
  storage.setItem("starhold.seat.sol", "seat-old");
  const { conn, ws } = await connect({ storage });
  ws().open();
  assert.deepEqual(ws().sent[0], ["join", 1, { name: "Ada", resume: "seat-old" }]);
  ws().receive(welcome(1, { ack: 57, resumed: true, seat: "seat-old" }));
  assert.equal(conn.moveTo(1, 1), 58);
  conn.stop();
  assert.equal(storage.getItem("starhold.seat.sol"), null); // leaving releases the seat
});

test("backoff: uniform first delay, x1.3 per attempt, capped at 10 s; reset after a welcome", async () => {
  const { conn, ws } = await connect({ random: () => 0 });
  ws().open();
  ws().receive(welcome(1));
  const delays = [];
  for (let i = 0; i < 12; i++) {
    ws().serverClose(1006);
    const delay = conn.status.retryAt - Date.now();
    delays.push(delay);
    mock.timers.tick(delay);
    await flush();
  }
  assert.deepEqual(delays.slice(0, 3), [1000, 1300, 1690]);
  assert.equal(delays.at(-1), 10000);
  ws().open();
  ws().receive(welcome(1));
  ws().serverClose(1006);
  assert.equal(conn.status.retryAt - Date.now(), 1000);
  conn.stop();
});

for (const code of [4000, 4003, 4004, 4009, 4029, 1009]) {
  test(`does not reconnect after close ${code}`, async () => {
    const { conn, ws } = await connect();
    ws().open();
    ws().receive(welcome(1));
    ws().serverClose(code);
    assert.equal(conn.status.state, "closed");
    assert.equal(conn.status.connection, "offline");
    assert.equal(conn.status.code, code);
    mock.timers.tick(60000);
    await flush();
    assert.equal(FakeSocket.all.length, 1);
  });
}

for (const code of [1000, 1001, 1006, 1011, 4008, 4503]) {
  test(`reconnects after close ${code}`, async () => {
    const { conn, ws } = await connect();
    ws().open();
    ws().receive(welcome(1));
    ws().serverClose(code);
    assert.equal(conn.status.state, "reconnecting");
    mock.timers.tick(5000);
    await flush();
    assert.equal(FakeSocket.all.length, 2);
    conn.stop();
  });
}

test("4001: a new token and straight back; gives up after repeated refusals", async () => {
  const { conn, ws, tokens } = await connect();
  ws().open();
  ws().receive(["error", 1, { code: 11, message: "token expired" }]);
  ws().serverClose(4001);
  assert.deepEqual(tokens.invalidated, ["tok1"]);
  mock.timers.tick(0);
  await flush();
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(tokens.forced, 1);
  assert.equal(ws().url, "ws://test/api/systems/sol/ws?token=tok2");
  ws().open();
  ws().serverClose(4001);
  mock.timers.tick(0);
  await flush();
  assert.equal(FakeSocket.all.length, 3);
  ws().open();
  ws().serverClose(4001);
  mock.timers.tick(60000);
  await flush();
  assert.equal(FakeSocket.all.length, 3);
  assert.equal(conn.status.state, "closed");
  conn.reconnectNow(); // the Reconnect button
  await flush();
  assert.equal(FakeSocket.all.length, 4);
  conn.stop();
});

test("a failed login is retried with backoff", async () => {
  let fail = true;
  const conn = new SystemConnection("sol", {
    url: "ws://test/ws",
    storage: null,
    random: () => 0,
    WebSocket: FakeSocket,
    getToken: async () => {
      if (fail) throw new Error("503 accounts unavailable");
      return "t";
    },
  });
  conn.start();
  await flush();
  assert.equal(conn.status.state, "reconnecting");
  assert.match(conn.status.reason, /login failed/);
  fail = false;
  mock.timers.tick(1000);
  await flush();
  assert.equal(FakeSocket.all.length, 1);
  conn.stop();
});

test("stop() closes with 1000 and never reconnects", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  conn.stop();
  assert.equal(ws().closedWith.code, 1000);
  mock.timers.tick(60000);
  await flush();
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(conn.status.connection, "offline");
});

test("a delta that does not follow the state is ignored and a resync is sent once", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  const results = [];
  conn.handlers.frame = (_, r) => results.push(r);
  ws().receive(delta(11, 10, 1)); // no keyframe yet
  ws().receive(delta(12, 11, 1));
  assert.deepEqual(ws().types(), ["join", "resync"]);
  ws().receive(keyframe(12, 2, [[17, 5, 5, 3]]));
  ws().receive(delta(13, 12, 2, [[17, 6, 6, 3]]));
  ws().receive(delta(15, 14, 2)); // a gap
  assert.deepEqual(results, ["resync", "ignored", "keyframe", "delta", "resync"]);
  assert.deepEqual(ws().types(), ["join", "resync", "resync"]);
  assert.equal(conn.world.tick, 13);
  assert.equal(conn.world.ship(17).x, 6);
  conn.stop();
});

test("heartbeat: pings after a silence, drops a socket that does not answer", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  mock.timers.tick(IDLE_PING_MS);
  assert.deepEqual(ws().sent.at(-1), ["ping", 2, {}]);
  ws().receive(["pong", 2, { time: 1 }]);
  mock.timers.tick(PONG_TIMEOUT_MS + 1);
  assert.equal(conn.status.state, "joined"); // the pong re-armed the idle timer
  mock.timers.tick(IDLE_PING_MS - PONG_TIMEOUT_MS);
  mock.timers.tick(PONG_TIMEOUT_MS);
  assert.equal(conn.status.state, "reconnecting");
  assert.equal(FakeSocket.all[0].closedWith.code, CLOSE_CLIENT_RECONNECT); // not 1000: the seat stays held
  conn.stop();
});

test("a slow join (a room being started on a busy server) is not dropped while the gateway answers pings", async () => {
  const { conn, ws } = await connect();
  ws().open();
  for (let i = 0; i < 10; i += 1) {
    // a minute and more without a welcome: each ping is answered, so the socket is alive
    mock.timers.tick(JOIN_PING_MS);
    const ping = ws().sent.at(-1);
    assert.equal(ping[0], "ping");
    mock.timers.tick(PONG_TIMEOUT_MS - 1);
    ws().receive(["pong", ping[1], { time: 1 }]);
  }
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(ws().closedWith, null);
  assert.equal(conn.lastClose, null);
  ws().receive(welcome(1));
  assert.equal(conn.status.state, "joined");
  assert.equal(conn.seq, 11); // the pings took seqs 2-11; commands carry on above
  conn.stop();
});

test("a join whose socket stops answering is dropped and retried", async () => {
  const { conn, ws } = await connect();
  ws().open();
  mock.timers.tick(JOIN_PING_MS);
  assert.equal(ws().sent.at(-1)[0], "ping");
  mock.timers.tick(PONG_TIMEOUT_MS);
  assert.equal(conn.status.state, "reconnecting");
  assert.equal(FakeSocket.all[0].closedWith.code, CLOSE_CLIENT_RECONNECT);
  assert.deepEqual(conn.lastClose, { code: 1006, reason: "no answer from server" });
  conn.stop();
});

test("closes are kept in order (the latest MAX_CLOSES_KEPT): a later drop does not hide a 4001", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(["error", 0, { code: 11, message: "bad token" }]);
  ws().serverClose(4001, "bad token");
  mock.timers.tick(0);
  await flush();
  ws().open();
  ws().serverClose(1006, "");
  assert.deepEqual(
    conn.closes.map((c) => c.code),
    [4001, 1006],
  );
  for (let i = 0; i < MAX_CLOSES_KEPT + 3; i += 1) conn._lost(1006, "x");
  assert.equal(conn.closes.length, MAX_CLOSES_KEPT);
  conn.stop();
});

test("rate limit: a burst beyond the client bucket is paced, in order", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  for (let i = 0; i < 40; i++) conn.moveTo(i, 0);
  const sentNow = ws().sent.length - 1;
  assert.equal(sentNow, CLIENT_BURST - 1); // the join took a token
  assert.equal(conn.queue.size, 40 - sentNow);
  mock.timers.tick(5000);
  assert.equal(ws().sent.length - 1, 40);
  assert.deepEqual(ws().sent.slice(1).map((m) => m[2].x), [...Array(40).keys()]);
  const seqs = ws().sent.map((m) => m[1]);
  assert.deepEqual(seqs, [...Array(41).keys()].map((i) => i + 1));
  conn.stop();
});

test("the offline queue is bounded: the oldest commands are dropped", async () => {
  const { conn, ws } = await connect();
  for (let i = 0; i < 70; i++) conn.moveTo(i, 0);
  assert.equal(conn.queue.size, 64);
  assert.equal(conn.queue.dropped, 6);
  assert.equal(conn.queue.peek().payload.x, 6);
  ws().open();
  conn.stop();
});

test("a command the server dropped (room busy) is sent again a second later", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  assert.equal(conn.moveTo(5, 5), 2);
  ws().receive(["error", 2, { code: 10, message: "the room is busy; message dropped" }]);
  assert.equal(conn.queue.size, 1);
  mock.timers.tick(999);
  assert.equal(ws().sent.length, 2);
  mock.timers.tick(1);
  assert.deepEqual(ws().sent.at(-1), ["move_to", 3, { x: 5, y: 5 }]);
  ws().receive(["error", 77, { code: 4, message: "out of range" }]); // not ours to retry
  assert.equal(conn.queue.size, 0);
  conn.stop();
});

test("wake() (the browser is back online) skips the backoff wait", async () => {
  const { conn, ws } = await connect();
  ws().open();
  ws().receive(welcome(1));
  ws().serverClose(1006);
  conn.wake();
  await flush();
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(conn.status.state, "connecting");
  conn.wake(); // not waiting: nothing to do
  await flush();
  assert.equal(FakeSocket.all.length, 2);
  conn.stop();
});

test("attack goes through the command queue: queued before welcome, sent in order, acked, errors reported", async () => {
  const { conn, ws } = await connect();
  const errors = [];
  conn.handlers.error = (e, seq) => errors.push([e.code, seq]);
  assert.equal(conn.attack(1000001), null); // not joined yet: queued
  assert.equal(conn.queue.size, 1);
  ws().open();
  ws().receive(welcome(1));
  assert.deepEqual(ws().sent.slice(1), [["attack", 2, { target: 1000001 }]]);
  assert.equal(conn.moveTo(5, 6), 3);
  assert.equal(conn.attack(7), 4);
  assert.equal(conn.lastCommand.type, "attack");
  ws().receive(["error", 4, { code: 14, message: "invalid target" }]);
  assert.deepEqual(errors, [[14, 4]]);
  ws().receive(keyframe(10, 4));
  assert.equal(conn.queue.pending.length, 0);
  assert.deepEqual(conn.queue.lastAcked.get("attack").payload, { target: 7 });
  conn.stop();
});

async function connectGame(handlers = {}) {
  const storage = new MemoryStorage();
  const seen = { messages: [], moved: [], statuses: [] };
  const conn = new SystemConnection("sol", {
    name: "Ada",
    url: "ws://test/api/systems/sol/ws",
    storage,
    random: () => 0.5,
    WebSocket: FakeSocket,
    getToken: async () => "tok",
    onStatus: (s) => seen.statuses.push(s),
    onMessage: (type, seq, p) => seen.messages.push([type, seq, p]),
    onMoved: (code) => seen.moved.push(code),
    ...handlers,
  });
  conn.start();
  await flush();
  const ws = FakeSocket.all.at(-1);
  ws.open();
  ws.receive(welcome(1));
  return { conn, ws, seen, storage };
}

test("the room's own messages (jump, chat, ...) go to onMessage", async () => {
  const { seen, ws } = await connectGame();
  ws.receive(["chat", 0, { id: 1, channel: "system", text: "hi" }]);
  ws.receive(["jump", 0, { to: "gj-551", wait: 4 }]);
  assert.deepEqual(seen.messages.map((m) => m[0]), ["chat", "jump"]);
  assert.equal(seen.messages[1][2].to, "gj-551");
});

for (const code of [4110, 4111]) {
  test(`close ${code}: no reconnection, not offline, the queue and the seat are dropped`, async () => {
    const { conn, ws, seen, storage } = await connectGame();
    assert.equal(storage.getItem("starhold.seat.sol"), "seat-1");
    conn.queue.push("move_to", { x: 1, y: 2 }); // e.g. given during the jump: meant for this system
    ws.sent.push(["_marker"]);
    ws.serverClose(code, "");
    assert.deepEqual(seen.moved, [code]);
    assert.equal(conn.status.state, "moved");
    assert.equal(conn.status.connection, "transit");
    assert.equal(conn.queue.size, 0);
    assert.equal(conn.queue.pending.length, 0);
    assert.equal(storage.getItem("starhold.seat.sol"), null);
    assert.equal(conn.backoff.attempt, 0);
    mock.timers.tick(60_000);
    await flush();
    assert.equal(FakeSocket.all.length, 1); // never reopened
    assert.ok(!seen.statuses.some((s) => s.state === "reconnecting" || s.state === "closed"));
  });
}

test("sendNow: only when joined, outside the queue (never resent)", async () => {
  const { conn, ws } = await connectGame();
  const seq = conn.sendNow("say", { text: "hi" });
  assert.deepEqual(ws.sent.at(-1), ["say", seq, { text: "hi" }]);
  assert.equal(conn.queue.pending.length, 0);
  ws.serverClose(4503);
  assert.equal(conn.sendNow("say", { text: "again" }), null);
  assert.equal(conn.queue.size, 0);
});

// Run with `npm test`: WorldState applies keyframes and deltas (docs/protocol.md §4 frame).
import assert from "node:assert/strict";
import { test } from "node:test";

import { APPLIED_DELTA, APPLIED_KEYFRAME, IGNORED, NEED_RESYNC, RESYNC_RETRY, WorldState } from "../src/worldState.js";

const kf = (tick, ships, names, ack = 0) => ({ tick, ack, base: null, time: tick / 10, ships, removed: [], names });
const dl = (tick, base, ships = [], removed = [], names = [], ack = 0) => ({ tick, ack, base, time: tick / 10, ships, removed, names });

test("a keyframe replaces everything", () => {
  const w = new WorldState();
  assert.equal(w.apply(kf(10, [[1, 0, 0, 1], [2, 5, 5, 3]], [[1, "a"], [2, "b"]])), APPLIED_KEYFRAME);
  assert.equal(w.apply(kf(20, [[3, 1, 2, 1]], [[3, "c"]], 4)), APPLIED_KEYFRAME);
  assert.deepEqual([...w.ships.keys()], [3]);
  assert.deepEqual(w.ship(3), { x: 1, y: 2, flags: 1, name: "c" });
  assert.equal(w.tick, 20);
  assert.equal(w.time, 2);
  assert.equal(w.ack, 4);
  assert.equal(w.names.has(1), false);
});

test("deltas upsert rows, delete removed ships and upsert names", () => {
  const w = new WorldState();
  w.apply(kf(10, [[1, 0, 0, 1], [2, 5, 5, 1]], [[1, "a"], [2, "b"]]));
  assert.equal(w.apply(dl(11, 10, [[1, 5, 0, 3], [4, 9, 9, 1]], [2], [[4, "d"], [1, "a2"]], 7)), APPLIED_DELTA);
  assert.deepEqual(w.toPlain(), { 1: { x: 5, y: 0, flags: 3, name: "a2" }, 4: { x: 9, y: 9, flags: 1, name: "d" } });
  assert.equal(w.tick, 11);
  assert.equal(w.ack, 7);
  // a delta with only names (a rename) keeps the row
  w.apply(dl(12, 11, [], [], [[4, "dee"]]));
  assert.deepEqual(w.ship(4), { x: 9, y: 9, flags: 1, name: "dee" });
});

test("a delta whose base is not our tick is ignored: resync asked once, again after a while", () => {
  const w = new WorldState();
  assert.equal(w.apply(dl(11, 10, [[1, 1, 1, 1]]), 0), NEED_RESYNC); // nothing yet
  w.apply(kf(10, [[1, 0, 0, 1]], [[1, "a"]]), 0.1);
  assert.equal(w.apply(dl(12, 11, [[1, 9, 9, 1]], [], [], 3), 0.2), NEED_RESYNC); // 11 was missed
  assert.equal(w.apply(dl(13, 12, [[1, 9, 9, 1]]), 0.3), IGNORED);
  assert.equal(w.apply(dl(14, 13, [[1, 9, 9, 1]]), 0.2 + RESYNC_RETRY), NEED_RESYNC);
  assert.deepEqual(w.ship(1), { x: 0, y: 0, flags: 1, name: "a" });
  assert.equal(w.tick, 10);
  assert.equal(w.ack, 3); // acks count even in ignored frames
  assert.equal(w.gaps, 4);
  assert.equal(w.apply(kf(15, [[1, 7, 7, 1]], [[1, "a"]])), APPLIED_KEYFRAME);
  assert.equal(w.apply(dl(16, 15, [[1, 8, 8, 3]])), APPLIED_DELTA);
});

test("invalidate (a new socket) keeps the ships but waits for a keyframe", () => {
  const w = new WorldState();
  w.apply(kf(10, [[1, 0, 0, 1]], [[1, "a"]]));
  w.invalidate();
  assert.equal(w.ships.size, 1);
  assert.equal(w.synced, false);
  assert.equal(w.apply(dl(11, 10)), NEED_RESYNC);
  w.apply(kf(11, [[1, 0, 0, 1]], [[1, "a"]]));
  assert.equal(w.synced, true);
});

test("snapshots are copies; malformed rows are skipped", () => {
  const w = new WorldState();
  w.apply(kf(1, [[1, 0, 0, 1], [2, "x", 0, 1], "junk", [3]], [[1, "a"]]));
  const snap = w.snapshot();
  assert.deepEqual([...snap.keys()], [1]);
  w.apply(dl(2, 1, [[1, 5, 5, 3]]));
  assert.equal(snap.get(1).x, 0);
  assert.equal(w.snapshot().get(1).x, 5);
  w.clear();
  assert.equal(w.ships.size, 0);
  assert.equal(w.tick, null);
});

test("hit points: a keyframe replaces them, deltas upsert, removed ships lose them", () => {
  const w = new WorldState();
  const k = kf(10, [[1, 0, 0, 1], [2, 5, 5, 32]], [[1, "a"], [2, "pirate"]]);
  k.hp = [[1, 200, 200], [2, 120, 120]];
  k.events = [];
  assert.equal(w.apply(k), APPLIED_KEYFRAME);
  assert.deepEqual(w.hitPoints(1), { hp: 200, max: 200 });
  assert.deepEqual(w.hitPoints(2), { hp: 120, max: 120 });
  const d = dl(11, 10, [[2, 5, 5, 32 | 8]]);
  d.hp = [[2, 99, 120], ["bad"], [1, "x", 200]];
  d.events = [[0, 1, 2, 21], "junk"];
  assert.equal(w.apply(d), APPLIED_DELTA);
  assert.deepEqual(w.hitPoints(2), { hp: 99, max: 120 });
  assert.deepEqual(w.hitPoints(1), { hp: 200, max: 200 }, "unchanged ships keep their hp");
  assert.deepEqual(w.events, [[0, 1, 2, 21]]);
  assert.deepEqual(w.toPlain()[2], { x: 5, y: 5, flags: 40, name: "pirate", hp: 99, maxHp: 120 });
  // a delta without hp (or a game's frame) keeps them; events are the latest frame's only
  w.apply(dl(12, 11));
  assert.deepEqual(w.hitPoints(2), { hp: 99, max: 120 });
  assert.deepEqual(w.events, []);
  w.apply(dl(13, 12, [], [2]));
  assert.equal(w.hitPoints(2), null);
  // a keyframe replaces everything, hp included
  const k2 = kf(20, [[3, 1, 1, 1]], [[3, "c"]]);
  k2.hp = [[3, 0, 200]];
  w.apply(k2);
  assert.equal(w.hitPoints(1), null);
  assert.deepEqual(w.hitPoints(3), { hp: 0, max: 200 });
  w.clear();
  assert.equal(w.hp.size, 0);
});

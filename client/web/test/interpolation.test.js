// Run with `npm test` (node:test, no dependencies).
import assert from "node:assert/strict";
import { test } from "node:test";

import { GameClock, rowsToMap, SnapshotBuffer } from "../src/interpolation.js";

const names = new Map([[1, "a"], [2, "new"], [3, "gone"]]);

test("interpolates linearly between the frames straddling the render time", () => {
  const buf = new SnapshotBuffer();
  buf.push(10.0, [[1, 0, 0, 3]], names);
  buf.push(10.1, rowsToMap([[1, 5, -5, 3]], names));
  const s = buf.sample(10.05).get(1);
  assert.ok(Math.abs(s.x - 2.5) < 1e-9 && Math.abs(s.y + 2.5) < 1e-9);
  assert.equal(s.flags, 3);
  assert.equal(s.name, "a");
});

test("snaps new ships and ships that jumped, drops ships that left", () => {
  const buf = new SnapshotBuffer();
  buf.push(1.0, [[1, 0, 0, 1], [3, 0, 0, 1]], names);
  buf.push(1.1, [[1, 900, 0, 1], [2, 40, 40, 1]], names);
  const m = buf.sample(1.02);
  assert.equal(m.get(1).x, 900); // 900 units in 0.1 s is a teleport
  assert.equal(m.get(2).x, 40);
  assert.equal(m.has(3), false);
  assert.equal(m.get(2).name, "new");
});

test("holds the newest frame past its time and the oldest before it", () => {
  const buf = new SnapshotBuffer();
  buf.push(2.0, [[1, 0, 0, 1]]);
  buf.push(2.1, [[1, 5, 0, 1]]);
  assert.equal(buf.sample(5).get(1).x, 5);
  assert.equal(buf.sample(0).get(1).x, 0);
});

test("keeps about a second of frames and restarts when time goes backwards", () => {
  const buf = new SnapshotBuffer();
  for (let i = 0; i < 50; i++) buf.push(i / 10, [[1, i, 0, 1, ""]]);
  assert.ok(buf.frames.length <= 12);
  buf.push(0, [[1, 0, 0, 1]]);
  assert.equal(buf.frames.length, 1);
});

test("game clock advances smoothly and never goes backwards", () => {
  const clock = new GameClock();
  clock.observe(100, 0);
  assert.equal(clock.now(50), 100.05);
  clock.observe(100.1, 130); // a late frame pulls the estimate back a little
  const t = clock.now(131);
  assert.ok(t >= 100.05 && t < 100.2);
  assert.ok(clock.now(132) >= t);
});

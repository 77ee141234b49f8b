// Run with `npm test`: own-ship prediction (pending commands replayed on the latest frame).
import assert from "node:assert/strict";
import { test } from "node:test";

import { advance, predictShip, Smoother } from "../src/prediction.js";

const near = (a, b, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const MOVING = 3;
const AT_REST = 1;

test("advance flies straight at 50 units/s and stops at the target", () => {
  assert.deepEqual(advance(0, 0, 100, 0, 1), [50, 0, false]);
  assert.deepEqual(advance(0, 0, 30, 40, 2), [30, 40, true]);
  const [x, y] = advance(0, 0, 30, 40, 0.5);
  near(x, 15);
  near(y, 20);
});

test("at rest without pending commands the ship stays put", () => {
  const p = predictShip({ x: 5, y: 6, flags: AT_REST }, 10, 11, [], null);
  assert.deepEqual(p, { x: 5, y: 6, moving: false, dx: 0, dy: 0 });
});

test("moving toward the acknowledged target: extrapolated from the frame to now", () => {
  const p = predictShip({ x: 0, y: 0, flags: MOVING }, 10, 10.5, [], { x: 100, y: 0 });
  near(p.x, 25);
  assert.equal(p.moving, true);
  assert.ok(p.dx > 0);
  const done = predictShip({ x: 0, y: 0, flags: MOVING }, 10, 20, [], { x: 100, y: 0 });
  assert.deepEqual([done.x, done.y, done.moving], [100, 0, false]);
});

test("moving toward an unknown target: no prediction (draw the frames)", () => {
  assert.equal(predictShip({ x: 0, y: 0, flags: MOVING }, 10, 10.5, [], null), null);
  assert.equal(predictShip(null, 10, 10.5), null);
});

test("pending commands are replayed from their issue time", () => {
  // acked target (100, 0); at 10.2 a command toward (0, 100) is pending
  const pending = [{ payload: { x: 0, y: 100 }, at: 10.2 }];
  const p = predictShip({ x: 0, y: 0, flags: MOVING }, 10, 10.4, pending, { x: 100, y: 0 });
  // 0.2 s east (10 units) then 0.2 s toward (0, 100): 10 units along (-10, 100)
  const d = Math.hypot(-10, 100);
  near(p.x, 10 - (10 * 10) / d);
  near(p.y, (10 * 100) / d);
  assert.equal(p.moving, true);
});

test("commands sent before the frame count from the frame's time; the latest wins", () => {
  const pending = [
    { payload: { x: 100, y: 0 }, at: 9 },
    { payload: { x: -100, y: 0 }, at: 9.5 },
  ];
  const p = predictShip({ x: 0, y: 0, flags: AT_REST }, 10, 11, pending, null);
  near(p.x, -50);
  // moving toward an unknown target, a command pending: at rest until the command
  const q = predictShip({ x: 0, y: 0, flags: MOVING }, 10, 11, [{ payload: { x: 0, y: 50 }, at: 10.5 }], null);
  near(q.y, 25);
});

test("Smoother absorbs a jump and decays it; snaps large ones", () => {
  const s = new Smoother({ tau: 0.1, snap: 50 });
  assert.deepEqual(s.update(0, 0, 0.016, false), { x: 0, y: 0 });
  const a = s.update(10, 0, 0, true); // the raw position jumped by 10
  near(a.x, 0);
  const b = s.update(10, 0, 0.1, false);
  near(b.x, 10 - 10 * Math.exp(-1));
  const c = s.update(10, 0, 2, false);
  near(c.x, 10, 1e-3);
  const d = s.update(500, 0, 0, true); // too far: snap
  assert.equal(d.x, 500);
});

test("no prediction in combat (flag 8) or destroyed (flag 16): the frames are drawn as they are", () => {
  const pending = [{ payload: { x: 100, y: 0 }, at: 10 }];
  assert.equal(predictShip({ x: 0, y: 0, flags: MOVING | 8 }, 10, 11, pending, { x: 50, y: 0 }), null);
  assert.equal(predictShip({ x: 0, y: 0, flags: AT_REST | 8 }, 10, 11, [], null), null);
  assert.equal(predictShip({ x: 0, y: 0, flags: AT_REST | 16 }, 10, 11, pending, null), null);
  // unknown higher bits (e.g. 32, a pirate) do not stop prediction
  const p = predictShip({ x: 0, y: 0, flags: AT_REST | 64 }, 10, 11, pending, null);
  near(p.x, 50);
});

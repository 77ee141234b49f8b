// Run with `npm test`: the economy's state reducers (cargo, wrecks, scans, /api/me), the hold
// model, and the scan targets of a system (planets on their orbits, asteroid fields, anomalies).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  applyCargo,
  applyMe,
  applyScanMessage,
  applyWrecks,
  goodsList,
  holdModel,
  initialEconomy,
  scanFailed,
  scanProgress,
  SCAN_GRACE,
  SCAN_TIMEOUT,
  scanStarted,
  applyLootMessage,
  applyMineMessage,
  totalOf,
  watchScan,
  wreckSecondsLeft,
} from "../src/economy.js";
import { approachPoint, asteroidFields, planetPosition, scanTargets, wrecksAround } from "../src/economyTargets.js";
import { fee, SCAN_SECONDS } from "../src/economy_protocol.js";

test("cargo messages replace the ledger's view; bad counts are dropped, zero goods omitted", () => {
  let s = initialEconomy();
  assert.equal(s.credits, null);
  s = applyCargo(s, { credits: 1000, cargo: { ferrite: 12, ice: 0, platinum: 3 }, capacity: 100, reserved: 5 });
  assert.deepEqual([s.credits, s.cargo, s.capacity, s.reserved, s.cargoUpdates], [1000, { ferrite: 12, platinum: 3 }, 100, 5, 1]);
  s = applyCargo(s, { credits: -4, cargo: { ferrite: 2.5, ice: "7", silicates: 8 }, capacity: 1.5 });
  assert.equal(s.credits, 1000); // a negative or fractional count is not trusted
  assert.equal(s.capacity, 100);
  assert.deepEqual(s.cargo, { silicates: 8 });
  assert.equal(applyCargo(s, null), s);
  assert.deepEqual(goodsList({ exotics: 1, zinc: 2, ferrite: 3, ice: 0 }), [
    { good: "ferrite", units: 3 },
    { good: "exotics", units: 1 },
    { good: "zinc", units: 2 },
  ]);
});

test("holdModel: used, reserved, free and bar shares", () => {
  const s = { ...initialEconomy(), capacity: 100, cargo: { ferrite: 30, ice: 10 }, reserved: 20 };
  assert.deepEqual(holdModel(s), { capacity: 100, used: 40, reserved: 20, free: 40, usedShare: 0.4, reservedShare: 0.2 });
  const over = holdModel({ ...s, reserved: 90 }); // a stale view may not add up: never negative
  assert.equal(over.free, 0);
  assert.ok(over.usedShare + over.reservedShare <= 1 + 1e-12);
  assert.equal(holdModel(initialEconomy()).free, 0);
});

test("/api/me fills credits, cargo, orders and totals; keeps the welcome's region", () => {
  let s = { ...initialEconomy(), region: "outer" };
  s = applyMe(s, {
    player: "g-1",
    credits: 940,
    cargo: { ice: 4 },
    capacity: 100,
    reserved: 6,
    free: 90,
    region: "core",
    orders: [{ id: "o1", good: "ice", side: "buy", state: "open" }, null, { good: "no id" }],
    totals: { granted: 1000, fees: 2 },
  });
  assert.deepEqual([s.credits, s.cargo, s.reserved, s.region], [940, { ice: 4 }, 6, "outer"]);
  assert.deepEqual(s.orders.map((o) => o.id), ["o1"]);
  assert.equal(s.totals.fees, 2);
  assert.equal(applyMe(initialEconomy(), { region: "mid" }).region, "mid");
});

test("wrecks: the list replaces ours, malformed wrecks are dropped; time left in game or unix time", () => {
  let s = applyWrecks(initialEconomy(), [
    { id: 7, x: 10, y: -5, goods: { platinum: 4 }, expires: 700 },
    { id: "x", x: 0, y: 0 },
    { id: 8, x: 1, y: NaN },
  ]);
  assert.deepEqual(s.wrecks, [{ id: 7, x: 10, y: -5, goods: { platinum: 4 }, expires: 700 }]);
  s = applyWrecks(s, { wrecks: [] });
  assert.deepEqual(s.wrecks, []);
  assert.equal(applyWrecks(s, "nonsense"), s);
  assert.equal(wreckSecondsLeft({ expires: 700 }, 650), 50);
  assert.equal(wreckSecondsLeft({ expires: 1.7e9 + 30 }, 650, 1.7e9), 30);
  assert.equal(wreckSecondsLeft({ expires: 10 }, 650), 0);
  assert.equal(wreckSecondsLeft({ expires: null }, 650), null);
  const near = wrecksAround([{ id: 1, x: 300, y: 0 }, { id: 2, x: 50, y: 0 }], { x: 0, y: 0 });
  assert.deepEqual(near.map((w) => [w.id, w.inRange]), [[2, true], [1, false]]);
});

test("scans: started, lenient progress, a result ends it and is kept per target", () => {
  let s = scanStarted(initialEconomy(), "planet:3", 12, 100);
  assert.equal(s.scan.state, "scanning");
  assert.equal(scanProgress(s.scan, 100 + SCAN_SECONDS / 2), 0.5); // local estimate
  assert.equal(scanProgress(s.scan, 100 + 10 * SCAN_SECONDS), 0.99); // never "done" without a result
  s = applyScanMessage(s, { target: "planet:3", state: "started", unknown: 1 }, 100.1);
  assert.equal(s.scan.state, "scanning");
  s = applyScanMessage(s, { target: "planet:3", progress: 80 }, 101); // percent
  assert.equal(s.scan.progress, 0.8);
  assert.equal(scanProgress(s.scan, 100.2), 0.8);
  s = applyScanMessage(s, {
    target: "planet:3",
    kind: "gas giant",
    region: "core",
    resources: { helium3: 120, ice: 0 },
    lore: "Old beacons.",
    fragments: [["planet:sol:5", "has_resource", "resource:helium3"], ["bad"], [1, 2, 3]],
  }, 103);
  assert.equal(s.scan.state, "done");
  assert.equal(s.scan.seq, 12);
  assert.equal(scanProgress(s.scan, 0), 1);
  assert.deepEqual(s.lastScan, {
    target: "planet:3",
    kind: "gas giant",
    region: "core",
    resources: { helium3: 120 },
    lore: "Old beacons.",
    fragments: [["planet:sol:5", "has_resource", "resource:helium3"]],
  });
  assert.equal(s.scans["planet:3"], s.lastScan);
});

test("scans: a cancelled status or an error frame for its seq fails it; other seqs do not", () => {
  let s = scanStarted(initialEconomy(), "field:1", 5, 0);
  assert.equal(scanFailed(s, 6, "nope"), s);
  const failed = scanFailed(s, 5, "out of range");
  assert.deepEqual([failed.scan.state, failed.scan.error], ["failed", "out of range"]);
  s = applyScanMessage(s, { target: "field:1", status: "interrupted", reason: "the ship moved" }, 1);
  assert.deepEqual([s.scan.state, s.scan.error], ["failed", "the ship moved"]);
  // another pilot's news without a target and no scan of ours: nothing
  assert.equal(applyScanMessage(initialEconomy(), { progress: 0.5 }, 0).scan, null);
});

test("planets on their orbits, fields from the discs, anomalies; nearest first with ranges", () => {
  const p = { id: 2, orbit: 300, period: 120, phase: 0 };
  const at = planetPosition(p, 30); // a quarter orbit
  assert.ok(Math.abs(at.x) < 1e-9 && Math.abs(at.y - 300) < 1e-9);
  const system = {
    planets: [{ id: 1, name: "Inner", orbit: 200, period: 100, phase: 0 }],
    asteroids: [
      { x: 500, y: 0, radius: 30 },
      { x: 560, y: 40, radius: 25 },
      { x: -500, y: 0, radius: 40 },
    ],
    anomalies: [{ index: 0, x: 0, y: -400, kind: "derelict" }, { index: "bad", x: 0, y: 0 }],
  };
  const fields = asteroidFields(system);
  assert.deepEqual(fields.map((f) => [f.index, f.discs.length, Math.round(f.x)]), [[0, 2, 530], [1, 1, -500]]);
  // the server's own field numbers win over the clustering
  const tagged = asteroidFields({ asteroids: system.asteroids.map((d, i) => ({ ...d, field: i === 2 ? 0 : 3 })) });
  assert.deepEqual(tagged.map((f) => [f.index, f.discs.length]), [[0, 1], [3, 2]]);
  // the server's `fields` win: each rock goes to the field whose disc holds it
  const listed = asteroidFields({
    asteroids: system.asteroids,
    fields: [{ index: 1, x: -500, y: 0, radius: 40 }, { index: 0, x: 530, y: 20, radius: 70 }, { index: "x", x: 0, y: 0 }],
  });
  assert.deepEqual(listed.map((f) => [f.index, f.discs.length, f.radius]), [[0, 2, 70], [1, 1, 40]]);

  const targets = scanTargets({ ...system, planets: [{ ...system.planets[0], radius: 10 }] }, { x: 400, y: 0 }, 0);
  assert.deepEqual(targets.map((t) => t.target), ["field:0", "planet:1", "anomaly:0", "field:1"]);
  const byId = Object.fromEntries(targets.map((t) => [t.target, t]));
  // the room's distances: a field's nearest rock edge, a planet's surface, an anomaly's point
  assert.deepEqual(targets.map((t) => Math.round(t.distance)), [70, 190, Math.round(Math.hypot(400, 400)), 860]);
  assert.equal(byId["field:0"].inMineRange, true);
  assert.equal(byId["planet:1"].inScanRange, true); // 200 units away
  assert.equal(byId["planet:1"].inMineRange, false);
  assert.equal(byId["anomaly:0"].inScanRange, false);
  assert.equal(byId["anomaly:0"].inMineRange, false); // anomalies are never mined
  assert.equal(scanTargets(system, null, 0)[0].distance, null);
});

test("approachPoint stops short of the target; the fee rounds up", () => {
  assert.deepEqual(approachPoint({ x: 0, y: 0 }, { x: 1000, y: 0 }, 100), { x: 940, y: 0 });
  assert.deepEqual(approachPoint({ x: 0, y: 0 }, { x: 30, y: 0 }, 100), { x: 0, y: 0 });
  assert.equal(fee(100, 1), 2);
  assert.equal(fee(1, 1), 1);
  assert.equal(fee(49, 1), 1);
  assert.equal(fee(50, 1), 1);
  assert.equal(fee(51, 1), 2);
});

test("watchScan: a flag that comes and goes without a result, or no answer at all, fails the scan", () => {
  const scan = scanStarted(initialEconomy(), "planet:1", 3, 100).scan;
  let r = watchScan(scan, null, false, 101);
  assert.deepEqual(r, { watch: { seen: false, clearedAt: null }, failure: null });
  r = watchScan(scan, r.watch, true, 101.5);
  assert.deepEqual(r.watch, { seen: true, clearedAt: null });
  r = watchScan(scan, r.watch, false, 103);
  assert.deepEqual([r.watch.clearedAt, r.failure], [103, null]);
  r = watchScan(scan, r.watch, false, 103 + SCAN_GRACE);
  assert.match(r.failure, /interrupted/);
  // the flag never showed
  assert.equal(watchScan(scan, null, false, 100 + SCAN_TIMEOUT - 0.1).failure, null);
  assert.match(watchScan(scan, null, false, 100 + SCAN_TIMEOUT).failure, /no answer/);
  // nothing under way: nothing to watch
  assert.deepEqual(watchScan({ ...scan, state: "done" }, r.watch, false, 999), { watch: null, failure: null });
  assert.deepEqual(watchScan(null, null, true, 0), { watch: null, failure: null });
  const failed = scanFailed({ ...initialEconomy(), scan }, null, "no answer from the system");
  assert.equal(failed.scan.state, "failed");
});

test("mine messages: started, mined adds up, stopped ends with its reason; loot answers", () => {
  let s = { ...initialEconomy(), mining: "field:1" };
  s = applyMineMessage(s, { target: "field:2", state: "started" });
  assert.equal(s.mining, "field:2");
  s = applyMineMessage(s, { target: "field:2", state: "mined", goods: { ferrite: 4 } });
  s = applyMineMessage(s, { target: "field:2", state: "mined", goods: { ferrite: 2, ice: 2, bad: -1 } });
  assert.deepEqual(s.mined, { ferrite: 6, ice: 2 });
  assert.equal(applyMineMessage(s, { target: "field:2", state: "weird" }), s);
  const other = applyMineMessage(s, { target: "field:9", state: "stopped", reason: "replaced" });
  assert.equal(other.mining, "field:2"); // an older order's end does not stop the newer one
  s = applyMineMessage(s, { target: "field:2", state: "stopped", reason: "hold full" });
  assert.deepEqual([s.mining, s.mineStopped], [null, { target: "field:2", reason: "hold full" }]);
  s = applyLootMessage(s, { wreck: 4, goods: { platinum: 3 } });
  assert.deepEqual(s.lastLoot, { wreck: 4, goods: { platinum: 3 } });
  assert.equal(applyLootMessage(s, { wreck: "4" }), s);
  assert.equal(totalOf({ ferrite: 3, ice: 4 }), 7);
  assert.equal(totalOf(12), 12);
  assert.equal(totalOf(undefined), 0);
});

test("a scan's started message restarts the local progress clock; cancelled fails it", () => {
  let s = scanStarted(initialEconomy(), "anomaly:0", null, 10); // queued while offline
  s = applyScanMessage(s, { target: "anomaly:0", state: "started", ends: 99 }, 50);
  assert.equal(s.scan.started, 50);
  assert.equal(scanProgress(s.scan, 50 + SCAN_SECONDS / 3), 1 / 3);
  s = applyScanMessage(s, { target: "anomaly:0", state: "cancelled", reason: "moved" }, 51);
  assert.deepEqual([s.scan.state, s.scan.error], ["failed", "moved"]);
  s = applyScanMessage(s, { target: "anomaly:0", state: "done", kind: "derelict", resources: {}, lore: "x", fragments: [], origin: "war" }, 60);
  assert.equal(s.scan.state, "done");
  assert.equal(s.lastScan.kind, "derelict");
});

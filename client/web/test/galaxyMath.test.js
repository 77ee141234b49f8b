// Run with `npm test`: label decluttering and route drawing math.
import assert from "node:assert/strict";
import { test } from "node:test";

import { declutter, labelBox, overlaps, starPriority } from "../src/declutter.js";
import { jumpCount, legsLength, parseRoute, routeLegs, routeSegments, routeSummary, transitTotal } from "../src/routePlan.js";
import { transitSeconds } from "../src/transit.js";

test("labelBox is centred above its anchor; overlaps", () => {
  const b = labelBox(100, 100, "abcd", { charWidth: 5, pad: 0, height: 10, lift: 20 });
  assert.deepEqual(b, { x: 90, y: 80, w: 20, h: 10 });
  assert.equal(overlaps(b, { x: 109, y: 85, w: 5, h: 5 }), true);
  assert.equal(overlaps(b, { x: 120, y: 80, w: 5, h: 5 }, 0), false);
  assert.equal(overlaps(b, { x: 90, y: 91, w: 5, h: 5 }, 2), true); // within the margin
  assert.equal(overlaps(b, { x: 90, y: 91, w: 5, h: 5 }, 0), false);
});

test("declutter keeps higher priority labels and drops the ones they cover", () => {
  const box = (x, y) => ({ x, y, w: 40, h: 12 });
  const items = [
    { key: "dim", box: box(10, 0), priority: 1 },
    { key: "sol", box: box(0, 0), priority: 100 },
    { key: "far", box: box(300, 0), priority: 0 },
    { key: "mid", box: box(60, 0), priority: 5 },
    { key: "hover", box: box(30, 5), priority: -10, force: true },
  ];
  // the forced (hovered) label wins over everything it covers, Sol included
  assert.deepEqual([...declutter(items)].sort(), ["far", "hover"]);
  // forced labels are all kept, even when they overlap each other
  const both = items.map((i) => (i.key === "sol" ? { ...i, force: true } : i));
  assert.deepEqual([...declutter(both)].sort(), ["far", "hover", "sol"]);
  // without the forced one, "mid" fits beside "sol"
  assert.deepEqual([...declutter(items.filter((i) => !i.force))].sort(), ["far", "mid", "sol"]);
  assert.equal(declutter([]).size, 0);
});

test("starPriority: Sol, then brighter and closer", () => {
  const sol = { id: "sol", magnitude: null, distance: 0 };
  const sirius = { id: "hip-32349", magnitude: -1.1, distance: 2.6 };
  const dim = { id: "hip-1", magnitude: 11, distance: 2.6 };
  const far = { id: "hip-2", magnitude: -1.1, distance: 40 };
  assert.ok(starPriority(sol) > starPriority(sirius));
  assert.ok(starPriority(sirius) > starPriority(dim));
  assert.ok(starPriority(sirius) > starPriority(far));
});

const pos = new Map([
  ["sol", [0, 0, 0]],
  ["a", [1, 0, 0]],
  ["b", [1, 2, 0]],
  ["c", [1, 2, 2]],
]);

test("parseRoute, jumpCount and summary", () => {
  const r = parseRoute({ systems: ["sol", "a", "b", "c"], parsecs: 5 });
  assert.deepEqual(r, { systems: ["sol", "a", "b", "c"], parsecs: 5 });
  assert.equal(jumpCount(r), 3);
  assert.equal(routeSummary(r), "3 jumps · 5.00 pc");
  assert.equal(routeSummary(parseRoute({ systems: ["sol"], parsecs: 0 })), "you are there");
  assert.equal(routeSummary(parseRoute({ systems: ["sol", "a"] })), "1 jump");
  assert.equal(parseRoute({ systems: [] }), null);
  assert.equal(parseRoute({ systems: ["sol", 3] }), null);
  assert.equal(parseRoute(null), null);
  assert.equal(jumpCount(null), 0);
});

test("routeLegs, legsLength, routeSegments", () => {
  const r = parseRoute({ systems: ["sol", "a", "b", "c"], parsecs: 5 });
  const legs = routeLegs(r, pos);
  assert.deepEqual(legs, [
    { from: "sol", to: "a", parsecs: 1 },
    { from: "a", to: "b", parsecs: 2 },
    { from: "b", to: "c", parsecs: 2 },
  ]);
  assert.equal(legsLength(legs), 5);
  assert.equal(transitTotal(legs, transitSeconds), 12); // 4 s each: every leg under 2 pc
  assert.deepEqual(routeSegments(r, pos), [
    [pos.get("sol"), pos.get("a")],
    [pos.get("a"), pos.get("b")],
    [pos.get("b"), pos.get("c")],
  ]);
  // an unknown star: its legs are not drawn and have no length
  const r2 = parseRoute({ systems: ["sol", "x", "a"] });
  assert.equal(routeSegments(r2, (id) => pos.get(id)).length, 0);
  assert.equal(legsLength(routeLegs(r2, pos)), null);
});

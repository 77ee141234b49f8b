// Run with `npm test`: transit timing (jump, elsewhere, /api/player transits).
import assert from "node:assert/strict";
import { test } from "node:test";

import { destination, formatCountdown, MAX_TRANSIT_WAIT, planTransit, progress, secondsLeft, transitSeconds } from "../src/transit.js";

test("transitSeconds: max(4, 2 * parsecs)", () => {
  assert.equal(transitSeconds(1), 4);
  assert.equal(transitSeconds(2), 4);
  assert.equal(transitSeconds(3.5), 7);
  assert.equal(transitSeconds(null), 4);
  assert.equal(transitSeconds(-3), 4);
});

test("planTransit from a jump payload uses the server's wait", () => {
  const jump = { jump: 1, from: "sol", to: "gj-551", parsecs: 1.3, wait: 4, arrive: 123.4, route: ["hip-71683", 5] };
  const plan = planTransit(jump, 10_000);
  assert.deepEqual(plan, { from: "sol", to: "gj-551", wait: 4, parsecs: 1.3, arrive: 123.4, route: ["hip-71683"], arriveAt: 14_000 });
  assert.equal(secondsLeft(plan, 10_000), 4);
  assert.equal(secondsLeft(plan, 13_000), 1);
  assert.equal(secondsLeft(plan, 20_000), 0);
  assert.equal(progress(plan, 12_000), 0.5);
  assert.equal(progress(plan, 99_000), 1);
});

test("planTransit: missing or bogus wait", () => {
  assert.equal(planTransit({ to: "x", parsecs: 5 }, 0).wait, 10); // the rule stands in
  assert.equal(planTransit({ to: "x", wait: "soon" }, 0).wait, 4);
  assert.equal(planTransit({ to: "x", wait: -2 }, 0).wait, 0); // already due
  assert.equal(planTransit({ to: "x", wait: 1e9 }, 0).wait, MAX_TRANSIT_WAIT);
  assert.equal(planTransit({ from: "sol" }, 0), null);
  assert.equal(planTransit(null, 0), null);
});

test("destination: a transit first, else the system", () => {
  assert.deepEqual(destination({ system: "sol", transit: null }, 0), { system: "sol", plan: null });
  const d = destination({ system: null, transit: { from: "sol", to: "gj-65", arrive: 5, wait: 2.5 } }, 1000);
  assert.equal(d.system, "gj-65");
  assert.equal(d.plan.arriveAt, 3500);
  assert.equal(destination({ system: null, transit: null }, 0), null);
  assert.equal(destination(undefined, 0), null);
});

test("formatCountdown", () => {
  assert.equal(formatCountdown(0), "arriving");
  assert.equal(formatCountdown(3.44), "3.4 s");
  assert.equal(formatCountdown(12.1), "13 s");
});

// Route plotting math (pure): /api/route answers {systems, parsecs}; the map draws the path
// as line segments between the stars and lists the legs.

/** The route answer if it is well formed ({systems: [ids], parsecs}), else null. */
export function parseRoute(body) {
  if (!body || !Array.isArray(body.systems) || !body.systems.length) return null;
  if (!body.systems.every((s) => typeof s === "string" && s)) return null;
  return { systems: body.systems.slice(), parsecs: Number.isFinite(+body.parsecs) ? +body.parsecs : null };
}

/** Number of jumps of a route (systems - 1). */
export function jumpCount(route) {
  return route ? Math.max(0, route.systems.length - 1) : 0;
}

function dist(a, b) {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/**
 * The legs of `route`: [{from, to, parsecs}] with the distances from `positions` (a Map or a
 * function id -> [x, y, z] in parsecs); a leg whose star is unknown has parsecs null.
 */
export function routeLegs(route, positions) {
  return routePairs(route, positions).map(({ from, to, a, b }) => ({ from, to, parsecs: a && b ? dist(a, b) : null }));
}

/** Consecutive systems of `route` with their positions: [{from, to, a, b}] (a, b may be undefined). */
function routePairs(route, positions) {
  const get = typeof positions === "function" ? positions : (id) => positions.get(id);
  const pairs = [];
  const systems = route ? route.systems : [];
  for (let i = 1; i < systems.length; i++) {
    pairs.push({ from: systems[i - 1], to: systems[i], a: get(systems[i - 1]), b: get(systems[i]) });
  }
  return pairs;
}

/** Sum of the legs' lengths (null if one is unknown). */
export function legsLength(legs) {
  let total = 0;
  for (const l of legs) {
    if (l.parsecs === null) return null;
    total += l.parsecs;
  }
  return total;
}

/**
 * Line segments to draw for `route`: pairs [a, b] of positions (as returned by `positions`),
 * skipping legs with an unknown star.
 */
export function routeSegments(route, positions) {
  return routePairs(route, positions).filter(({ a, b }) => a && b).map(({ a, b }) => [a, b]);
}

/** Total transit time in seconds, using the spec's rule per leg (time in systems excluded). */
export function transitTotal(legs, perLeg) {
  return legs.reduce((t, l) => t + perLeg(l.parsecs ?? 0), 0);
}

/** "3 jumps · 7.42 pc" */
export function routeSummary(route) {
  if (!route) return "";
  const n = jumpCount(route);
  const pc = route.parsecs === null ? "" : ` · ${route.parsecs.toFixed(2)} pc`;
  return n === 0 ? "you are there" : `${n} jump${n === 1 ? "" : "s"}${pc}`;
}

// What a ship can scan, mine and loot in a system (pure): the planets on their orbits, the
// asteroid fields, the anomalies and the wrecks, with their distance from the ship.
//
// Target strings are the contract's: `planet:<id>`, `field:<index>`, `anomaly:<index>`.
// A field is a cluster of asteroid discs (`welcome.system.asteroids`, rooms/system/
// navigation.py draws 2-4 clusters of 3-6 discs in order). The fields are
// `welcome.system.fields` [{index, x, y, radius}] (each disc belongs to the field whose disc
// holds it); without that key, the discs' own `field` key, else the discs grouped in list
// order into clusters of discs within FIELD_LINK of each other (a cluster's discs lie within
// 60 units of its centre, the clusters far apart).
// Distances are the room's (docs/protocol.md §3 "Economy"): to a planet's surface, to a
// field's nearest rock's edge, to an anomaly's point.
import { LOOT_RANGE, MINE_RANGE, SCAN_RANGE } from "./economy_protocol.js";

export const FIELD_LINK = 130; // world units: discs this close belong to one field (fallback)

const finite = (...v) => v.every((x) => Number.isFinite(+x));

/** A planet's position at game time `t` (docs/protocol.md §4: angle = phase + 2 pi t / period). */
export function planetPosition(p, t) {
  const a = (+p.phase || 0) + (2 * Math.PI * t) / (+p.period || 1);
  return { x: (+p.orbit || 0) * Math.cos(a), y: (+p.orbit || 0) * Math.sin(a) };
}

/** The asteroid fields of `system`: [{index, x, y, radius, discs}], centre = mean of the discs. */
export function asteroidFields(system) {
  const discs = (system && Array.isArray(system.asteroids) ? system.asteroids : []).filter((a) => a && finite(a.x, a.y) && +a.radius > 0);
  const groups = new Map(); // index -> discs
  if (system && Array.isArray(system.fields)) {
    const fields = system.fields
      .filter((f) => f && Number.isSafeInteger(f.index) && finite(f.x, f.y))
      .map((f) => ({ index: f.index, x: +f.x, y: +f.y, radius: +f.radius > 0 ? +f.radius : 0, discs: [] }));
    for (const d of discs) {
      // the field whose disc holds this rock (the nearest centre, if none does)
      const gap = (f) => Math.hypot(d.x - f.x, d.y - f.y) + +d.radius - f.radius;
      const home = fields.reduce((best, f) => (best === null || gap(f) < gap(best) ? f : best), null);
      if (home) home.discs.push(d);
    }
    return fields.sort((a, b) => a.index - b.index);
  }
  if (discs.length && discs.every((d) => Number.isSafeInteger(d.field))) {
    for (const d of discs) groups.set(d.field, [...(groups.get(d.field) || []), d]);
  } else {
    let index = -1;
    let last = null;
    for (const d of discs) {
      const near = last && (groups.get(index) || []).some((o) => Math.hypot(o.x - d.x, o.y - d.y) <= FIELD_LINK);
      if (!near) index += 1;
      groups.set(index, [...(groups.get(index) || []), d]);
      last = d;
    }
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, ds]) => {
      const x = ds.reduce((s, d) => s + +d.x, 0) / ds.length;
      const y = ds.reduce((s, d) => s + +d.y, 0) / ds.length;
      const radius = Math.max(...ds.map((d) => Math.hypot(d.x - x, d.y - y) + +d.radius));
      return { index, x, y, radius, discs: ds };
    });
}

/** `system.anomalies` [{index, x, y, kind}], validated. */
export function anomalies(system) {
  return (system && Array.isArray(system.anomalies) ? system.anomalies : [])
    .filter((a) => a && Number.isSafeInteger(a.index) && finite(a.x, a.y))
    .map((a) => ({ index: a.index, x: +a.x, y: +a.y, kind: typeof a.kind === "string" ? a.kind : "unknown" }));
}

/**
 * Every scan target of `system` at game time `t`, nearest to `ship` {x, y} first (ship null:
 * distance null, list order): [{target, type, name, x, y, distance, inScanRange, inMineRange}].
 * `fields` (asteroidFields) may be passed to avoid recomputing it every call.
 */
export function scanTargets(system, ship, t, fields = asteroidFields(system)) {
  const list = [];
  for (const p of (system && system.planets) || []) {
    if (!p || p.id == null) continue;
    list.push({ target: `planet:${p.id}`, type: "planet", name: p.name || `Planet ${p.id}`, ...planetPosition(p, t), radius: Math.max(0, +p.radius || 0) });
  }
  for (const f of fields) list.push({ target: `field:${f.index}`, type: "field", name: `Asteroid field ${f.index + 1}`, x: f.x, y: f.y, radius: f.radius, discs: f.discs });
  for (const a of anomalies(system)) list.push({ target: `anomaly:${a.index}`, type: "anomaly", name: `Anomaly ${a.index + 1} (${a.kind})`, x: a.x, y: a.y, radius: 0 });
  for (const e of list) {
    e.distance = ship ? targetDistance(e, ship) : null;
    e.inScanRange = e.distance !== null && e.distance <= SCAN_RANGE;
    e.inMineRange = e.distance !== null && e.distance <= MINE_RANGE && e.type !== "anomaly";
  }
  if (ship) list.sort((a, b) => a.distance - b.distance);
  return list;
}

/**
 * The room's distance from `ship` {x, y} to a target row: to a planet's surface (`radius`),
 * to the nearest edge of a field's rocks (`discs`; without them, its disc's edge), to an
 * anomaly's point. Never negative.
 */
export function targetDistance(e, ship) {
  const d = (x, y, r) => Math.max(0, Math.hypot(x - ship.x, y - ship.y) - r);
  if (e.discs && e.discs.length) return Math.min(...e.discs.map((r) => d(+r.x, +r.y, +r.radius)));
  return d(e.x, e.y, e.radius || 0);
}

/** The wrecks with their distance from `ship`, nearest first, and whether they can be looted. */
export function wrecksAround(wrecks, ship) {
  return wrecks
    .map((w) => {
      const distance = ship ? Math.hypot(w.x - ship.x, w.y - ship.y) : null;
      return { ...w, distance, inRange: distance !== null && distance <= LOOT_RANGE };
    })
    .sort((a, b) => (a.distance ?? 0) - (b.distance ?? 0));
}

/**
 * Where to fly to reach `range` of a target: the point on the line from the ship to the
 * target at `share` x range from it (the ship stays, when already that close).
 */
export function approachPoint(ship, target, range, share = 0.6) {
  const d = Math.hypot(target.x - ship.x, target.y - ship.y);
  const keep = range * share;
  if (d <= keep) return { x: ship.x, y: ship.y };
  const k = (d - keep) / d;
  return { x: ship.x + (target.x - ship.x) * k, y: ship.y + (target.y - ship.y) * k };
}

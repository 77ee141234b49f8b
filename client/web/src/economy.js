// The player's economic state, pure (no DOM, no network): what the system socket says
// (`cargo`, `wrecks`, `scan`) and what `GET /api/me` answers, folded into one plain object by
// reducers that return a new state. Every count is an integer (credits, units); anything
// malformed in a message is dropped rather than trusted (unknown keys are ignored).
import { GOODS, SCAN_SECONDS } from "./economy_protocol.js";

const isInt = (v) => Number.isSafeInteger(v);
const nonNeg = (v) => (isInt(v) && v >= 0 ? v : null);

/** A fresh state: nothing known yet (credits null until the first `cargo` or /api/me). */
export function initialEconomy() {
  return {
    credits: null,
    cargo: {}, // {good: units > 0}
    capacity: 0,
    reserved: 0,
    region: null, // "core" | "mid" | "outer": the market the ship trades on
    wrecks: [], // [{id, x, y, goods, expires}]
    scan: null, // the scan under way or last finished: {target, state, started, progress, seq, error}
    lastScan: null, // the last scan result {target, kind, region, resources, lore, fragments}
    scans: {}, // target -> its result (this page's)
    mining: null, // target being mined ("field:2"): ordered by this page, confirmed by `mine` messages
    mined: {}, // {good: units} mined since this view opened (`mine` "mined" messages)
    mineStopped: null, // the last `mine` "stopped" {target, reason}
    lastLoot: null, // the last `loot` answer {wreck, goods}
    orders: [], // /api/me orders
    totals: null,
    cargoUpdates: 0, // `cargo` messages applied
  };
}

/** `{good: units}` with only positive integer counts; goods outside GOODS are kept too. */
export function cleanGoods(goods) {
  const out = {};
  if (!goods || typeof goods !== "object" || Array.isArray(goods)) return out;
  for (const [good, units] of Object.entries(goods)) if (isInt(units) && units > 0) out[good] = units;
  return out;
}

/** `[{good, units}]` in the order of GOODS, then unknown goods by name. */
export function goodsList(goods) {
  const clean = cleanGoods(goods);
  const known = GOODS.filter((g) => clean[g]).map((g) => ({ good: g, units: clean[g] }));
  const other = Object.keys(clean)
    .filter((g) => !GOODS.includes(g))
    .sort()
    .map((g) => ({ good: g, units: clean[g] }));
  return [...known, ...other];
}

export function sumGoods(goods) {
  return Object.values(cleanGoods(goods)).reduce((a, b) => a + b, 0);
}

/** A `cargo` message {credits, cargo, capacity, reserved}: the ledger's view, replaces ours. */
export function applyCargo(state, p) {
  if (!p || typeof p !== "object") return state;
  const next = { ...state, cargoUpdates: state.cargoUpdates + 1 };
  if (nonNeg(p.credits) !== null) next.credits = p.credits;
  if (p.cargo && typeof p.cargo === "object") next.cargo = cleanGoods(p.cargo);
  if (nonNeg(p.capacity) !== null) next.capacity = p.capacity;
  if (nonNeg(p.reserved) !== null) next.reserved = p.reserved;
  return next;
}

/** `GET /api/me` {credits, cargo, capacity, reserved, region, orders, totals, ...}. */
export function applyMe(state, me) {
  if (!me || typeof me !== "object") return state;
  const next = { ...state };
  if (nonNeg(me.credits) !== null) next.credits = me.credits;
  if (me.cargo && typeof me.cargo === "object") next.cargo = cleanGoods(me.cargo);
  if (nonNeg(me.capacity) !== null) next.capacity = me.capacity;
  if (nonNeg(me.reserved) !== null) next.reserved = me.reserved;
  if (typeof me.region === "string" && !next.region) next.region = me.region;
  if (Array.isArray(me.orders)) next.orders = me.orders.filter((o) => o && typeof o === "object" && o.id != null);
  if (me.totals && typeof me.totals === "object") next.totals = { ...me.totals };
  return next;
}

/** The hold: capacity, used (cargo), reserved (open orders), free; shares in [0, 1] for the bar. */
export function holdModel(state) {
  const capacity = state.capacity || 0;
  const used = sumGoods(state.cargo);
  const reserved = state.reserved || 0;
  const free = Math.max(0, capacity - used - reserved);
  const share = (n) => (capacity > 0 ? Math.min(1, n / capacity) : 0);
  return { capacity, used, reserved, free, usedShare: share(used), reservedShare: Math.min(1 - share(used), share(reserved)) };
}

/** A wreck from the wire, or null: {id: int, x, y: finite, goods, expires: number | null}. */
export function parseWreck(w) {
  if (!w || typeof w !== "object" || !isInt(w.id) || !Number.isFinite(w.x) || !Number.isFinite(w.y)) return null;
  return { id: w.id, x: w.x, y: w.y, goods: cleanGoods(w.goods), expires: Number.isFinite(w.expires) ? w.expires : null };
}

/** A `wrecks` message (the system's wrecks: the list replaces ours; `{wrecks: [...]}` too). */
export function applyWrecks(state, p) {
  const list = Array.isArray(p) ? p : p && Array.isArray(p.wrecks) ? p.wrecks : null;
  if (!list) return state;
  return { ...state, wrecks: list.map(parseWreck).filter(Boolean) };
}

/**
 * Seconds a wreck has left: `expires` is game time (the frames' `time`, seconds) or, when it
 * is a unix time (over 1e9), compared to `unixNow`. Null when unknown.
 */
export function wreckSecondsLeft(wreck, gameTime, unixNow = Date.now() / 1000) {
  if (wreck.expires === null) return null;
  const now = wreck.expires > 1e9 ? unixNow : gameTime;
  return Math.max(0, wreck.expires - now);
}

/** A scan result from the wire, or null (needs a target and a kind or resources). */
export function parseScanResult(p) {
  if (!p || typeof p !== "object" || typeof p.target !== "string") return null;
  const hasResult = typeof p.kind === "string" || (p.resources && typeof p.resources === "object") || typeof p.lore === "string";
  if (!hasResult) return null;
  const fragments = Array.isArray(p.fragments)
    ? p.fragments.filter((f) => Array.isArray(f) && f.length >= 3 && f.slice(0, 3).every((s) => typeof s === "string")).map((f) => f.slice(0, 3))
    : [];
  return {
    target: p.target,
    kind: typeof p.kind === "string" ? p.kind : null,
    region: typeof p.region === "string" ? p.region : null,
    resources: cleanGoods(p.resources),
    lore: typeof p.lore === "string" ? p.lore : "",
    fragments,
  };
}

/** This page sent `scan {target}` with `seq` (null while queued) at `now` (seconds). */
export function scanStarted(state, target, seq, now) {
  return { ...state, scan: { target, state: "scanning", started: now, progress: 0, seq, error: null } };
}

/**
 * A `scan` message. A result (kind/resources/lore) ends the scan ("done"); anything else is
 * lenient progress news: `progress` in [0, 1] (or in percent up to 100), `state`/`status`
 * "cancelled"/"failed"/"interrupted" ends it as failed with `message`/`reason`.
 */
export function applyScanMessage(state, p, now) {
  const result = parseScanResult(p);
  if (result) {
    return {
      ...state,
      scan: { target: result.target, state: "done", started: state.scan ? state.scan.started : now, progress: 1, seq: state.scan ? state.scan.seq : null, error: null },
      lastScan: result,
      scans: { ...state.scans, [result.target]: result },
    };
  }
  if (!p || typeof p !== "object") return state;
  const target = typeof p.target === "string" ? p.target : state.scan ? state.scan.target : null;
  if (!target) return state;
  const base = state.scan && state.scan.target === target ? state.scan : { target, state: "scanning", started: now, progress: 0, seq: null, error: null };
  const word = String(p.state || p.status || "");
  if (/cancel|fail|interrupt|abort|error/i.test(word)) {
    return { ...state, scan: { ...base, state: "failed", error: String(p.message || p.reason || word) } };
  }
  if (word === "started") return { ...state, scan: { ...base, state: "scanning", started: now, progress: 0 } };
  let progress = base.progress;
  if (Number.isFinite(p.progress)) progress = p.progress > 1 ? p.progress / 100 : p.progress;
  return { ...state, scan: { ...base, state: "scanning", progress: Math.min(1, Math.max(progress, 0)) } };
}

/** An error frame answered the scan (seq): it failed with `message`. */
export function scanFailed(state, seq, message) {
  if (!state.scan || state.scan.state !== "scanning" || (seq != null && state.scan.seq != null && state.scan.seq !== seq)) return state;
  return { ...state, scan: { ...state.scan, state: "failed", error: message } };
}

/** The scan's progress bar at `now`: the server's progress or the elapsed share of SCAN_SECONDS. */
export function scanProgress(scan, now) {
  if (!scan) return 0;
  if (scan.state !== "scanning") return scan.state === "done" ? 1 : scan.progress;
  const elapsed = (now - scan.started) / SCAN_SECONDS;
  return Math.min(0.99, Math.max(scan.progress, elapsed));
}

/** Seconds after the own ship's SHIP_SCANNING flag clears without a result: the scan failed. */
export const SCAN_GRACE = 1.5;
/** Seconds without the flag ever showing or a result: the scan failed (no answer). */
export const SCAN_TIMEOUT = 3 * SCAN_SECONDS + 2;

/**
 * Watch the own ship's SHIP_SCANNING flag while a scan is under way, for the scans the room
 * ends without a message to us. `watch` {seen, clearedAt} (start with null), `flagOn` the
 * flag now, `now` seconds (the clock of `scan.started`). Returns `{watch, failure}`:
 * `failure` is a text when the scan should be marked failed (the flag came and went without
 * a result for SCAN_GRACE s, or neither flag nor result came within SCAN_TIMEOUT s), else null.
 */
export function watchScan(scan, watch, flagOn, now) {
  if (!scan || scan.state !== "scanning") return { watch: null, failure: null };
  const w = watch || { seen: false, clearedAt: null };
  if (flagOn) return { watch: { seen: true, clearedAt: null }, failure: null };
  if (w.seen) {
    const clearedAt = w.clearedAt ?? now;
    const failure = now - clearedAt >= SCAN_GRACE ? "interrupted: the ship stopped scanning" : null;
    return { watch: { seen: true, clearedAt }, failure };
  }
  return { watch: w, failure: now - scan.started >= SCAN_TIMEOUT ? "no answer from the system" : null };
}

/**
 * A `mine` message: "started" confirms the target, "mined" adds its `goods` to `mined`,
 * "stopped" ends it (`mineStopped` keeps {target, reason}). Other states are ignored.
 */
export function applyMineMessage(state, p) {
  if (!p || typeof p !== "object") return state;
  const target = typeof p.target === "string" ? p.target : null;
  if (p.state === "started") return { ...state, mining: target };
  if (p.state === "mined") {
    const mined = { ...state.mined };
    for (const [good, units] of Object.entries(cleanGoods(p.goods))) mined[good] = (mined[good] || 0) + units;
    return { ...state, mined, mining: target || state.mining };
  }
  if (p.state === "stopped") {
    const stopped = { target, reason: typeof p.reason === "string" ? p.reason : "stopped" };
    return { ...state, mining: state.mining === target || target === null ? null : state.mining, mineStopped: stopped };
  }
  return state;
}

/** A `loot` answer {wreck, goods}: what was taken (the cargo message brings the hold). */
export function applyLootMessage(state, p) {
  if (!p || typeof p !== "object" || !isInt(p.wreck)) return state;
  return { ...state, lastLoot: { wreck: p.wreck, goods: cleanGoods(p.goods) } };
}

/** The sum of a totals entry: a number, or `{good: units}` (the ledger's mined/looted/lost). */
export function totalOf(v) {
  if (isInt(v)) return v;
  return sumGoods(v);
}

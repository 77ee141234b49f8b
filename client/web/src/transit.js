// Transit timing (pure): a `jump` message, an `elsewhere` transit or /api/player's transit
// becomes a plan {from, to, wait, arriveAt (ms, the page's clock), route, parsecs}; the client
// joins `to` when it is due. The server's `wait` (seconds from now) is what counts; without it
// the rule wait = max(4, 2 * parsecs) stands in. `arrive` is a game time of another room's
// clock, so it is kept for display only.
import { MIN_TRANSIT, TRANSIT_PER_PARSEC } from "./gameProtocol.js";

/** Longest transit the client believes (seconds): a bogus `wait` must not strand the page. */
export const MAX_TRANSIT_WAIT = 600;

/** The spec's transit time for a lane of `parsecs`. */
export function transitSeconds(parsecs) {
  const pc = Number.isFinite(+parsecs) && +parsecs > 0 ? +parsecs : 0;
  return Math.max(MIN_TRANSIT, TRANSIT_PER_PARSEC * pc);
}

function clampWait(wait, parsecs) {
  const w = Number(wait);
  if (wait === null || wait === undefined || !Number.isFinite(w)) return transitSeconds(parsecs);
  return Math.min(MAX_TRANSIT_WAIT, Math.max(0, w));
}

/**
 * A transit plan from a `jump` payload, an `elsewhere` payload's `transit` or /api/player's
 * `transit` ({from, to, wait, arrive?, parsecs?, route?}) received at `nowMs`; null when it
 * names no destination.
 */
export function planTransit(p, nowMs) {
  if (!p || typeof p !== "object" || typeof p.to !== "string" || !p.to) return null;
  const wait = clampWait(p.wait, p.parsecs);
  return {
    from: typeof p.from === "string" ? p.from : null,
    to: p.to,
    wait,
    parsecs: Number.isFinite(+p.parsecs) ? +p.parsecs : null,
    arrive: Number.isFinite(+p.arrive) ? +p.arrive : null,
    route: Array.isArray(p.route) ? p.route.filter((s) => typeof s === "string") : [],
    arriveAt: nowMs + wait * 1000,
  };
}

/** Seconds left until `plan` arrives (0 when due). */
export function secondsLeft(plan, nowMs) {
  return plan ? Math.max(0, (plan.arriveAt - nowMs) / 1000) : 0;
}

/** Fraction of the transit done, 0..1. */
export function progress(plan, nowMs) {
  if (!plan || plan.wait <= 0) return 1;
  return Math.min(1, Math.max(0, 1 - secondsLeft(plan, nowMs) / plan.wait));
}

/** Countdown text: "12 s", "3.4 s" under 10 s, "arriving" at 0. */
export function formatCountdown(seconds) {
  if (seconds <= 0) return "arriving";
  return seconds < 10 ? `${seconds.toFixed(1)} s` : `${Math.ceil(seconds)} s`;
}

/**
 * Where to go from /api/player's answer or an `elsewhere` payload ({system, transit}):
 * `{system, plan}` (plan: a transit to wait for first, or null), or null when neither is known.
 */
export function destination(info, nowMs) {
  if (!info || typeof info !== "object") return null;
  const plan = info.transit ? planTransit(info.transit, nowMs) : null;
  if (plan) return { system: plan.to, plan };
  if (typeof info.system === "string" && info.system) return { system: info.system, plan: null };
  return null;
}

// Following the ship (page level, survives view changes): where the ship is, transits in
// progress (a `jump` or `elsewhere` message, or /api/player's transit after a reload), and an
// autopilot request waiting until the page is connected to the ship's system.
import { seatStorageKey } from "./net.js";
import { showToast } from "./hud.js";
import { currentSession } from "./session.js";
import { locateShip } from "./shipLocation.js";
import hook from "./testHook.js";
import { destination, planTransit } from "./transit.js";
import { hideTransit, showTransit } from "./transitOverlay.js";

const state = {
  system: null, // the ship's system as far as the page knows
  transit: null, // plan (transit.js) while the ship is between systems
  routeTo: null, // autopilot destination to send once joined to the ship's system
  timer: null,
};
let rebuild = () => {}; // main.js: rebuild the current view (a new login)

Object.assign(hook, { shipSystem: null, transit: null, transits: 0, arrivals: 0, located: null, autopilotRequest: null,
  lastJump: null });

export function configure(opts) {
  if (opts.rebuild) rebuild = opts.rebuild;
}

export function shipSystem() {
  return state.system;
}

export function inTransit() {
  return state.transit;
}

function sync() {
  hook.shipSystem = state.system;
  hook.transit = state.transit ? { ...state.transit, route: state.transit.route.slice() } : null;
  hook.autopilotRequest = state.routeTo;
}

/** Open the system view of `id` (no-op when already there). */
export function goToSystem(id) {
  const hash = `#/system/${encodeURIComponent(id)}`;
  if (location.hash !== hash) location.hash = hash;
}

/** The page joined `id` with its ship: that is where the ship is. */
export function shipJoined(id) {
  state.system = id;
  if (state.transit && state.transit.to === id) endTransit(false);
  sync();
}

/** The ship is between systems (`plan` from transit.js): overlay, then join `plan.to`. */
export function startTransit(plan) {
  clearTimeout(state.timer);
  state.transit = plan;
  state.system = null;
  hook.transits += 1;
  try {
    sessionStorage.removeItem(seatStorageKey(plan.to)); // a fresh join there, no resume
  } catch {
    /* storage disabled */
  }
  showTransit(plan);
  sync();
  state.timer = setTimeout(() => endTransit(true), Math.max(0, plan.arriveAt - Date.now()));
}

function endTransit(arrived) {
  clearTimeout(state.timer);
  const plan = state.transit;
  state.transit = null;
  hideTransit();
  if (!plan) return;
  state.system = plan.to;
  if (arrived) hook.arrivals += 1;
  sync();
  if (!arrived) return;
  if (hook.view === "galaxy" && !state.routeTo) showToast(`Your ship arrived in ${plan.to}.`, 3000);
  else goToSystem(plan.to);
}

/** Where to go after `elsewhere` ({system, transit}) or /api/player; false when unknown. */
export function follow(info) {
  const dest = destination(info, Date.now());
  if (!dest) return false;
  if (dest.plan) startTransit(dest.plan);
  else {
    state.system = dest.system;
    sync();
    goToSystem(dest.system);
  }
  return true;
}

/** A `jump` message: the ship left for `payload.to`. */
export function jumped(payload) {
  const plan = planTransit(payload, Date.now());
  if (plan) startTransit(plan);
  return plan;
}

/**
 * Look the ship up (/api/auth/me, /api/player/{id}) with the stored token, if there is one.
 * `navigate`: go there. Resolves the record, null (no token or a pilot who never flew), or
 * undefined when the lookup failed.
 */
export async function relocate({ navigate = true } = {}) {
  const session = currentSession();
  if (!session) return null;
  let info;
  try {
    info = await locateShip(session.token);
  } catch {
    return undefined;
  }
  hook.located = info;
  if (!info) return null;
  if (!navigate) {
    state.system = info.system || state.system;
    sync();
    return info;
  }
  if (!state.transit || !info.transit) follow(info);
  return info;
}

/** Autopilot to `to`: sent by the system view of the ship's system once joined. */
export function requestRoute(to) {
  state.routeTo = to;
  sync();
  if (state.transit) return; // joins the next system when it arrives, then sends it
  if (state.system) goToSystem(state.system);
}

/** The pending autopilot destination for a view joined to `systemId` (taken once), or null. */
export function takeRouteRequest(systemId) {
  if (!state.routeTo || state.system !== systemId) return null;
  const to = state.routeTo;
  state.routeTo = null;
  sync();
  return to;
}

/** A new login (account or guest): forget the old pilot, rebuild the view for the new one. */
export async function loginChanged() {
  clearTimeout(state.timer);
  Object.assign(state, { system: null, transit: null, routeTo: null });
  hideTransit();
  sync();
  const info = await relocate({ navigate: false });
  if (info && (info.system || info.transit)) follow(info);
  rebuild();
}

// Client-side prediction of the player's own ship (pure, no I/O).
//
// Frames show where the room had the ship at the frame's game time; commands sent since and
// not yet acknowledged (`seq > ack`) will change its course. `predictShip` replays them on
// top of the latest frame: the ship flies in a straight line at SHIP_SPEED toward its current
// target (the latest acknowledged move_to while the frame says it is moving), from each
// pending command's issue time on toward that command's target, up to now. Acks reconcile:
// acknowledged commands leave the pending list and are in the frame.
//
// `Smoother` hides the small jumps a new frame causes (the prediction runs ahead of the room by
// the network latency): the difference is kept as an offset that decays in ~0.1 s.
import { SHIP_DESTROYED, SHIP_IN_COMBAT, SHIP_MOVING, SHIP_SPEED } from "./protocol.generated.js";

const ARRIVED = 1e-6;

/** Move (x, y) toward target (tx, ty) for `dt` seconds at `speed`; returns [x, y, arrived]. */
export function advance(x, y, tx, ty, dt, speed = SHIP_SPEED) {
  const dx = tx - x;
  const dy = ty - y;
  const d = Math.hypot(dx, dy);
  const step = speed * Math.max(0, dt);
  if (d <= ARRIVED || step >= d) return [tx, ty, true];
  return [x + (dx / d) * step, y + (dy / d) * step, false];
}

/**
 * The predicted state of the own ship at game time `now`.
 *
 * - `server`: `{x, y, flags}` of the ship in the latest frame, at game time `serverTime`;
 * - `pending`: sent, unacknowledged move commands `[{payload: {x, y}, at}]` oldest first
 *   (`at`: game time the command was sent);
 * - `acked`: the target `{x, y}` of the latest acknowledged move_to, or null if unknown.
 *
 * Returns `{x, y, moving, dx, dy}` (dx, dy: direction of flight, zero at rest), or null when
 * the ship moves toward a target this client does not know, or while it is in combat or
 * destroyed (the room moves it by combat steering, or not at all): then draw the frames as
 * they are.
 */
export function predictShip(server, serverTime, now, pending = [], acked = null, speed = SHIP_SPEED) {
  if (!server) return null;
  if (server.flags & (SHIP_IN_COMBAT | SHIP_DESTROYED)) return null;
  let x = server.x;
  let y = server.y;
  let target = null;
  if (server.flags & SHIP_MOVING) {
    if (!acked) {
      if (!pending.length) return null;
    } else {
      target = { x: acked.x, y: acked.y };
    }
  }
  // Moving toward a target we do not know, with commands pending: count it at rest until the
  // first of them (an error of at most the latency's worth of flight, smoothed away later).
  let t = serverTime;
  for (const cmd of pending) {
    const at = Math.min(now, Math.max(+cmd.at || 0, serverTime));
    if (target && at > t) [x, y] = advance(x, y, target.x, target.y, at - t, speed);
    t = Math.max(t, at);
    const p = cmd.payload || cmd;
    if (Number.isFinite(+p.x) && Number.isFinite(+p.y)) target = { x: +p.x, y: +p.y };
  }
  let moving = false;
  let dx = 0;
  let dy = 0;
  if (target) {
    dx = target.x - x;
    dy = target.y - y;
    let arrived;
    [x, y, arrived] = advance(x, y, target.x, target.y, now - t, speed);
    moving = !arrived;
    if (!moving) dx = dy = 0;
  }
  return { x, y, moving, dx, dy };
}

/** Exponentially decaying display offset that turns prediction jumps into short glides. */
export class Smoother {
  constructor({ tau = 0.1, snap = 120 } = {}) {
    this.tau = tau; // seconds
    this.snap = snap; // jumps larger than this (world units) are not smoothed
    this.ox = 0;
    this.oy = 0;
    this.last = null; // last raw position {x, y}
  }

  reset() {
    this.ox = this.oy = 0;
    this.last = null;
  }

  /**
   * The displayed position for the raw (predicted or interpolated) position `(x, y)` after
   * `dt` seconds; `jumped`: the raw position may have jumped since the last call (a frame was
   * applied or the source changed), so the difference is absorbed into the offset.
   */
  update(x, y, dt, jumped) {
    if (jumped && this.last) {
      this.ox += this.last.x - x;
      this.oy += this.last.y - y;
      if (Math.hypot(this.ox, this.oy) > this.snap) this.ox = this.oy = 0;
    }
    const k = Math.exp(-Math.max(0, dt) / this.tau);
    this.ox *= k;
    this.oy *= k;
    if (Math.abs(this.ox) < 1e-3 && Math.abs(this.oy) < 1e-3) this.ox = this.oy = 0;
    this.last = { x, y };
    return { x: x + this.ox, y: y + this.oy };
  }
}

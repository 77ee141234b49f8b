// Snapshot interpolation: frames arrive at TICK_RATE Hz; remote ships are drawn
// INTERP_DELAY seconds in the past, interpolated linearly between the two frames whose
// `time` straddles the render time. A ship that is new (absent from the older frame) or
// that jumped farther than it could fly is snapped to its newest position.
import { SHIP_SPEED, TICK_RATE } from "./protocol.generated.js";

export const INTERP_DELAY = 0.1; // seconds
const BUFFER_SECONDS = 1.0;

/**
 * Estimates the server's game time from frame arrivals so that time advances smoothly
 * between frames (for ships and planets alike).
 */
export class GameClock {
  constructor() {
    this.offset = 0; // game time - local seconds
    this.ready = false;
    this.last = -Infinity;
  }

  reset() {
    this.ready = false;
    this.last = -Infinity;
  }

  /** A frame (or welcome) with game time `time` arrived at local time `nowMs`. */
  observe(time, nowMs = performance.now()) {
    const sample = time - nowMs / 1000;
    if (!this.ready || Math.abs(sample - this.offset) > 1) {
      this.offset = sample;
      this.ready = true;
      this.last = -Infinity; // allow a jump after a resync
    } else {
      this.offset += (sample - this.offset) * 0.1;
    }
  }

  /** Estimated current game time; never goes backwards except after a resync. */
  now(nowMs = performance.now()) {
    const t = nowMs / 1000 + this.offset;
    if (t < this.last) return this.last;
    this.last = t;
    return t;
  }
}

/** Protocol rows `[id, x, y, flags]` (+ names Map id -> name) as a Map id -> {x, y, flags, name}. */
export function rowsToMap(rows, names = null) {
  const ships = new Map();
  for (const row of rows || []) {
    if (!Array.isArray(row) || row.length < 3) continue;
    const [id, x, y, flags = 0] = row;
    ships.set(id, { x: +x, y: +y, flags: flags | 0, name: names ? String(names.get(id) ?? "") : "" });
  }
  return ships;
}

/** Buffer of recent frames, each `{time, ships: Map<id, {x, y, flags, name}>}`. */
export class SnapshotBuffer {
  constructor({ delay = INTERP_DELAY, seconds = BUFFER_SECONDS } = {}) {
    this.delay = delay;
    this.seconds = seconds;
    this.frames = [];
  }

  reset() {
    this.frames = [];
  }

  get latest() {
    return this.frames.length ? this.frames[this.frames.length - 1] : null;
  }

  /**
   * Add a snapshot: `ships` is a Map id -> {x, y, flags, name} (`WorldState.snapshot()`, not
   * mutated afterwards) or protocol rows `[id, x, y, flags]` with an optional `names` Map.
   */
  push(time, ships, names = null) {
    if (!(ships instanceof Map)) ships = rowsToMap(ships, names);
    const frame = { time: +time, ships };
    const last = this.latest;
    if (last && frame.time < last.time) {
      // out of order or the server's clock restarted: start over
      this.frames = [];
    } else if (last && frame.time === last.time) {
      this.frames.pop(); // same tick twice: keep the newer copy
    }
    this.frames.push(frame);
    const horizon = frame.time - this.seconds;
    while (this.frames.length > 2 && this.frames[1].time <= horizon) this.frames.shift();
    return frame;
  }

  /**
   * Ship states at game time `t` (usually clock.now() - delay): Map id -> {x, y, flags,
   * name, moving}. Ships of the newer straddling frame only.
   */
  sample(t) {
    const out = new Map();
    const frames = this.frames;
    if (!frames.length) return out;
    let a = frames[0];
    let b = frames[0];
    if (t >= frames[frames.length - 1].time) {
      a = b = frames[frames.length - 1]; // no newer data: hold the newest positions
    } else if (t > frames[0].time) {
      for (let i = 1; i < frames.length; i++) {
        if (frames[i].time >= t) {
          a = frames[i - 1];
          b = frames[i];
          break;
        }
      }
    }
    const span = b.time - a.time;
    const alpha = span > 0 ? Math.min(1, Math.max(0, (t - a.time) / span)) : 1;
    const maxStep = SHIP_SPEED * Math.max(span, 1 / TICK_RATE) * 1.5 + 1;
    for (const [id, s] of b.ships) {
      const p = a.ships.get(id);
      if (!p || a === b) {
        out.set(id, { ...s, dx: 0, dy: 0 });
        continue;
      }
      const dx = s.x - p.x;
      const dy = s.y - p.y;
      if (Math.hypot(dx, dy) > maxStep) {
        out.set(id, { ...s, dx: 0, dy: 0 }); // teleported: snap
        continue;
      }
      out.set(id, { x: p.x + dx * alpha, y: p.y + dy * alpha, flags: s.flags, name: s.name, dx, dy });
    }
    return out;
  }
}

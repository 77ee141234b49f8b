// Combat effects from the frames' `events` (pure): `[0, attacker, target, damage]` a shot
// (drawn as a line from attacker to target for SHOT_SECONDS), `[1, ship, -1, 0]` a ship
// destroyed (an expanding flash at the ship for BOOM_SECONDS). Times in seconds, any clock.
import { EVENT_ATTACK, EVENT_DESTROYED } from "./protocol.generated.js";

export const SHOT_SECONDS = 0.2;
export const BOOM_SECONDS = 1.2;
export const BOOM_RADIUS = 60; // world units at the end of the flash
/** At most this many effects alive (a big fight must not grow without bound). */
export const MAX_EFFECTS = 200;

export class Effects {
  constructor() {
    this.list = []; // {kind: "shot"|"boom", a, b, start, end}
    this.shots = 0; // counters since creation (for the test hook)
    this.explosions = 0;
  }

  /** Add the effects of one frame's events, seen at `now`. Unknown kinds are ignored. */
  addEvents(events, now) {
    for (const e of events || []) {
      if (!Array.isArray(e) || e.length < 2) continue;
      if (e[0] === EVENT_ATTACK && e.length >= 3) {
        this.list.push({ kind: "shot", a: e[1], b: e[2], start: now, end: now + SHOT_SECONDS });
        this.shots += 1;
      } else if (e[0] === EVENT_DESTROYED) {
        this.list.push({ kind: "boom", a: e[1], b: null, start: now, end: now + BOOM_SECONDS });
        this.explosions += 1;
      }
    }
    if (this.list.length > MAX_EFFECTS) this.list.splice(0, this.list.length - MAX_EFFECTS);
  }

  /** The effects alive at `now` (expired ones are dropped). */
  active(now) {
    this.list = this.list.filter((f) => f.end > now);
    return this.list;
  }
}

/** 0 at the start of an effect, 1 at its end. */
export function phase(effect, now) {
  const d = effect.end - effect.start;
  return d > 0 ? Math.min(1, Math.max(0, (now - effect.start) / d)) : 1;
}

/** An explosion's radius and opacity at `now`: grows fast (ease-out), fades linearly. */
export function boomLook(effect, now, radius = BOOM_RADIUS) {
  const t = phase(effect, now);
  return { radius: radius * (1 - (1 - t) * (1 - t)), alpha: 1 - t };
}

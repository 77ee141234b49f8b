// The room's state as the client knows it, built from protocol v2 frames (pure, no I/O):
// a keyframe (`base === null`) replaces everything; a delta applies only on top of the frame
// it was computed against (`base === tick`), else it is ignored and the caller asks for a
// keyframe with `resync`. Ship rows are `[id, x, y, flags]`; names come in `names` pairs;
// hit points (solar systems) in `hp` rows `[id, hp, max_hp]` like ships (changed ones in a
// delta, all in a keyframe); combat `events` of the latest frame are kept in `events`.

/** Results of `WorldState.apply`. */
export const APPLIED_KEYFRAME = "keyframe";
export const APPLIED_DELTA = "delta";
/** A delta that does not follow the state: ignored; send `resync` (first gap only). */
export const NEED_RESYNC = "resync";
/** A delta ignored while a keyframe is already on its way (resync sent). */
export const IGNORED = "ignored";

/** Seconds after which an unanswered resync is asked again. */
export const RESYNC_RETRY = 2.0;

function validRow(row) {
  return Array.isArray(row) && row.length >= 3 && Number.isFinite(+row[1]) && Number.isFinite(+row[2]);
}

export class WorldState {
  constructor() {
    this.ships = new Map(); // id -> {x, y, flags}
    this.names = new Map(); // id -> name
    this.hp = new Map(); // id -> {hp, max} (solar systems only)
    this.events = []; // combat events of the latest frame applied: [kind, a, b, damage]
    this.tick = null; // tick of the last frame applied (null: no keyframe yet on this socket)
    this.time = 0; // its game time
    this.ack = 0; // the latest ack received
    this.keyframes = 0;
    this.deltas = 0;
    this.gaps = 0; // deltas ignored because their base was not our tick
    this.resyncAt = null; // time a resync was asked (null: none outstanding)
  }

  /** A new socket: keep showing the ships, but accept deltas again only after a keyframe. */
  invalidate() {
    this.tick = null;
    this.resyncAt = null;
  }

  /** Forget everything (another room). */
  clear() {
    this.ships.clear();
    this.names.clear();
    this.hp.clear();
    this.events = [];
    this.invalidate();
    this.time = 0;
    this.ack = 0;
  }

  get synced() {
    return this.tick !== null;
  }

  /**
   * Apply one frame payload `{tick, ack, base, time, ships, removed, names}` received at
   * `now` (seconds, any clock; used to repeat unanswered resyncs). Returns APPLIED_KEYFRAME,
   * APPLIED_DELTA, NEED_RESYNC (send a resync) or IGNORED.
   */
  apply(frame, now = 0) {
    const tick = Number(frame.tick);
    const ack = Number(frame.ack);
    if (Number.isFinite(ack) && ack > this.ack) this.ack = ack; // acks are valid in any frame
    const base = frame.base === undefined ? null : frame.base;
    if (base !== null) {
      if (this.tick === null || base !== this.tick) {
        this.gaps += 1;
        if (this.resyncAt === null || now - this.resyncAt >= RESYNC_RETRY) {
          this.resyncAt = now;
          return NEED_RESYNC;
        }
        return IGNORED;
      }
    } else {
      this.ships.clear();
      this.names.clear();
      this.hp.clear();
      this.resyncAt = null;
    }
    for (const row of frame.ships || []) {
      if (!validRow(row)) continue;
      this.ships.set(row[0], { x: +row[1], y: +row[2], flags: row[3] | 0 });
    }
    for (const row of frame.hp || []) {
      if (!Array.isArray(row) || row.length < 3 || !Number.isFinite(+row[1]) || !Number.isFinite(+row[2])) continue;
      this.hp.set(row[0], { hp: +row[1], max: +row[2] });
    }
    for (const id of frame.removed || []) {
      this.ships.delete(id);
      this.names.delete(id);
      this.hp.delete(id);
    }
    for (const pair of frame.names || []) {
      if (Array.isArray(pair) && pair.length >= 2) this.names.set(pair[0], String(pair[1] ?? ""));
    }
    this.events = Array.isArray(frame.events) ? frame.events.filter((e) => Array.isArray(e) && e.length >= 4) : [];
    this.tick = Number.isFinite(tick) ? tick : this.tick;
    if (Number.isFinite(+frame.time)) this.time = +frame.time;
    if (base === null) this.keyframes += 1;
    else this.deltas += 1;
    return base === null ? APPLIED_KEYFRAME : APPLIED_DELTA;
  }

  name(id) {
    return this.names.get(id) ?? "";
  }

  /** Hit points `{hp, max}` of ship `id`, or null when unknown (a game, or not sent yet). */
  hitPoints(id) {
    return this.hp.get(id) ?? null;
  }

  /** One ship `{x, y, flags, name}` or null. */
  ship(id) {
    const s = this.ships.get(id);
    return s ? { ...s, name: this.name(id) } : null;
  }

  /** A copy of every ship: Map id -> {x, y, flags, name} (for the interpolation buffer). */
  snapshot() {
    const out = new Map();
    for (const [id, s] of this.ships) out.set(id, { x: s.x, y: s.y, flags: s.flags, name: this.name(id) });
    return out;
  }

  /** Every ship as a plain object keyed by id (for window.starhold). */
  toPlain() {
    const out = {};
    for (const [id, s] of this.ships) {
      out[id] = { x: s.x, y: s.y, flags: s.flags, name: this.name(id) };
      const hp = this.hp.get(id);
      if (hp) Object.assign(out[id], { hp: hp.hp, maxHp: hp.max });
    }
    return out;
  }
}

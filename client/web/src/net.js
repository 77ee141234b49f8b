// WebSocket client for one system or game (protocol v2, docs/protocol.md): a token on the URL,
// binary msgpack envelopes [type, seq, payload], join with the seat token of the last welcome
// so that a reconnection resumes the seat, keyframes and deltas applied to a WorldState
// (resync on a gap), a queue of commands issued while offline (flushed after the rejoin,
// after the unacknowledged ones, resent), a client-side rate limit below the
// server's, a heartbeat, and partysocket-like reconnection (1-5 s, x1.3, capped at 10 s).
import { Decoder, Encoder } from "@msgpack/msgpack";
import {
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_NORMAL,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_RATE_LIMITED,
  CLOSE_REPLACED,
  CLOSE_ROOM_FULL,
  CLOSE_ROOM_UNAVAILABLE,
  CLOSE_UNAUTHORIZED,
  CLOSE_UNKNOWN_ROOM,
  ERR_RATE_LIMITED,
  ERR_ROOM_BUSY,
  ERR_UNAUTHORIZED,
  ERROR,
  FRAME,
  JOIN,
  MAX_MESSAGE_BYTES,
  MAX_NAME_LENGTH,
  MAX_SEAT_TOKEN_LENGTH,
  MOVE_TO,
  ATTACK,
  PING,
  PONG,
  RESYNC,
  WELCOME,
} from "./protocol.generated.js";
import { CLOSE_ELSEWHERE, CLOSE_JUMPED } from "./gameProtocol.js";
import { Backoff, BACKOFF, backoffDelay, randomBackoffBase } from "./backoff.js";
import { CommandQueue } from "./commandQueue.js";
import { TokenBucket } from "./rateLimit.js";
import { NEED_RESYNC, WorldState } from "./worldState.js";

export { BACKOFF, backoffDelay, randomBackoffBase };

/** Close codes after which reconnecting automatically would not help (4001 first gets a new
 * token; a 1000 from the server is reconnected: only our own 1000, "I leave", is final). */
export const NO_RECONNECT_CODES = new Set([
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_ROOM_FULL,
  CLOSE_UNKNOWN_ROOM,
  CLOSE_REPLACED,
  CLOSE_RATE_LIMITED,
]);

/** Close codes that mean "your ship is in another system" (docs/protocol.md §10): no reconnection, not an
 * error; the `elsewhere` or `jump` message before them says where to go. */
export const MOVED_CODES = new Set([CLOSE_ELSEWHERE, CLOSE_JUMPED]);

/** Close codes after which the first reconnection waits at most QUICK_RETRY_MS: a 4503 comes from
 * a room that is back (a new activation after a crash or its node's loss; docs/protocol.md §5). */
export const QUICK_RETRY_CODES = new Set([CLOSE_ROOM_UNAVAILABLE]);
export const QUICK_RETRY_MS = 500;

/** Close code this client uses when it drops a socket to reconnect (the seat stays held;
 * 1000 would release it). */
export const CLOSE_CLIENT_RECONNECT = 4100;

const CLOSE_REASONS = {
  1000: "closed by server",
  1001: "server shutting down",
  1006: "connection lost",
  1009: "message too big",
  1011: "server error",
  1013: "server busy",
  4000: "protocol error",
  4001: "not logged in",
  4003: "the game is full",
  4004: "unknown system",
  4008: "connection too slow",
  4009: "opened in another tab or window",
  4029: "rate limited",
  4503: "room unavailable",
  4110: "your ship is elsewhere",
  4111: "your ship jumped",
};

const CONNECT_TIMEOUT_MS = 10000;
/**
 * While a join waits for its welcome, ping the gateway this often. A join can take long when
 * the room has to be started or woken on a busy server; the socket is only given up when the
 * gateway stops answering (no pong within PONG_TIMEOUT_MS), never because the room is slow
 * (the gateway itself closes with 4503 when it cannot reach the room).
 */
export const JOIN_PING_MS = 5000;
/** Socket closes remembered in `closes` (oldest first). */
export const MAX_CLOSES_KEPT = 10;
/** No message for this long (frames stop while everything rests): send a ping. */
export const IDLE_PING_MS = 15000;
/** No message for this long after that ping: the socket is dead. */
export const PONG_TIMEOUT_MS = 10000;
/** Delay before resending a command the server dropped (error 9 or 10). */
const DROPPED_RETRY_MS = 1000;
/** 4001 closes in a row (each followed by a new guest login) before giving up. */
const MAX_AUTH_RETRIES = 2;

const SEAT_RE = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_SEAT_TOKEN_LENGTH}}$`);

export function isValidName(name) {
  // Mirrors the server: 1-MAX_NAME_LENGTH code points, printable (letters, marks, numbers,
  // punctuation, symbols and plain spaces), not blank.
  return (
    typeof name === "string" &&
    name.trim().length > 0 &&
    [...name].length <= MAX_NAME_LENGTH &&
    /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u.test(name)
  );
}

export function closeReason(code, reason) {
  if (reason) return reason;
  return CLOSE_REASONS[code] || `closed (${code})`;
}

/** The WebSocket URL of a system (without its token). */
export function systemSocketUrl(systemId, loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/api/systems/${encodeURIComponent(systemId)}/ws`;
}

/** `url` with `?token=` (or `&token=`) appended; `url` unchanged without a token. */
export function withToken(url, token) {
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

/** sessionStorage key of the seat token for a room (a reload within the seat hold resumes). */
export function seatStorageKey(roomKey) {
  return `starhold.seat.${roomKey}`;
}

function sessionStore() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null;
  }
}

/**
 * One logical connection to a room, surviving socket reconnections.
 *
 * `status.state`: "connecting" (getting a token, opening the socket), "open" (join sent),
 * "joined", "reconnecting" (waiting until `retryAt`), "closed" (final, see `code`/`reason`),
 * "moved" (closed 4110/4111: the ship is in another system; final, no reconnection).
 * `status.connection` summarises it for people: "connected" | "connecting" | "reconnecting" |
 * "offline".
 *
 * Options: `url` (without token), `getToken({force})` (async, a token string or null),
 * `invalidateToken(token)` (the server refused it), `name` (string or function), handlers
 * `onStatus`, `onWelcome(payload, seq, info)`, `onFrame(payload, result)`,
 * `onServerError(payload, seq)`, `onPong`; `now()` (game time in seconds, stamps commands for
 * prediction); `WebSocket`, `random`, `storage` (sessionStorage-like, for the seat) for tests.
 */
export class SystemConnection {
  constructor(systemId, opts = {}) {
    this.systemId = systemId;
    const name = opts.name;
    this.getName = typeof name === "function" ? name : () => name;
    this.getToken = opts.getToken || (async () => null);
    this.invalidateToken = opts.invalidateToken || (() => {});
    this.handlers = {
      status: opts.onStatus || (() => {}),
      welcome: opts.onWelcome || (() => {}),
      frame: opts.onFrame || (() => {}),
      error: opts.onServerError || (() => {}),
      pong: opts.onPong || (() => {}),
      message: opts.onMessage || (() => {}),
      moved: opts.onMoved || (() => {}),
    };
    this.url = opts.url || systemSocketUrl(systemId);
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.now = opts.now || (() => Date.now() / 1000);
    this.storage = opts.storage === undefined ? sessionStore() : opts.storage;

    this.encoder = new Encoder();
    this.decoder = new Decoder();
    this.world = new WorldState();
    this.queue = new CommandQueue({ limit: opts.queueLimit });
    this.bucket = new TokenBucket({ now: Date.now() / 1000 });
    this.backoff = new Backoff({ random: opts.random || Math.random });
    this.ws = null;
    this.seq = 0; // last sequence number sent (monotonic across reconnections)
    this.seat = this._loadSeat(); // seat token of the last welcome
    this.welcome = null; // last welcome payload
    this.shipId = null;
    this.player = null;
    this.resumed = false;
    this.welcomes = 0;
    this.reconnects = 0; // welcomes after the first
    this.resyncs = 0; // resync messages sent
    this.authFailures = 0; // 4001 closes since the last welcome
    this.freshToken = false; // the next connection needs a new token
    this.token = null; // token of the current socket
    this.lastClose = null; // {code, reason} of the last socket close
    this.closes = []; // {code, reason} of the last MAX_CLOSES_KEPT socket closes, oldest first
    this.lastCommand = null; // the latest command given to send() (its seq once sent)
    this.stopped = true;
    this.generation = 0; // bumped by every new attempt: stale async callbacks check it
    this.status = { state: "closed", connection: "offline", text: "offline", retryAt: 0, code: 0, reason: "" };
    this._timers = {};
  }

  start() {
    this.stopped = false;
    this._open();
  }

  /** Close for good (leaving the view): close 1000, the seat is released. No reconnection. */
  stop(reason = "left") {
    this.stopped = true;
    this.generation += 1;
    this._clearTimers();
    this._detach(CLOSE_NORMAL, reason);
    this._saveSeat(null);
    this._setStatus("closed", `offline: ${reason}`, { reason });
  }

  /** Reconnect right away (after a final close, or to skip the backoff wait). */
  reconnectNow() {
    this._clearTimers();
    this._detach(CLOSE_CLIENT_RECONNECT, "reconnect");
    this.stopped = false;
    this.authFailures = 0;
    this._open();
  }

  get joined() {
    return this.status.state === "joined" && !!this.ws;
  }

  /**
   * Send a command. It goes to the queue and is sent at once when joined (and the rate limit
   * allows), else after the next welcome. Returns the seq it was sent with, or null if queued.
   */
  send(type, payload = {}) {
    const cmd = this.queue.push(type, payload, this.now());
    this.lastCommand = cmd;
    this._drain();
    return cmd.seq ?? null;
  }

  moveTo(x, y) {
    return this.send(MOVE_TO, { x, y });
  }

  /** Attack ship `target` (solar systems, docs/protocol.md §9): queued and acked like move_to. */
  attack(target) {
    return this.send(ATTACK, { target });
  }

  /**
   * Send at once, outside the command queue (chat: never resent after a reconnection), when
   * joined and the rate limit allows; returns the seq, or null when not sent.
   */
  sendNow(type, payload = {}) {
    if (!this.joined || !this.bucket.take(Date.now() / 1000)) return null;
    return this._send(type, payload);
  }

  /** Ask for a keyframe (not queued: only useful on a live socket). */
  resync() {
    if (!this.joined) return null;
    this.resyncs += 1;
    return this._sendNow(RESYNC, {});
  }

  /** The network came back (window "online"): skip the rest of the backoff wait. */
  wake() {
    if (this.status.state === "reconnecting") this.reconnectNow();
  }

  /** Pings are not queued: they only make sense on a live socket. */
  ping() {
    return this.joined ? this._sendNow(PING, {}) : null;
  }

  // ---- internals ----

  _loadSeat() {
    try {
      const seat = this.storage && this.storage.getItem(seatStorageKey(this.systemId));
      return seat && SEAT_RE.test(seat) ? seat : null;
    } catch {
      return null;
    }
  }

  _saveSeat(seat) {
    if (!this.storage) return;
    try {
      if (seat) this.storage.setItem(seatStorageKey(this.systemId), seat);
      else this.storage.removeItem(seatStorageKey(this.systemId));
    } catch {
      /* storage disabled: the seat only lives in memory */
    }
  }

  _setStatus(state, text, extra = {}) {
    const connection =
      state === "joined"
        ? "connected"
        : state === "closed"
          ? "offline"
          : state === "reconnecting"
            ? "reconnecting"
            : state === "moved"
              ? "transit"
              : "connecting";
    this.status = { state, connection, text, retryAt: 0, code: 0, reason: "", ...extra };
    this.handlers.status(this.status);
  }

  _clearTimers() {
    for (const t of Object.values(this._timers)) clearTimeout(t);
    this._timers = {};
  }

  _timer(name, ms, fn) {
    clearTimeout(this._timers[name]);
    this._timers[name] = setTimeout(() => {
      delete this._timers[name];
      fn();
    }, ms);
  }

  _open() {
    const gen = ++this.generation;
    const again = this.welcomes > 0 || this.backoff.attempt > 0;
    this._setStatus("connecting", again ? "reconnecting…" : "connecting…");
    const force = this.freshToken;
    Promise.resolve()
      .then(() => this.getToken({ force }))
      .then(
        (token) => {
          if (gen !== this.generation || this.stopped) return;
          this.freshToken = false;
          this.token = token || null;
          this._openSocket(gen);
        },
        (err) => {
          if (gen !== this.generation || this.stopped) return;
          this._lost(0, `login failed: ${err && err.message ? err.message : err}`);
        },
      );
  }

  _openSocket(gen) {
    let ws;
    try {
      ws = new this.WebSocket(withToken(this.url, this.token));
    } catch (err) {
      this._lost(1006, String(err && err.message ? err.message : err));
      return;
    }
    ws.binaryType = "arraybuffer";
    ws.onopen = () => gen === this.generation && this._onOpen();
    ws.onmessage = (ev) => gen === this.generation && this._onMessage(ev);
    ws.onclose = (ev) => gen === this.generation && this._onClose(ev);
    ws.onerror = () => {}; // a close event always follows
    this.ws = ws;
    this._timer("connect", CONNECT_TIMEOUT_MS, () => this._drop("connect timeout"));
  }

  _onOpen() {
    clearTimeout(this._timers.connect);
    this._setStatus("open", "joining…");
    const payload = {};
    const name = this.getName();
    if (isValidName(name)) payload.name = name.trim();
    if (this.seat) payload.resume = this.seat;
    if (this.welcomes === 0) {
      this._sendNow(JOIN, payload);
    } else {
      // A rejoin is numbered with the last ack seen: if the seat is not resumed (the hold
      // expired), the fresh seat's ack covers nothing the room did not apply, and unapplied
      // commands are resent above it (CommandQueue.rejoined).
      this._sendNow(JOIN, payload, Math.max(1, this.world.ack));
    }
    this._awaitWelcome();
  }

  /** Until the welcome: ping every JOIN_PING_MS, drop the socket if a ping goes unanswered. */
  _awaitWelcome() {
    this._timer("join", JOIN_PING_MS, () => {
      this._sendNow(PING, {});
      this._timer("join", PONG_TIMEOUT_MS, () => this._drop("no answer from server"));
    });
  }

  _onMessage(ev) {
    if (!(ev.data instanceof ArrayBuffer)) return; // the protocol only uses binary frames
    let msg;
    try {
      msg = this.decoder.decode(new Uint8Array(ev.data));
    } catch {
      return;
    }
    if (!Array.isArray(msg) || msg.length !== 3) return;
    const [type, seq, payload] = msg;
    if (payload === null || typeof payload !== "object") return;
    if (this.status.state === "joined") this._heartbeat();
    else if (this.status.state === "open" && type !== WELCOME) this._awaitWelcome(); // the gateway is alive
    switch (type) {
      case WELCOME:
        this._onWelcome(seq, payload);
        break;
      case FRAME:
        this._onFrame(payload);
        break;
      case ERROR:
        if (payload.code === ERR_UNAUTHORIZED) this.freshToken = true;
        if ((payload.code === ERR_ROOM_BUSY || payload.code === ERR_RATE_LIMITED) && this.queue.retry(seq)) {
          // dropped before reaching the room: send it again a little later
          this._timer("drain", DROPPED_RETRY_MS, () => this._drain());
        }
        this.handlers.error(payload, seq);
        break;
      case PONG:
        this.handlers.pong(payload, seq);
        break;
      default:
        this.handlers.message(type, seq, payload); // the room's own types (jump, chat, ...)
        break;
    }
  }

  _onWelcome(seq, payload) {
    clearTimeout(this._timers.join);
    const resumed = payload.resumed === true;
    const ack = Number(payload.ack) || 0;
    this.welcome = payload;
    this.resumed = resumed;
    this.shipId = payload.ship;
    this.player = typeof payload.player === "string" ? payload.player : null;
    this.seat = typeof payload.seat === "string" && SEAT_RE.test(payload.seat) ? payload.seat : null;
    this._saveSeat(this.seat);
    this.seq = Math.max(this.seq, ack, Number(seq) || 0); // carry on above the ack
    if (this.welcomes > 0) this.reconnects += 1;
    this.welcomes += 1;
    this.backoff.reset();
    this.authFailures = 0;
    this.world.invalidate(); // the keyframe that follows replaces the ships
    this.world.ack = ack;
    const resent = this.queue.rejoined({ ack });
    this._setStatus("joined", "connected");
    this.handlers.welcome(payload, seq, { resumed, resent, reconnects: this.reconnects });
    this._heartbeat();
    this._drain();
  }

  _onFrame(payload) {
    const result = this.world.apply(payload, Date.now() / 1000);
    this.queue.ack(this.world.ack);
    if (result === NEED_RESYNC) this.resync();
    this.handlers.frame(payload, result);
  }

  /** Re-armed by every message: after IDLE_PING_MS of silence ping, then give up. */
  _heartbeat() {
    this._timer("idle", IDLE_PING_MS, () => {
      this.ping();
      this._timer("idle", PONG_TIMEOUT_MS, () => this._drop("no answer from server"));
    });
  }

  /** Send queued commands while joined and the rate limit allows; retry when it refills. */
  _drain() {
    if (!this.joined || this.ws.readyState !== 1) return;
    clearTimeout(this._timers.drain);
    while (this.queue.peek()) {
      const now = Date.now() / 1000;
      if (!this.bucket.take(now)) {
        this._timer("drain", Math.max(1, Math.ceil(this.bucket.wait(now) * 1000)), () => this._drain());
        return;
      }
      const cmd = this.queue.peek();
      const seq = this._send(cmd.type, cmd.payload);
      if (seq === null) {
        this.queue.outbox.shift(); // refused locally (too large): drop it
        continue;
      }
      cmd.at = this.now(); // when it started its way to the room (for prediction)
      this.queue.sent(seq);
    }
  }

  /** Send at once, outside the queue (join, resync, ping); counts against the rate limit. */
  _sendNow(type, payload, seq = null) {
    if (!this.ws || this.ws.readyState !== 1) return null;
    this.bucket.take(Date.now() / 1000, true);
    return this._send(type, payload, seq);
  }

  /** Encode and send with the next seq (or `seq`, which leaves the counter alone). */
  _send(type, payload, seq = null) {
    const explicit = seq !== null;
    if (!explicit) seq = this.seq + 1;
    const bytes = this.encoder.encode([type, seq, payload]);
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      // the server would close the socket with 1009: refuse locally instead
      this.handlers.error({ code: 0, message: `message too large (${bytes.byteLength} bytes)` }, seq);
      return null;
    }
    if (!explicit) this.seq = seq;
    this.ws.send(bytes);
    return seq;
  }

  /** Forget the current socket without waiting for its close handshake. */
  _detach(code, reason) {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  _drop(reason) {
    this._detach(CLOSE_CLIENT_RECONNECT, reason);
    this._lost(1006, reason);
  }

  _onClose(ev) {
    this.ws = null;
    this._lost(ev.code, ev.reason);
  }

  _lost(code, reason) {
    this._clearTimers();
    this.ws = null;
    if (this.stopped) return;
    const why = closeReason(code, reason);
    this.lastClose = { code, reason: why };
    this.closes.push(this.lastClose);
    if (this.closes.length > MAX_CLOSES_KEPT) this.closes.shift();
    if (MOVED_CODES.has(code)) {
      // The ship is in (or on its way to) another system: this connection is over. Its
      // commands were meant for this system: none of them may reach the next one.
      this.stopped = true;
      this.queue.clear();
      this.seat = null;
      this._saveSeat(null);
      this._setStatus("moved", why, { code, reason: why });
      this.handlers.moved(code, why);
      return;
    }
    if (code === CLOSE_UNAUTHORIZED) {
      this.invalidateToken(this.token);
      this.freshToken = true;
      this.authFailures += 1;
      if (this.authFailures <= MAX_AUTH_RETRIES) {
        // a new guest token, then straight back (the refusal was about the token, not load)
        this._setStatus("reconnecting", "logging in again…", { code, reason: why, retryAt: Date.now() });
        this._timer("retry", 0, () => this._open());
        return;
      }
    }
    if (code === CLOSE_UNAUTHORIZED || NO_RECONNECT_CODES.has(code)) {
      this._setStatus("closed", `offline: ${why}`, { code, reason: why });
      return;
    }
    let delay = this.backoff.next();
    if (QUICK_RETRY_CODES.has(code) && this.backoff.attempt === 1) delay = Math.round(this.backoff.random() * QUICK_RETRY_MS);
    const retryAt = Date.now() + delay;
    this._setStatus("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)}s`, { code, reason: why, retryAt });
    this._timer("retry", delay, () => this._open());
  }
}

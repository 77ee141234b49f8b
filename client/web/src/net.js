// WebSocket client for one system: binary msgpack envelopes [type, seq, payload],
// join with a per-system player key, input sequence numbers, a queue for commands sent
// while offline and reconnection with partysocket-like backoff.
import { Decoder, Encoder } from "@msgpack/msgpack";
import {
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_REPLACED,
  CLOSE_UNKNOWN_ROOM,
  ERROR,
  FRAME,
  JOIN,
  MAX_MESSAGE_BYTES,
  MAX_NAME_LENGTH,
  MAX_PLAYER_KEY_LENGTH,
  MAX_SEQ,
  MOVE_TO,
  PING,
  PONG,
  WELCOME,
} from "./protocol.generated.js";

/** Close codes after which reconnecting automatically would not help. */
export const NO_RECONNECT_CODES = new Set([
  CLOSE_UNKNOWN_ROOM,
  CLOSE_REPLACED,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_MESSAGE_TOO_BIG,
]);

const CLOSE_REASONS = {
  1000: "closed by server",
  1001: "server shutting down",
  1006: "connection lost",
  1009: "message too big",
  1011: "server error",
  4000: "protocol error",
  4004: "unknown system",
  4009: "replaced by another session",
  4503: "room unavailable",
};

/** Backoff: first delay uniform in [minDelay, maxFirstDelay], x growFactor per retry, capped. */
export const BACKOFF = { minDelay: 1000, maxFirstDelay: 5000, growFactor: 1.3, maxDelay: 10000 };
const CONNECT_TIMEOUT_MS = 10000;
const JOIN_TIMEOUT_MS = 10000;
const SILENCE_TIMEOUT_MS = 5000; // joined but no frame for this long: the socket is dead
const MAX_QUEUE = 100;

const PLAYER_KEY_RE = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_PLAYER_KEY_LENGTH}}$`);

/** Delay before reconnection attempt number `attempt` (0-based) given the outage's random base. */
export function backoffDelay(attempt, base) {
  return Math.min(BACKOFF.maxDelay, base * BACKOFF.growFactor ** attempt);
}

export function randomBackoffBase(random = Math.random) {
  return BACKOFF.minDelay + random() * (BACKOFF.maxFirstDelay - BACKOFF.minDelay);
}

export function playerStorageKey(systemId) {
  return `starhold.player.${systemId}`;
}

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

export function systemSocketUrl(systemId, loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/api/systems/${encodeURIComponent(systemId)}/ws`;
}

function safeStorage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: every page load gets a new ship
  }
}

/**
 * One logical connection to a system, surviving socket reconnections.
 *
 * Status states: "connecting" (socket opening), "open" (join sent, waiting for welcome),
 * "joined", "reconnecting" (waiting `retryAt`), "closed" (final, see `reason`).
 */
export class SystemConnection {
  constructor(systemId, opts = {}) {
    this.systemId = systemId;
    this.name = opts.name;
    this.handlers = {
      status: opts.onStatus || (() => {}),
      welcome: opts.onWelcome || (() => {}),
      frame: opts.onFrame || (() => {}),
      error: opts.onServerError || (() => {}),
      pong: opts.onPong || (() => {}),
    };
    this.url = opts.url || systemSocketUrl(systemId);
    this.storage = opts.storage === undefined ? safeStorage() : opts.storage;
    this.WebSocket = opts.WebSocket || window.WebSocket;

    this.encoder = new Encoder();
    this.decoder = new Decoder();
    this.ws = null;
    this.seq = 0; // last input sequence number sent (monotonic across reconnections)
    this.queue = []; // [type, payload] waiting for the next welcome
    this.shipId = null;
    this.playerKey = this._loadKey(systemId);
    this.canonicalId = null;
    this.attempt = 0;
    this.backoffBase = 0;
    this.stopped = false;
    this.status = { state: "connecting", text: "connecting", retryAt: 0, code: 0, reason: "" };
    this._timers = {};
  }

  start() {
    this.stopped = false;
    this._open();
  }

  /** Close for good (leaving the view). No reconnection. */
  stop(reason = "left") {
    this.stopped = true;
    this._clearTimers();
    this._detach(1000, reason);
    this._setStatus("closed", `closed: ${reason}`, { reason });
  }

  /** Reconnect right away (after a final close, or to skip the backoff wait). */
  reconnectNow() {
    this._clearTimers();
    this._detach(1000, "reconnect");
    this.stopped = false;
    this.attempt = 0;
    this._open();
  }

  get joined() {
    return this.status.state === "joined";
  }

  /**
   * Send a command; while not joined it is queued and flushed, in order, after the next
   * welcome. Returns the seq used, or null when queued.
   */
  send(type, payload = {}) {
    if (this.joined) return this._sendNow(type, payload);
    this.queue.push([type, payload]);
    if (this.queue.length > MAX_QUEUE) this.queue.shift();
    return null;
  }

  moveTo(x, y) {
    return this.send(MOVE_TO, { x, y });
  }

  /** Pings are not queued: they only make sense on a live socket. */
  ping() {
    return this.joined ? this._sendNow(PING, {}) : null;
  }

  // ---- internals ----

  _loadKey(systemId) {
    try {
      const key = this.storage && this.storage.getItem(playerStorageKey(systemId));
      return key && PLAYER_KEY_RE.test(key) ? key : null;
    } catch {
      return null;
    }
  }

  _saveKey(key) {
    if (!this.storage) return;
    const ids = new Set([this.systemId, this.canonicalId].filter(Boolean));
    for (const id of ids) {
      try {
        this.storage.setItem(playerStorageKey(id), key);
      } catch {
        /* quota or disabled storage: the key only lives for this page */
      }
    }
  }

  _setStatus(state, text, extra = {}) {
    this.status = { state, text, retryAt: 0, code: 0, reason: "", ...extra };
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
    this._setStatus("connecting", this.attempt ? `connecting (attempt ${this.attempt + 1})` : "connecting");
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (err) {
      this._lost(1006, String(err && err.message ? err.message : err));
      return;
    }
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this._onOpen();
    ws.onmessage = (ev) => this._onMessage(ev);
    ws.onclose = (ev) => this._onClose(ev);
    ws.onerror = () => {}; // a close event always follows
    this.ws = ws;
    this._timer("connect", CONNECT_TIMEOUT_MS, () => this._drop("connect timeout"));
  }

  _onOpen() {
    clearTimeout(this._timers.connect);
    this._setStatus("open", "joining");
    const payload = {};
    if (this.playerKey) payload.player = this.playerKey;
    if (isValidName(this.name)) payload.name = this.name.trim();
    this._sendNow(JOIN, payload);
    this._timer("join", JOIN_TIMEOUT_MS, () => this._drop("join timeout"));
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
    switch (type) {
      case WELCOME:
        this._onWelcome(seq, payload);
        break;
      case FRAME:
        this._watchdog();
        this.handlers.frame(payload, seq);
        break;
      case ERROR:
        this.handlers.error(payload, seq);
        break;
      case PONG:
        this.handlers.pong(payload, seq);
        break;
      default:
        break; // unknown server types are ignored (forward compatibility)
    }
  }

  _onWelcome(seq, payload) {
    clearTimeout(this._timers.join);
    this.shipId = payload.ship;
    this.canonicalId = payload.system && payload.system.id;
    if (typeof payload.player === "string") {
      this.playerKey = payload.player;
      this._saveKey(payload.player);
    }
    this.attempt = 0;
    this._setStatus("joined", "joined");
    this.handlers.welcome(payload, seq);
    this._watchdog();
    const queued = this.queue;
    this.queue = [];
    for (const [type, body] of queued) this._sendNow(type, body);
  }

  _watchdog() {
    this._timer("silence", SILENCE_TIMEOUT_MS, () => this._drop("no frames from server"));
  }

  _sendNow(type, payload) {
    if (!this.ws || this.ws.readyState !== 1) {
      this.queue.push([type, payload]);
      return null;
    }
    if (this.seq >= MAX_SEQ) this.seq = 0;
    const seq = ++this.seq;
    const bytes = this.encoder.encode([type, seq, payload]);
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      // the server would close the socket with 1009: refuse locally instead
      this.handlers.error({ code: 0, message: `message too large (${bytes.byteLength} bytes)` }, seq);
      return null;
    }
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
    this._detach(1000, reason);
    this._lost(1006, reason);
  }

  _onClose(ev) {
    this.ws = null;
    this._lost(ev.code, ev.reason);
  }

  _lost(code, reason) {
    this._clearTimers();
    if (this.stopped) return;
    const why = closeReason(code, reason);
    if (NO_RECONNECT_CODES.has(code)) {
      this._setStatus("closed", `closed: ${why}`, { code, reason: why });
      return;
    }
    if (this.attempt === 0) this.backoffBase = randomBackoffBase();
    const delay = backoffDelay(this.attempt, this.backoffBase);
    this.attempt += 1;
    const retryAt = Date.now() + delay;
    this._setStatus("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)}s`, { code, reason: why, retryAt });
    this._timer("retry", delay, () => this._open());
  }
}

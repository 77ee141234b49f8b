// Guest login: `POST /api/auth/guest {"name"}` -> `{token, expires, player, name, kind}`
// (docs/protocol.md, "Accounts and tokens"). The answer is kept in localStorage
// ("starhold.auth") until it expires; a new one is fetched when it has (or is about to), and
// when the server rejected it (close 4001). Every guest login is a new player (a new ship), so
// the stored token is reused for as long as it is good.

export const AUTH_STORAGE_KEY = "starhold.auth";
export const GUEST_URL = "/api/auth/guest";
/** A token this close to its expiry (seconds) is renewed before use. */
export const EXPIRY_MARGIN = 60;
const FALLBACK_NAME = "Pilot";

export class AuthError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "AuthError";
    this.status = status;
  }
}

/** The token answer if it has the documented shape, else null. */
export function parseTokenAnswer(body) {
  if (!body || typeof body !== "object") return null;
  const { token, expires, player, name, kind } = body;
  if (typeof token !== "string" || !token || !Number.isFinite(+expires)) return null;
  return {
    token,
    expires: +expires,
    player: typeof player === "string" ? player : "",
    name: typeof name === "string" ? name : "",
    kind: typeof kind === "string" ? kind : "guest",
  };
}

/** Whether `session` can be used at `now` (unix seconds) for at least `margin` more seconds. */
export function isUsable(session, now, margin = EXPIRY_MARGIN) {
  return !!session && typeof session.token === "string" && session.expires - margin > now;
}

function defaultStorage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // storage disabled: a guest login per page load
  }
}

export class GuestAuth {
  /**
   * `getName()`: the display name to log in with; `fetch`, `storage`, `now` (unix seconds)
   * are injectable for tests.
   */
  constructor({ getName = () => FALLBACK_NAME, fetch = globalThis.fetch?.bind(globalThis), storage, now, url = GUEST_URL } = {}) {
    this.getName = getName;
    this.fetch = fetch;
    this.storage = storage === undefined ? defaultStorage() : storage;
    this.now = now || (() => Date.now() / 1000);
    this.url = url;
    this.session = this._load();
    this.logins = 0; // guest logins made by this object
    this._pending = null;
  }

  _load() {
    try {
      const raw = this.storage && this.storage.getItem(AUTH_STORAGE_KEY);
      return raw ? parseTokenAnswer(JSON.parse(raw)) : null;
    } catch {
      return null;
    }
  }

  _save(session) {
    if (!this.storage) return;
    try {
      if (session) this.storage.setItem(AUTH_STORAGE_KEY, JSON.stringify(session));
      else this.storage.removeItem(AUTH_STORAGE_KEY);
    } catch {
      /* quota or disabled storage: the token only lives for this page */
    }
  }

  /** The stored session if it is still good, else null. Another tab may have renewed it. */
  current() {
    if (!isUsable(this.session, this.now())) this.session = this._load();
    return isUsable(this.session, this.now()) ? this.session : null;
  }

  /** A usable token: the stored one, or a new guest login (`force`: always a new login). */
  async token({ force = false } = {}) {
    if (!force) {
      const s = this.current();
      if (s) return s.token;
    }
    if (!this._pending) {
      this._pending = this._login().finally(() => {
        this._pending = null;
      });
    }
    return (await this._pending).token;
  }

  /** The server rejected `token` (close 4001): forget it unless it was already replaced. */
  invalidate(token) {
    if (this.session && (token === undefined || this.session.token === token)) {
      this.session = null;
      const stored = this._load();
      if (!stored || token === undefined || stored.token === token) this._save(null);
    }
  }

  /** Use `session` (a token answer from an account login or registration) from now on. */
  adopt(session) {
    this.session = session;
    this._save(session);
  }

  /** Forget the token (log out): the next `token()` is a new guest login (a new player). */
  logout() {
    this.session = null;
    this._save(null);
  }

  async _login() {
    if (!this.fetch) throw new AuthError("no fetch available");
    let name = String(this.getName() || "").trim() || FALLBACK_NAME;
    let answer = await this._post(name);
    if (answer.status === 400 && name !== FALLBACK_NAME) {
      name = FALLBACK_NAME; // the server refused the name: log in with a plain one
      answer = await this._post(name);
    }
    if (answer.status !== 200) throw new AuthError(`guest login failed: ${answer.error}`, answer.status);
    const session = parseTokenAnswer(answer.body);
    if (!session) throw new AuthError("guest login failed: malformed answer", answer.status);
    this.session = session;
    this.logins += 1;
    this._save(session);
    return session;
  }

  async _post(name) {
    let res;
    try {
      res = await this.fetch(this.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ name }),
      });
    } catch (err) {
      throw new AuthError(`guest login failed: ${err && err.message ? err.message : err}`);
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    const error = (body && body.error) || `${res.status} ${res.statusText || ""}`.trim();
    return { status: res.status, body, error };
  }
}

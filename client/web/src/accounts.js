// Accounts (pure + fetch): POST /api/auth/register {username, password, name?} (201) and
// POST /api/auth/login {username, password} (200) answer a token answer like the guest login
// (docs/protocol.md §8). Errors are turned into sentences a player understands.
import { parseTokenAnswer } from "./auth.js";

export const REGISTER_URL = "/api/auth/register";
export const LOGIN_URL = "/api/auth/login";
const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

/** A problem with the form's fields before asking the server, or null. */
export function checkCredentials({ username, password, name } = {}, { register = false } = {}) {
  if (!USERNAME_RE.test(username || "")) return "Username: 3-32 letters, digits, _ . or -.";
  const n = [...(password || "")].length;
  if (n < 8 || n > 256) return "Password: 8 to 256 characters.";
  if (register && name != null && name.trim() && [...name.trim()].length > 32) return "Display name: at most 32 characters.";
  return null;
}

/** A sentence for a failed answer: `status`, the JSON `body` ({error}) and `retryAfter` (s). */
export function accountErrorText(status, body, retryAfter = null) {
  const msg = body && typeof body.error === "string" ? body.error : "";
  switch (status) {
    case 401:
      return "Wrong username or password.";
    case 409:
      return "That username is taken: pick another one.";
    case 429: {
      const s = Number.isFinite(+retryAfter) && +retryAfter > 0 ? Math.ceil(+retryAfter) : null;
      return s ? `Too many failed logins: try again in ${s} s.` : `Too many failed logins: ${msg || "try again later"}.`;
    }
    case 503:
      return "The account service is unavailable right now: try again in a moment.";
    case 400:
      return msg ? `Invalid: ${msg}.` : "Invalid username, password or name.";
    case 0:
      return `Network error${msg ? `: ${msg}` : ""}.`;
    default:
      return `Login failed (${status}${msg ? `: ${msg}` : ""}).`;
  }
}

/**
 * POST credentials; resolves `{session}` (a token answer) or `{error, status}`. Never throws.
 * `kind`: "login" | "register".
 */
export async function submitAccount(kind, fields, { fetch = globalThis.fetch?.bind(globalThis) } = {}) {
  const register = kind === "register";
  const problem = checkCredentials(fields, { register });
  if (problem) return { error: problem, status: 0 };
  const body = { username: fields.username, password: fields.password };
  if (register && fields.name && fields.name.trim()) body.name = fields.name.trim();
  let res;
  try {
    res = await fetch(register ? REGISTER_URL : LOGIN_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    return { error: accountErrorText(0, { error: err && err.message ? err.message : String(err) }), status: 0 };
  }
  let answer = null;
  try {
    answer = await res.json();
  } catch {
    /* not JSON */
  }
  if (res.status !== (register ? 201 : 200)) {
    const retry = res.headers && typeof res.headers.get === "function" ? res.headers.get("Retry-After") : null;
    return { error: accountErrorText(res.status, answer, retry), status: res.status };
  }
  const session = parseTokenAnswer(answer);
  if (!session) return { error: "The server's answer was malformed.", status: res.status };
  return { session };
}

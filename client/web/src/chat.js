// Chat rules on the client side (pure): the text a `say`/`tell` may carry (1..280 characters
// after stripping control characters and surrounding whitespace, like the server) and the
// shared rate limit (burst 5, 1 per 2 s), so that the server never has to refuse one.
import { CHAT_BURST, CHAT_MAX_LENGTH, CHAT_RATE } from "./gameProtocol.js";
import { TokenBucket } from "./rateLimit.js";

// C0, DEL and C1 control characters (Unicode category Cc).
const CONTROL_RE = /\p{Cc}/gu;

/** `text` without control characters and surrounding whitespace. */
export function stripControl(text) {
  return String(text ?? "").replace(CONTROL_RE, "").trim();
}

/** Length in code points (what the server counts). */
export function textLength(text) {
  return [...text].length;
}

/**
 * The text to send, or an error: `{text}` or `{error}` ("empty" / "too long").
 */
export function prepareChatText(raw, max = CHAT_MAX_LENGTH) {
  const text = stripControl(raw);
  if (!text) return { error: "empty" };
  if (textLength(text) > max) return { error: `too long (${textLength(text)}/${max} characters)` };
  return { text };
}

/**
 * Text received from the server, made safe to show: control characters removed (a stray
 * newline or bidi trick aside, the caller still renders it with textContent), capped.
 */
export function displayText(text, max = CHAT_MAX_LENGTH * 2) {
  const clean = stripControl(typeof text === "string" ? text : "");
  const cps = [...clean];
  return cps.length > max ? `${cps.slice(0, max).join("")}…` : clean;
}

/** The client's chat limiter (say and tell share it), `now` in seconds. */
export class ChatLimiter {
  constructor({ burst = CHAT_BURST, rate = CHAT_RATE, now = 0 } = {}) {
    this.bucket = new TokenBucket({ rate, burst, now });
  }

  /** Take a token: true when the message may go now. */
  take(now) {
    return this.bucket.take(now);
  }

  /** Seconds until the next message may go (0 now). */
  wait(now) {
    return this.bucket.wait(now);
  }
}

// A client-side token bucket, so that the client never trips the server's limiter
// (INPUT_RATE messages/s sustained, bursts of INPUT_BURST: excess messages are dropped with
// error 9 and 5 s of it closes the socket with 4029). The client keeps a margin below both
// because its clock and the server's see the messages at different times (network jitter
// bunches them up). Pure: the caller passes the time.
import { INPUT_BURST, INPUT_RATE } from "./protocol.generated.js";

export const CLIENT_RATE = INPUT_RATE * 0.75; // messages per second
export const CLIENT_BURST = Math.floor(INPUT_BURST * 0.75);

export class TokenBucket {
  constructor({ rate = CLIENT_RATE, burst = CLIENT_BURST, now = 0 } = {}) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = now; // seconds
  }

  _refill(now) {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.rate);
      this.at = now;
    }
  }

  /** Take one token if there is one (true), else false. `force` always takes (may go negative:
   * messages that must go out, such as join, still count against the budget). */
  take(now, force = false) {
    this._refill(now);
    if (this.tokens >= 1 || force) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Seconds until a token is available (0 if one is). */
  wait(now) {
    this._refill(now);
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.rate;
  }
}

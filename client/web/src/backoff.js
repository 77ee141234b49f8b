// Reconnection delays like partysocket's: the first delay of an outage is uniform in
// [minDelay, maxFirstDelay] (so that clients dropped together do not come back together), each
// further attempt waits growFactor times longer, capped at maxDelay. Pure: no timers here.

export const BACKOFF = Object.freeze({ minDelay: 1000, maxFirstDelay: 5000, growFactor: 1.3, maxDelay: 10000 });

/** Delay (ms) before reconnection attempt number `attempt` (0-based) given the outage's random base. */
export function backoffDelay(attempt, base, opts = BACKOFF) {
  return Math.min(opts.maxDelay, base * opts.growFactor ** Math.max(0, attempt));
}

/** The random first delay (ms) of an outage. */
export function randomBackoffBase(random = Math.random, opts = BACKOFF) {
  return opts.minDelay + random() * (opts.maxFirstDelay - opts.minDelay);
}

/**
 * Delays of one outage after another: `next()` gives the delay before the next attempt,
 * `reset()` (after a successful join) starts a new outage with a new random base.
 */
export class Backoff {
  constructor({ random = Math.random, ...opts } = {}) {
    this.opts = { ...BACKOFF, ...opts };
    this.random = random;
    this.attempt = 0; // attempts made in this outage
    this.base = 0;
  }

  next() {
    if (this.attempt === 0) this.base = randomBackoffBase(this.random, this.opts);
    const delay = Math.round(backoffDelay(this.attempt, this.base, this.opts));
    this.attempt += 1;
    return delay;
  }

  reset() {
    this.attempt = 0;
    this.base = 0;
  }
}

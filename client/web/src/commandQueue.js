// Commands on their way to the room, in two lists (pure, no I/O):
//
// - the outbox: commands not sent yet (issued while offline or joining, or held back by the
//   rate limiter), bounded: past `limit` the oldest is dropped;
// - pending: commands sent on the current socket and not acknowledged yet (`seq > ack`),
//   kept for prediction and to be resent after a reconnection that resumed the seat.
//
// A command is {type, payload, at} (at: when it was issued, for prediction); once sent it
// also has its `seq`.

export const QUEUE_LIMIT = 64;
export const PENDING_LIMIT = 256;

export class CommandQueue {
  constructor({ limit = QUEUE_LIMIT, pendingLimit = PENDING_LIMIT } = {}) {
    this.limit = limit;
    this.pendingLimit = pendingLimit;
    this.outbox = [];
    this.pending = [];
    this.dropped = 0; // commands dropped because the outbox was full
    this.lastAcked = new Map(); // type -> the latest acknowledged command of that type
  }

  /** Add a command to the outbox; returns it. */
  push(type, payload, at = 0) {
    const cmd = { type, payload, at };
    this.outbox.push(cmd);
    this._trim();
    return cmd;
  }

  _trim() {
    while (this.outbox.length > this.limit) {
      this.outbox.shift();
      this.dropped += 1;
    }
  }

  get size() {
    return this.outbox.length;
  }

  /** The next command to send (still in the outbox), or null. */
  peek() {
    return this.outbox.length ? this.outbox[0] : null;
  }

  /** Remove the next command from the outbox and record it as sent with `seq`. */
  sent(seq) {
    const cmd = this.outbox.shift();
    if (!cmd) return null;
    cmd.seq = seq;
    this.pending.push(cmd);
    if (this.pending.length > this.pendingLimit) this.pending.shift();
    return cmd;
  }

  /** The room acknowledged everything up to `ack`: drop those pending commands. */
  ack(ack) {
    let n = 0;
    while (n < this.pending.length && this.pending[n].seq <= ack) n++;
    this._acked(this.pending.slice(0, n));
    this.pending.splice(0, n);
    return n;
  }

  /**
   * A welcome arrived on a new socket: the pending commands the room has not applied
   * (`seq > ack`) go back to the front of the outbox, to be sent again (with new seqs) before
   * the commands issued while offline. For a resumed seat `ack` is the seat's; a fresh seat
   * acknowledges the join, which a reconnecting client numbers with the last ack it saw, so
   * nothing unapplied is taken for applied either way. Returns the number put back.
   */
  rejoined({ ack }) {
    this._acked(this.pending.filter((c) => c.seq <= ack));
    const again = this.pending.filter((c) => c.seq > ack);
    this.pending = [];
    for (const c of again) delete c.seq;
    this.outbox = again.concat(this.outbox);
    this._trim();
    return again.length;
  }

  /** The room dropped the command sent with `seq` (busy, rate limited): put it back at the
   * front of the outbox to be sent again. Returns whether it was pending. */
  retry(seq) {
    const i = this.pending.findIndex((c) => c.seq === seq);
    if (i < 0) return false;
    const [cmd] = this.pending.splice(i, 1);
    delete cmd.seq;
    this.outbox.unshift(cmd);
    this._trim();
    return true;
  }

  _acked(cmds) {
    for (const c of cmds) this.lastAcked.set(c.type, c);
  }

  /** Pending commands of `type`, oldest first. */
  pendingOf(type) {
    return this.pending.filter((c) => c.type === type);
  }

  clear() {
    this.outbox = [];
    this.pending = [];
    this.lastAcked.clear();
  }
}

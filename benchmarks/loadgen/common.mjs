/**
 * What the two lean load generators of the "sector" benchmark share (starhold.mjs,
 * colyseus.mjs): arguments, the send scheduler, the measurement window, the per-client
 * ack bookkeeping, the timeline and the output. Only the protocol differs between them.
 *
 * Design (the same on both sides, so that the benchmark measures the servers):
 *   - Node 20, raw WebSockets from the `ws` package, many clients per process;
 *   - every client sends its move input --input-hz times a second (default 10, at most 20:
 *     Starhold's rate limit) with an increasing sequence number, from one scheduler per
 *     process (SLOTS phase slots of a tenth of the input period each, each client in one
 *     slot chosen at random), not one timer per client;
 *   - one client in DECODE_EVERY (client index % DECODE_EVERY == 0) decodes the frames it
 *     receives, to read its own ack, and measures input -> ack latency and frame jitter;
 *     the others read and discard frames (they only look at the first bytes to count
 *     error messages).
 *
 * Timeline (as the old loadgen.mjs and starhold.client.loadtest):
 *   1. ramp: clients join in batches of JOIN_BATCH started evenly over R seconds (--ramp,
 *      default clamp(N/250, 2, 5)), at most MAX_JOINING joins in flight (a batch waits while
 *      that many are); a client starts sending once joined, a join fails after JOIN_TIMEOUT_MS;
 *   2. warmup W s (or, with --sync, `{"event":"ready"}` on stderr then wait for a line
 *      `go <epoch_ms>` on stdin: the window starts at that wall-clock time);
 *   3. measurement window of S s: inputs *sent* in it are counted (and timed, by the
 *      decoding clients), frames *received* in it are counted (by the decoding clients,
 *      then scaled: see `frames_received`);
 *   4. grace G s (default 1): sending stops, late acks count; inputs of the window never
 *      acknowledged are `unacked`;
 *   5. every client leaves; one JSON line on stdout, a `diagnostics` event on stderr.
 *
 * Latency of input s = arrival of the first frame whose ack >= s minus the send time of s
 * (performance.now(), ms). Jitter of a frame = |inter-arrival - 100 ms| per decoding client.
 * `frames_received` counts every frame the decoding clients received in the window times
 * DECODE_EVERY (an estimate for all clients: the others do not count theirs, which would
 * cost a timestamp per frame); `errors` counts error messages of all clients.
 *
 * --samples PATH: [uint32 LE headerLength][header JSON][zero padding to 8 bytes]
 *   [float64 LE latency_ms x header.latency][float64 LE jitter_ms x header.jitter],
 *   header = {"latency": n, "jitter": m, "room_ids": [...]} (benchmarks/colyseus_peer.py reads it).
 */
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

export const INPUT_PERIOD_MS = 100;
/** Most inputs a client may send per second (--input-hz): Starhold's per-socket rate limit. */
export const MAX_INPUT_HZ = 20;
export const FRAME_PERIOD_MS = 100;
export const SLOTS = 10;
export const DECODE_EVERY = 10;
export const JOIN_BATCH = 10;
export const JOIN_TIMEOUT_MS = 30000;
/** Joins in flight at most: a batch starts on schedule unless this many are still joining. */
export const MAX_JOINING = 50;
const LOOP_RESOLUTION_MS = 5;

/** Parse `--key value` / `--flag` arguments; `extra` maps more option names to parsers. */
export function parseArgs(argv, extra = {}) {
  const opts = { url: "", clients: 100, duration: 20, warmup: 5, grace: 1, ramp: undefined, samples: undefined,
    sync: false, offset: 0, inputHz: 1000 / INPUT_PERIOD_MS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${arg}`);
      return argv[++i];
    };
    const key = arg.replace(/^--/, "");
    if (arg === "--sync") opts.sync = true;
    else if (arg === "--url" || arg === "--samples") opts[key] = next();
    else if (["--clients", "--offset"].includes(arg)) opts[key] = Number.parseInt(next(), 10);
    else if (["--duration", "--warmup", "--grace", "--ramp"].includes(arg)) opts[key] = Number.parseFloat(next());
    else if (arg === "--input-hz") opts.inputHz = Number.parseFloat(next());
    else if (key in extra) opts[key] = extra[key](next());
    else throw new Error(`unknown argument: ${arg}`);
  }
  for (const key of ["clients", "duration", "warmup", "grace", "offset"]) {
    if (!Number.isFinite(opts[key]) || opts[key] < 0) throw new Error(`invalid --${key}`);
  }
  if (!(opts.inputHz > 0 && opts.inputHz <= MAX_INPUT_HZ)) throw new Error(`invalid --input-hz (0 < hz <= ${MAX_INPUT_HZ})`);
  if (!opts.url) throw new Error("--url is required");
  if (opts.ramp === undefined) opts.ramp = Math.min(5, Math.max(2, opts.clients / 250));
  return opts;
}

/** Append-only float64 buffer. */
export class Samples {
  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
    this.length = 0;
  }
  push(v) {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = v;
  }
  sorted() {
    return this.data.slice(0, this.length).sort();
  }
}

/** Linear-interpolated percentile (numpy's default) of a sorted array; 0 if empty. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const emitEvent = (event) => process.stderr.write(JSON.stringify({ event }) + "\n");

/** The measurement window and the process's counters. */
export const win = {
  start: Infinity, end: Infinity, inputsSent: 0, framesReceived: 0, errors: 0, disconnects: 0,
  errorCodes: {}, shuttingDown: false, stopping: false, latency: new Samples(1 << 16), jitter: new Samples(1 << 16),
};
export const inWindow = (t) => t >= win.start && t < win.end;

/**
 * One client's bookkeeping; the protocol adapters extend it. `send(seq)` (to implement)
 * writes the move input `seq`; a decoding client calls `onAck(ack, now)` for every frame.
 */
export class Client {
  constructor(index) {
    this.index = index;
    this.decoding = index % DECODE_EVERY === 0;
    this.connected = false;
    this.sending = false;
    this.seq = 0; // last input sent
    this.firstSeq = 1; // the seq of the first input (its send time is sendTimes[0])
    this.sendTimes = this.decoding ? new Samples(512) : null;
    this.acked = 0;
    this.lastFrameAt = 0;
    this.roomId = "";
  }

  /** Send the next input (called by the scheduler). */
  tick(now) {
    const seq = this.seq + 1;
    try {
      this.send(seq);
    } catch {
      this.sending = false;
      return;
    }
    this.seq = seq;
    if (this.sendTimes !== null) this.sendTimes.push(now);
    if (now >= win.start && now < win.end) win.inputsSent++;
  }

  /** A frame with this client's `ack` arrived at `now` (decoding clients only). */
  onAck(ack, now) {
    if (now >= win.start && now < win.end) {
      win.framesReceived += DECODE_EVERY;
      if (this.lastFrameAt) win.jitter.push(Math.abs(now - this.lastFrameAt - FRAME_PERIOD_MS));
    }
    this.lastFrameAt = now;
    if (ack > this.acked) {
      const top = Math.min(ack, this.seq);
      const times = this.sendTimes.data;
      for (let s = Math.max(this.acked + 1, this.firstSeq); s <= top; s++) {
        const sentAt = times[s - this.firstSeq];
        if (sentAt >= win.start && sentAt < win.end) win.latency.push(now - sentAt);
      }
      this.acked = ack;
    }
  }

  /** A socket this client did not close itself ended. */
  onDrop() {
    const was = this.connected;
    this.connected = false;
    this.sending = false;
    if (was && !win.shuttingDown) win.disconnects++;
  }

  /** Inputs sent in the window whose ack never arrived (decoding clients only). */
  unacked() {
    if (this.sendTimes === null) return 0;
    let n = 0;
    const times = this.sendTimes.data;
    for (let s = Math.max(this.acked + 1, this.firstSeq); s <= this.seq; s++) {
      if (inWindow(times[s - this.firstSeq])) n++;
    }
    return n;
  }
}

/**
 * Every `periodMs / SLOTS` ms (`periodMs`: the input period, 1000 / --input-hz), the clients
 * of the next slot send one input. After a stall of the event loop longer than a period the
 * schedule moves on (the missed slots are not caught up in a burst, which would exceed a
 * server's rate limit: Starhold allows 20 messages/s with bursts of 40).
 */
export function startScheduler(slots, periodMs = INPUT_PERIOD_MS) {
  const step = periodMs / SLOTS;
  let t0 = performance.now();
  let k = 0;
  const run = () => {
    if (win.stopping) return;
    const now = performance.now();
    for (const client of slots[k % SLOTS]) {
      if (client.sending) client.tick(now);
    }
    k++;
    if (now - (t0 + k * step) > periodMs) t0 = now - k * step; // behind: skip ahead
    setTimeout(run, Math.max(0, t0 + k * step - performance.now()));
  };
  setTimeout(run, 0);
}

/** `promise`, or a rejection after JOIN_TIMEOUT_MS (a join that never settles fails). */
function withTimeout(promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Wait for the `go <epoch_ms>` line on stdin; returns the epoch ms. */
function waitForGo() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      const m = /^go\s+(\d+(?:\.\d+)?)\s*$/.exec(line);
      if (m) {
        resolve(Number.parseFloat(m[1]));
        rl.close();
      }
    });
    rl.on("close", () => reject(new Error("stdin closed before 'go'")));
  });
}

function writeSamples(path, latency, jitter, roomIds) {
  const header = Buffer.from(JSON.stringify({ latency: latency.length, jitter: jitter.length, room_ids: roomIds }));
  const padded = Math.ceil((4 + header.length) / 8) * 8;
  const prefix = Buffer.alloc(padded);
  prefix.writeUInt32LE(header.length, 0);
  header.copy(prefix, 4);
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(latency.buffer, latency.byteOffset, latency.byteLength),
    Buffer.from(jitter.buffer, jitter.byteOffset, jitter.byteLength)]));
}

/**
 * Run the timeline. `clients`: Client instances; `join(client)`: resolves once it joined
 * (rejects on failure); `leave(client)`: resolves once it left; `target`: name in the result.
 */
export async function run(opts, target, clients, join, leave) {
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const slots = Array.from({ length: SLOTS }, () => []);
  startScheduler(slots, 1000 / opts.inputHz);
  const batches = Math.ceil(clients.length / JOIN_BATCH);
  const spacing = batches > 1 ? (opts.ramp * 1000) / batches : 0;
  const t0 = performance.now();
  const pending = new Set();
  const joins = [];
  for (let b = 0; b < batches; b++) {
    const wait = t0 + b * spacing - performance.now();
    if (wait > 0) await sleep(wait);
    while (pending.size >= MAX_JOINING) await Promise.race(pending);
    for (const c of clients.slice(b * JOIN_BATCH, (b + 1) * JOIN_BATCH)) {
      const p = withTimeout(join(c)).then(() => {
        c.connected = true;
        c.sending = true;
        slots[Math.floor(Math.random() * SLOTS)].push(c);
      }, (err) => {
        win.errors++;
        console.error(`client ${c.index} could not join: ${err?.message ?? err}`);
      }).finally(() => pending.delete(p));
      pending.add(p);
      joins.push(p);
    }
  }
  await Promise.all(joins);
  console.error(`joined ${clients.filter((c) => c.connected).length} of ${clients.length} in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (opts.sync) {
    emitEvent("ready");
    const go = await waitForGo();
    win.start = performance.now() + (go - Date.now());
  } else {
    win.start = performance.now() + opts.warmup * 1000;
  }
  win.end = win.start + opts.duration * 1000;
  await sleep(Math.max(0, win.start - performance.now()));
  emitEvent("measure_start");
  loopDelay.enable();
  const cpuStart = process.cpuUsage();
  await sleep(Math.max(0, win.end - performance.now()));
  const cpu = process.cpuUsage(cpuStart);
  loopDelay.disable();
  emitEvent("measure_end");
  const connected = clients.filter((c) => c.connected).length;
  win.stopping = true;
  await sleep(opts.grace * 1000);
  const unacked = clients.reduce((n, c) => n + c.unacked(), 0);
  const roomIds = [...new Set(clients.filter((c) => c.roomId).map((c) => c.roomId))];
  const latency = win.latency.sorted();
  const jitter = win.jitter.sorted();
  win.shuttingDown = true;
  await Promise.race([Promise.all(clients.filter((c) => c.connected).map((c) => leave(c).catch(() => {}))),
    sleep(5000)]);
  if (opts.samples) writeSamples(opts.samples, latency, jitter, roomIds);
  const result = {
    target, clients: clients.length, rooms: roomIds.length, duration_s: opts.duration, connected,
    inputs_sent: win.inputsSent, frames_received: win.framesReceived,
    latency_ms: { p50: percentile(latency, 0.5), p99: percentile(latency, 0.99),
      max: latency.length ? latency[latency.length - 1] : 0, count: latency.length },
    jitter_p99_ms: percentile(jitter, 0.99),
    messages_per_s: { in: win.inputsSent / opts.duration, out: win.framesReceived / opts.duration },
    errors: win.errors, disconnects: win.disconnects, unacked,
  };
  if (Object.keys(win.errorCodes).length) console.error(`error codes: ${JSON.stringify(win.errorCodes)}`);
  process.stderr.write(JSON.stringify({
    event: "diagnostics",
    cpu_percent: ((cpu.user + cpu.system) / 1000 / (opts.duration * 1000)) * 100,
    event_loop_delay_p99_ms: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    event_loop_delay_max_ms: Math.max(0, loopDelay.max / 1e6 - LOOP_RESOLUTION_MS),
  }) + "\n");
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

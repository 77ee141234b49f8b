/**
 * Load generator for the Colyseus "sector" benchmark, built on the official
 * client SDK (@colyseus/sdk 0.18).
 *
 *   node loadgen.mjs --url ws://127.0.0.1:PORT --clients N --duration S --warmup W
 *                    [--samples PATH] [--ramp R] [--grace G] [--sync]
 *
 * Timeline:
 *   1. ramp: clients `joinOrCreate("sector")` in small concurrent batches spread
 *      over R seconds (default: N/250 clamped to [2, 5]); each client starts
 *      sending `move_to {seq, x, y}` every 100 ms (random phase) as soon as it
 *      has joined. The next batch starts only when the previous one settled,
 *      so a slow matchmaker stretches the ramp instead of piling up joins.
 *   2. warmup: W seconds after the ramp, not measured.
 *   3. measurement window: S seconds. Inputs *sent* in the window are counted
 *      and timed; frames (state patches) *received* in the window are counted.
 *   4. grace: sending stops; G seconds (default 1) to collect late acks.
 *      Inputs sent in the window and still unacked after that are `unacked`.
 *   5. every client leaves (consented), one JSON line is printed on stdout.
 *
 * Latency of input `seq` = arrival of the first patch whose own-ship `ack` is
 * >= seq, minus the send time of seq (performance.now()). Jitter of a frame =
 * |inter-arrival interval - 100 ms|, per client.
 *
 * --samples PATH writes the raw samples for merging across processes:
 *   [uint32 LE headerLength][header JSON utf-8][zero padding to 8 bytes]
 *   [float64 LE latency_ms x header.latency][float64 LE jitter_ms x header.jitter]
 * with header = {"latency": n, "jitter": m, "room_ids": [...]}.
 *
 * --sync (used by benchmarks/colyseus_peer.py to align several processes):
 * after the ramp, write `{"event":"ready"}` on stderr and wait for a line
 * `go <epoch_ms>` on stdin; the measurement window starts at that wall-clock
 * time (the warmup is then the caller's business). Without --sync the window
 * starts W seconds after the ramp. In both modes `{"event":"measure_start"}`
 * and `{"event":"measure_end"}` are written on stderr.
 *
 * stdout carries only the final JSON line: the SDK's console.log/info output is
 * redirected to stderr.
 */
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Client, CloseCode } from "@colyseus/sdk";

// Keep stdout for the result line only.
console.log = console.error;
console.info = console.error;

const AREA = 1000;
const INPUT_PERIOD_MS = 100;
const PATCH_PERIOD_MS = 100;
const ROOM_NAME = "sector";
const JOIN_BATCH = 10;
/** Sampling period of the event-loop delay monitor; its histogram includes it. */
const LOOP_RESOLUTION_MS = 5;

/** Parse `--key value` / `--flag` arguments into an options object. */
function parseArgs(argv) {
  const opts = { url: "ws://127.0.0.1:2567", clients: 100, duration: 20, warmup: 5, grace: 1,
    ramp: undefined, samples: undefined, sync: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${arg}`);
      return argv[++i];
    };
    switch (arg) {
      case "--url": opts.url = next(); break;
      case "--clients": opts.clients = Number.parseInt(next(), 10); break;
      case "--duration": opts.duration = Number.parseFloat(next()); break;
      case "--warmup": opts.warmup = Number.parseFloat(next()); break;
      case "--grace": opts.grace = Number.parseFloat(next()); break;
      case "--ramp": opts.ramp = Number.parseFloat(next()); break;
      case "--samples": opts.samples = next(); break;
      case "--sync": opts.sync = true; break;
      default: throw new Error(`unknown argument: ${arg}`);
    }
  }
  for (const key of ["clients", "duration", "warmup", "grace"]) {
    if (!Number.isFinite(opts[key]) || opts[key] < 0) throw new Error(`invalid --${key}`);
  }
  if (opts.ramp === undefined) opts.ramp = Math.min(5, Math.max(2, opts.clients / 250));
  return opts;
}

/** Append-only float64 buffer (avoids boxing hundreds of thousands of numbers). */
class Samples {
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
  /** Sorted copy of the samples. */
  sorted() {
    return this.data.slice(0, this.length).sort();
  }
}

/** Linear-interpolated percentile (numpy's default) of a sorted array; 0 if empty. */
function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const emitEvent = (event) => process.stderr.write(JSON.stringify({ event }) + "\n");

/**
 * Measurement window and shared counters. `start`/`end` are performance.now()
 * timestamps; Infinity until the window is scheduled.
 */
const win = {
  start: Infinity,
  end: Infinity,
  inputsSent: 0,
  framesReceived: 0,
  errors: 0,
  disconnects: 0,
  shuttingDown: false,
  latency: new Samples(1 << 16),
  jitter: new Samples(1 << 16),
};
const inWindow = (t) => t >= win.start && t < win.end;

/** One simulated player: a joined room, its input sequence and ack bookkeeping. */
class Player {
  constructor(room) {
    this.room = room;
    this.connected = true;
    this.seq = 0;
    /** sendTimes[seq - 1] = performance.now() at send time of `seq`. */
    this.sendTimes = new Samples(256);
    this.ackedUpTo = 0;
    this.lastFrameAt = undefined;
    this.timer = undefined;

    // A drop should show up as a disconnect, not be papered over by the SDK's
    // automatic reconnection (on by default in 0.18).
    room.reconnection.enabled = false;
    room.onStateChange((state) => this.onFrame(state));
    room.onError(() => { win.errors++; });
    room.onLeave((code) => {
      this.connected = false;
      this.stopSending();
      if (!(win.shuttingDown && code === CloseCode.CONSENTED)) win.disconnects++;
    });
  }

  /** Send `move_to` every INPUT_PERIOD_MS, starting at a random phase. */
  startSending() {
    const first = setTimeout(() => {
      this.sendInput();
      this.timer = setInterval(() => this.sendInput(), INPUT_PERIOD_MS);
    }, Math.random() * INPUT_PERIOD_MS);
    this.timer = first;
  }

  stopSending() {
    // clearTimeout and clearInterval are interchangeable in Node.
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sendInput() {
    if (!this.connected) return;
    const seq = ++this.seq;
    const now = performance.now();
    this.sendTimes.push(now);
    if (inWindow(now)) win.inputsSent++;
    this.room.send("move_to", { seq, x: Math.random() * AREA, y: Math.random() * AREA });
  }

  /** Called for each decoded state message (the first full state, then patches). */
  onFrame(state) {
    const now = performance.now();
    if (this.lastFrameAt !== undefined && inWindow(now)) {
      win.framesReceived++;
      win.jitter.push(Math.abs(now - this.lastFrameAt - PATCH_PERIOD_MS));
    }
    this.lastFrameAt = now;

    const ship = state.ships.get(this.room.sessionId);
    if (ship === undefined) return;
    const ack = Math.min(ship.ack, this.seq);  // never trust an ack beyond what we sent
    const times = this.sendTimes.data;
    for (let s = this.ackedUpTo + 1; s <= ack; s++) {
      const sentAt = times[s - 1];
      // Inputs sent in the window are timed even if acked during the grace.
      if (inWindow(sentAt)) win.latency.push(now - sentAt);
    }
    if (ack > this.ackedUpTo) this.ackedUpTo = ack;
  }

  /** Inputs sent in the window whose ack never arrived. */
  unackedInWindow() {
    let n = 0;
    const times = this.sendTimes.data;
    for (let s = this.ackedUpTo + 1; s <= this.seq; s++) {
      if (inWindow(times[s - 1])) n++;
    }
    return n;
  }
}

/** Join `count` clients in batches of JOIN_BATCH spread over `rampSec` seconds. */
async function rampUp(client, count, rampSec) {
  const players = [];
  const batches = Math.ceil(count / JOIN_BATCH);
  const spacingMs = batches > 1 ? (rampSec * 1000) / batches : 0;
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    const wait = t0 + b * spacingMs - performance.now();
    if (wait > 0) await sleep(wait);
    const size = Math.min(JOIN_BATCH, count - b * JOIN_BATCH);
    const joins = [];
    for (let i = 0; i < size; i++) {
      joins.push(client.joinOrCreate(ROOM_NAME).then((room) => {
        const player = new Player(room);
        player.startSending();
        players.push(player);
      }, (err) => {
        win.errors++;
        console.error(`join failed: ${err?.message ?? err}`);
      }));
    }
    await Promise.all(joins);
  }
  return players;
}

/** Wait for the `go <epoch_ms>` line on stdin; returns the epoch ms. */
function waitForGo() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      const m = /^go\s+(\d+(?:\.\d+)?)\s*$/.exec(line);
      if (m) {
        resolve(Number.parseFloat(m[1]));  // before close(), which emits "close" synchronously
        rl.close();
      }
    });
    rl.on("close", () => reject(new Error("stdin closed before 'go'")));
  });
}

/** Write the raw samples file described in the module docstring. */
function writeSamples(path, latency, jitter, roomIds) {
  const header = Buffer.from(JSON.stringify({ latency: latency.length, jitter: jitter.length, room_ids: roomIds }), "utf8");
  const headerEnd = 4 + header.length;
  const padded = Math.ceil(headerEnd / 8) * 8;
  const prefix = Buffer.alloc(padded);
  prefix.writeUInt32LE(header.length, 0);
  header.copy(prefix, 4);
  // Float64Array is little-endian on every platform Node supports.
  writeFileSync(path, Buffer.concat([
    prefix,
    Buffer.from(latency.buffer, latency.byteOffset, latency.byteLength),
    Buffer.from(jitter.buffer, jitter.byteOffset, jitter.byteLength),
  ]));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const client = new Client(opts.url);

  const players = await rampUp(client, opts.clients, opts.ramp);

  if (opts.sync) {
    emitEvent("ready");
    const goEpochMs = await waitForGo();
    win.start = performance.now() + (goEpochMs - Date.now());
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

  const connected = players.filter((p) => p.connected).length;
  for (const p of players) p.stopSending();
  await sleep(opts.grace * 1000);

  const unacked = players.reduce((n, p) => n + p.unackedInWindow(), 0);
  const roomIds = [...new Set(players.map((p) => p.room.roomId))];
  const latency = win.latency.sorted();
  const jitter = win.jitter.sorted();

  win.shuttingDown = true;
  await Promise.race([
    Promise.all(players.filter((p) => p.connected).map((p) => p.room.leave(true))),
    sleep(5000),
  ]);

  if (opts.samples) writeSamples(opts.samples, latency, jitter, roomIds);

  const result = {
    target: "colyseus",
    clients: opts.clients,
    rooms: roomIds.length,
    duration_s: opts.duration,
    connected,
    inputs_sent: win.inputsSent,
    frames_received: win.framesReceived,
    latency_ms: {
      p50: percentile(latency, 0.5),
      p99: percentile(latency, 0.99),
      max: latency.length ? latency[latency.length - 1] : 0,
      count: latency.length,
    },
    jitter_p99_ms: percentile(jitter, 0.99),
    messages_per_s: {
      in: opts.duration > 0 ? win.inputsSent / opts.duration : 0,
      out: opts.duration > 0 ? win.framesReceived / opts.duration : 0,
    },
    errors: win.errors,
    disconnects: win.disconnects,
    unacked,
  };
  // Diagnostics for the caller (is the load generator itself saturated?). The
  // event-loop histogram records whole sampling periods: subtract the period.
  process.stderr.write(JSON.stringify({
    event: "diagnostics",
    cpu_percent: ((cpu.user + cpu.system) / 1000 / (opts.duration * 1000)) * 100,
    event_loop_delay_p99_ms: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    event_loop_delay_max_ms: Math.max(0, loopDelay.max / 1e6 - LOOP_RESOLUTION_MS),
  }) + "\n");
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

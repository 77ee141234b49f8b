/**
 * Lean load generator for Starhold's side of the "sector" benchmark (design, timeline and
 * output: common.mjs). Speaks docs/protocol.md over raw `ws` sockets:
 *
 *   node starhold.mjs --url http://127.0.0.1:PORT --paths /api/game/ID/ws[,...] --clients N
 *                     [--offset I] --duration S [--warmup W] [--ramp R] [--grace G]
 *                     [--samples PATH] [--sync]
 *
 * Client i (i = offset .. offset+N-1, a global index) takes a guest token
 * (`POST /api/auth/guest`), opens `<path i mod M>?token=...`, sends `["join", 1, {}]` and
 * waits for `welcome` (decoding every message until then); then it sends
 * `["move_to", seq, {"x", "y"}]` (seq 2, 3, ...; a random target in [-500, 500]^2, the game's
 * sector) 10 times a second. Clients with i % 10 == 0 decode every frame with
 * @msgpack/msgpack to read its `ack`; the others discard frames, only checking the envelope's
 * type (`["error", ...]` starts with the bytes 0x93 0xa5 'e') to count error messages.
 * Leaving is a close 1000.
 */
import WebSocket from "ws";
import { decode, encode } from "@msgpack/msgpack";
import { performance } from "node:perf_hooks";
import { Client, JOIN_TIMEOUT_MS, parseArgs, run, win } from "./common.mjs";

const AREA = 500;
const E = 0x65; // 'e' of "error"

const opts = parseArgs(process.argv.slice(2), { paths: (v) => v.split(",").filter(Boolean) });
if (!opts.paths?.length) throw new Error("--paths is required");
const httpBase = opts.url.replace(/\/$/, "");
const wsBase = httpBase.replace(/^http/, "ws");

class StarholdClient extends Client {
  constructor(index) {
    super(index);
    this.path = opts.paths[index % opts.paths.length];
    this.roomId = this.path;
    this.seq = 1; // the join's
    this.firstSeq = 2;
    this.ws = null;
  }

  send(seq) {
    this.ws.send(encode(["move_to", seq, { x: (Math.random() * 2 - 1) * AREA, y: (Math.random() * 2 - 1) * AREA }]));
  }

  /** A message after the welcome. */
  onMessage(data) {
    if (!this.decoding) {
      if (data[2] === E && data[1] === 0xa5) countError(decode(data)[2]);
      return;
    }
    const now = performance.now();
    const [type, , payload] = decode(data);
    if (type === "frame") this.onAck(payload.ack, now);
    else if (type === "error") countError(payload);
  }
}

/** Count an error message (its payload `{code, message}`); log the first few of each code. */
function countError(payload) {
  win.errors++;
  const code = payload?.code ?? 0;
  win.errorCodes[code] = (win.errorCodes[code] ?? 0) + 1;
  if (win.errorCodes[code] <= 3) console.error(`error message: ${JSON.stringify(payload)}`);
}

async function guestToken(index) {
  const resp = await fetch(`${httpBase}/api/auth/guest`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `lt-${index}` }),
  });
  if (resp.status !== 200 && resp.status !== 201) throw new Error(`guest token: HTTP ${resp.status}`);
  return (await resp.json()).token;
}

async function join(client) {
  const token = await guestToken(client.index);
  const ws = new WebSocket(`${wsBase}${client.path}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
  client.ws = ws;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("join timed out")), JOIN_TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on("error", fail);
    ws.on("close", (code) => fail(new Error(`closed before welcome (${code})`)));
    ws.on("open", () => ws.send(encode(["join", 1, {}])));
    ws.on("message", (data) => {
      const [type, seq, payload] = decode(data);
      if (type === "welcome") {
        clearTimeout(timer);
        client.acked = payload.ack ?? 1;
        for (const ev of ["open", "message", "close", "error"]) ws.removeAllListeners(ev);
        ws.on("message", (d) => client.onMessage(d));
        ws.on("close", () => client.onDrop());
        ws.on("error", () => {});
        resolve();
      } else if (type === "error" && seq === 1) {
        fail(new Error(`join refused: ${JSON.stringify(payload)}`));
      }
    });
  });
}

function leave(client) {
  return new Promise((resolve) => {
    client.ws.removeAllListeners("message");
    client.ws.once("close", resolve);
    client.ws.close(1000);
  });
}

const clients = Array.from({ length: opts.clients }, (_, i) => new StarholdClient(opts.offset + i));
run(opts, "starhold", clients, join, leave).catch((err) => {
  console.error(err);
  process.exit(1);
});

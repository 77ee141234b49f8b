/**
 * Lean load generator for the Colyseus 0.18 side of the "sector" benchmark (design,
 * timeline and output: common.mjs):
 *
 *   node colyseus.mjs --url ws://127.0.0.1:PORT --clients N [--offset I] --duration S
 *                     [--warmup W] [--ramp R] [--grace G] [--samples PATH] [--sync]
 *
 * Every client joins a `sector` room through the matchmaker (`joinOrCreate`) and sends
 * `move_to {seq, x, y}` (seq 1, 2, ...; a random target in [0, 1000]^2) 10 times a second.
 *
 * - Clients with i % 10 == 0 (i = offset + local index) use the official SDK
 *   (`@colyseus/sdk`): it decodes every state patch; the client reads its ship's `ack`.
 * - The others speak the SDK's wire protocol on a raw `ws` socket and never decode a patch
 *   (@colyseus/sdk 0.18.4, src/Client.ts and src/Room.ts): `POST /matchmake/joinOrCreate/sector`
 *   with a JSON body `{}` returns a seat reservation `{name, roomId, processId, sessionId, ...}`;
 *   the socket opens `ws://host/<processId>/<roomId>?sessionId=<sessionId>`; the server's first
 *   message is `JOIN_ROOM` (code 10, the first byte), acknowledged by the one byte `[10]`, after
 *   which the client is in. A message is `[ROOM_DATA (13), type as a schema string (0xa0 | len,
 *   utf-8), msgpack payload]`; leaving is the byte `[LEAVE_ROOM (12)]`, which the server answers
 *   by closing. Incoming messages are discarded after a look at their first byte (`& 0x1f`:
 *   ERROR (11) counts as an error, LEAVE_ROOM makes the client leave).
 */
import WebSocket from "ws";
import { encode } from "@msgpack/msgpack";
import { Client as SdkClient, CloseCode } from "@colyseus/sdk";
import { Client, JOIN_TIMEOUT_MS, parseArgs, run, win } from "./common.mjs";

// Keep stdout for the result line only (the SDK logs with console.log/info).
console.log = console.error;
console.info = console.error;

const AREA = 1000;
const ROOM_NAME = "sector";
const JOIN_ROOM = 10;
const ERROR = 11;
const LEAVE_ROOM = 12;
const ROOM_DATA = 13;
const CODE_MASK = 0x1f;
const TYPE = Buffer.from("move_to", "utf8");
const HEADER = Buffer.concat([Buffer.from([ROOM_DATA, 0xa0 | TYPE.length]), TYPE]);

const opts = parseArgs(process.argv.slice(2));
const wsBase = opts.url.replace(/\/$/, "");
const httpBase = wsBase.replace(/^ws/, "http");
const sdk = new SdkClient(wsBase);

class ColyseusClient extends Client {
  constructor(index) {
    super(index);
    this.room = null; // SDK room (decoding clients)
    this.ws = null; // raw socket (the others)
  }

  send(seq) {
    const x = Math.random() * AREA;
    const y = Math.random() * AREA;
    if (this.room !== null) {
      this.room.send("move_to", { seq, x, y });
      return;
    }
    const body = encode({ seq, x, y });
    const data = new Uint8Array(HEADER.length + body.length);
    data.set(HEADER, 0);
    data.set(body, HEADER.length);
    this.ws.send(data);
  }

  /** A state message (decoding clients, through the SDK). */
  onState(state, now) {
    const ship = state.ships.get(this.room.sessionId);
    if (ship !== undefined) this.onAck(ship.ack, now);
  }
}

async function joinSdk(client) {
  const room = await sdk.joinOrCreate(ROOM_NAME);
  client.room = room;
  client.roomId = room.roomId;
  room.reconnection.enabled = false; // a drop is a disconnect, not papered over
  room.onStateChange((state) => client.onState(state, performance.now()));
  room.onError(() => { win.errors++; });
  room.onLeave((code) => {
    if (win.shuttingDown && code === CloseCode.CONSENTED) client.connected = false;
    else client.onDrop();
  });
}

async function joinRaw(client) {
  const resp = await fetch(`${httpBase}/matchmake/joinOrCreate/${ROOM_NAME}`, {
    method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: "{}",
  });
  if (resp.status !== 200) throw new Error(`matchmake: HTTP ${resp.status} ${await resp.text()}`);
  const seat = await resp.json();
  const roomId = seat.roomId ?? seat.room?.roomId;
  const processId = seat.processId ?? seat.room?.processId;
  if (!roomId || !seat.sessionId) throw new Error(`unexpected seat reservation ${JSON.stringify(seat)}`);
  client.roomId = roomId;
  const ws = new WebSocket(`${wsBase}/${processId}/${roomId}?sessionId=${encodeURIComponent(seat.sessionId)}`,
    { perMessageDeflate: false });
  client.ws = ws;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("join timed out")), JOIN_TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on("error", fail);
    ws.on("close", (code) => fail(new Error(`closed before JOIN_ROOM (${code})`)));
    ws.on("message", (data) => {
      const code = data[0] & CODE_MASK;
      if (code === JOIN_ROOM) {
        clearTimeout(timer);
        ws.send(Buffer.from([JOIN_ROOM]));
        for (const ev of ["message", "close", "error"]) ws.removeAllListeners(ev);
        ws.on("message", (d) => {
          const c = d[0] & CODE_MASK;
          if (c === ERROR) win.errors++;
          else if (c === LEAVE_ROOM) ws.send(Buffer.from([LEAVE_ROOM]));
        });
        ws.on("close", (closeCode) => {
          if (win.shuttingDown && closeCode === CloseCode.CONSENTED) client.connected = false;
          else client.onDrop();
        });
        ws.on("error", () => {});
        resolve();
      } else if (code === ERROR) {
        fail(new Error("error message before JOIN_ROOM"));
      }
    });
  });
}

function join(client) {
  return client.decoding ? joinSdk(client) : joinRaw(client);
}

function leave(client) {
  if (client.room !== null) return client.room.leave(true);
  return new Promise((resolve) => {
    client.ws.once("close", resolve);
    client.ws.send(Buffer.from([LEAVE_ROOM]));
  });
}

const clients = Array.from({ length: opts.clients }, (_, i) => new ColyseusClient(opts.offset + i));
run(opts, "colyseus", clients, join, leave).catch((err) => {
  console.error(err);
  process.exit(1);
});

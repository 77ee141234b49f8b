/**
 * Colyseus 0.18 server for the realtime "sector" benchmark.
 *
 * Scenario (mirrors the Starhold side, see benchmarks/realtime.py):
 *   - rooms ("sector") of up to 100 players; Colyseus' matchmaker fills a room
 *     before creating the next one;
 *   - every player owns one ship in a 1000x1000 area, coordinates in [0, 1000];
 *   - a ship moves toward its current target at 50 world units per second;
 *   - clients send `move_to {seq, x, y}` (10/s); the handler sets the target
 *     and records `ack = seq` (last input sequence number applied);
 *   - the room simulates at 10 Hz and broadcasts state patches at 10 Hz,
 *     carrying every ship's position and ack.
 *
 * Usage: node server.mjs [port]      (or PORT=... node server.mjs)
 * Port 0 picks a free port. Binds to 127.0.0.1 only and prints
 * "listening <port>" on stdout once it accepts connections.
 */
import { Room, Server } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { schema, t } from "@colyseus/schema";

/** Side length of the square play area; coordinates live in [0, AREA]. */
export const AREA = 1000;
/** Ship speed in world units per second. */
export const SPEED = 50;
/** Players per sector room. */
export const ROOM_SIZE = 100;
/** Simulation and patch period in milliseconds (10 Hz). */
export const TICK_MS = 100;

/** One synchronised ship. Targets are server-only and kept outside the schema. */
const Ship = schema({
  x: t.float32(),
  y: t.float32(),
  ack: t.number(),
}, "Ship");

/** Room state: every ship keyed by its owner's sessionId. */
const SectorState = schema({
  ships: t.map(Ship),
}, "SectorState");

/** Clamp a finite number into the play area. */
function clampArea(v) {
  return v < 0 ? 0 : v > AREA ? AREA : v;
}

export class SectorRoom extends Room {
  maxClients = ROOM_SIZE;

  onCreate() {
    this.state = new SectorState();
    /** sessionId -> {tx, ty}: movement targets (not synchronised). */
    this.targets = new Map();

    this.onMessage("move_to", (client, message) => {
      const ship = this.state.ships.get(client.sessionId);
      const target = this.targets.get(client.sessionId);
      if (ship === undefined || target === undefined || message === null || typeof message !== "object") {
        return;
      }
      const { seq, x, y } = message;
      // Reject anything that is not a finite number; ignore stale/duplicate seqs
      // so `ack` stays monotonic.
      if (!Number.isFinite(seq) || !Number.isFinite(x) || !Number.isFinite(y) || seq <= ship.ack) {
        return;
      }
      target.tx = clampArea(x);
      target.ty = clampArea(y);
      ship.ack = seq;
    });

    // 10 Hz simulation. `setSimulationInterval` is the pre-0.18 name of
    // `setTimestep` (kept as a deprecated alias); the callback receives the
    // measured wall-clock delta in milliseconds.
    this.setTimestep((dtMs) => this.step(dtMs / 1000), TICK_MS);
    // 10 Hz patches (`setPatchRate()` is deprecated in 0.18 in favour of this).
    this.patchRate = TICK_MS;
  }

  /** Advance every ship toward its target by SPEED * dt. */
  step(dt) {
    const maxStep = SPEED * dt;
    this.state.ships.forEach((ship, sessionId) => {
      const target = this.targets.get(sessionId);
      const dx = target.tx - ship.x;
      const dy = target.ty - ship.y;
      const dist = Math.hypot(dx, dy);
      if (dist === 0) {
        return;
      }
      if (dist <= maxStep) {
        ship.x = target.tx;
        ship.y = target.ty;
      } else {
        const k = maxStep / dist;
        ship.x += dx * k;
        ship.y += dy * k;
      }
    });
  }

  onJoin(client) {
    const x = Math.random() * AREA;
    const y = Math.random() * AREA;
    this.state.ships.set(client.sessionId, new Ship({ x, y, ack: 0 }));
    this.targets.set(client.sessionId, { tx: x, ty: y });
  }

  onLeave(client) {
    this.state.ships.delete(client.sessionId);
    this.targets.delete(client.sessionId);
  }
}

/** Parse the port from argv[2] or $PORT (default 2567; 0 = any free port). */
function parsePort() {
  const raw = process.argv[2] ?? process.env.PORT ?? "2567";
  const port = Number.parseInt(raw, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${raw}`);
  }
  return port;
}

async function main() {
  const transport = new WebSocketTransport();
  const server = new Server({ transport, greet: false });
  server.define("sector", SectorRoom);
  await server.listen(parsePort(), "127.0.0.1");
  // With port 0 the OS picked the port: read it back from the HTTP server.
  const address = transport.server.address();
  process.stdout.write(`listening ${address.port}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

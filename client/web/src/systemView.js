// System view: the star, planets on their orbits, every ship (thin instances), labels, a
// grid plane for picking move targets. The system plane is protocol (x, y) = Babylon (x, z).
// Remote ships are drawn from the interpolation buffer (100 ms in the past); the own ship at
// its predicted present position (pending commands replayed, see prediction.js).
import { Scene } from "@babylonjs/core/scene.js";
import { ArcRotateCamera } from "@babylonjs/core/Cameras/arcRotateCamera.js";
import { HemisphericLight } from "@babylonjs/core/Lights/hemisphericLight.js";
import { PointLight } from "@babylonjs/core/Lights/pointLight.js";
import { Color3, Color4 } from "@babylonjs/core/Maths/math.color.js";
import { Matrix, Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { StandardMaterial } from "@babylonjs/core/Materials/standardMaterial.js";
import { CreateSphere } from "@babylonjs/core/Meshes/Builders/sphereBuilder.js";
import { CreateGround } from "@babylonjs/core/Meshes/Builders/groundBuilder.js";
import { CreateCylinder } from "@babylonjs/core/Meshes/Builders/cylinderBuilder.js";
import { CreateTorus } from "@babylonjs/core/Meshes/Builders/torusBuilder.js";
import { CreateDisc } from "@babylonjs/core/Meshes/Builders/discBuilder.js";
import { CreateLines, CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";
import { PointerEventTypes } from "@babylonjs/core/Events/pointerEvents.js";
import "@babylonjs/core/Meshes/thinInstanceMesh.js";
import "@babylonjs/core/Culling/ray.js";

import { cachedGalaxy, fetchGalaxy, fetchSystem } from "./api.js";
import { auth, displayName } from "./session.js";
import { SystemGame } from "./systemGame.js";
import { EconomyGame } from "./economyGame.js";
import { createSystemPanel, mountPanel, setCrumb, setQueued, setStatus, showToast } from "./hud.js";
import { projectToCss } from "./labels.js";
import { GameClock, INTERP_DELAY, SnapshotBuffer } from "./interpolation.js";
import { SystemConnection } from "./net.js";
import { predictShip, Smoother } from "./prediction.js";
import { createHalo } from "./sprites.js";
import {
  ATTACK,
  CLOSE_UNKNOWN_ROOM,
  ERR_INVALID_TARGET,
  ERR_NO_PATH,
  ERR_RATE_LIMITED,
  ERR_UNAUTHORIZED,
  ERR_UNKNOWN_TARGET,
  MOVE_TO,
  SHIP_DESTROYED,
  SHIP_HELD,
  SHIP_IN_COMBAT,
  SHIP_MOVING,
  SHIP_NPC,
  SHIP_ONLINE,
  WORLD_LIMIT,
} from "./protocol.generated.js";
import { ERR_ELSEWHERE } from "./gameProtocol.js";
import hook, { resetSystemState } from "./testHook.js";
import { APPLIED_DELTA, APPLIED_KEYFRAME } from "./worldState.js";

const GRID_STEP = 100;
const SHIP_LENGTH = 34;
const SHIP_ALTITUDE = 3;
const CLICK_SLOP_PX = 6;
const MAX_SHIP_LABELS = 150;
const COLOR_OWN = [0.25, 1.0, 0.8];
const COLOR_OTHER = [1.0, 0.62, 0.25];
const COLOR_OFFLINE = [0.42, 0.44, 0.5];
const COLOR_HELD = COLOR_OTHER.map((c) => c * 0.4); // dropped, seat held: dimmed
const COLOR_PIRATE = [1.0, 0.18, 0.14];
const WRECK_DIM = 0.3; // destroyed ships (flag 16): their colour dimmed
const PICK_SHIP_PX = 18; // a click this close (CSS px) to another ship attacks it
const ERROR_TEXT = {
  [ERR_UNKNOWN_TARGET]: "No such ship to attack.",
  [ERR_INVALID_TARGET]: "Cannot attack that ship (yours, destroyed, parked, in another duel, or you are destroyed).",
  [ERR_NO_PATH]: "No path leads there: the ship keeps its course.",
};

function hexColor(hex, fallback = "#ffffff") {
  return Color3.FromHexString(/^#[0-9a-f]{6}$/i.test(hex || "") ? hex : fallback);
}

function baseShipColor(flags, own) {
  if (own) return COLOR_OWN;
  if (flags & SHIP_NPC) return COLOR_PIRATE;
  if (flags & SHIP_HELD) return COLOR_HELD;
  return flags & SHIP_ONLINE ? COLOR_OTHER : COLOR_OFFLINE;
}

function shipColor(flags, own) {
  const c = baseShipColor(flags, own);
  return flags & SHIP_DESTROYED ? c.map((v) => v * WRECK_DIM) : c;
}

function shipLabelClass(flags, own) {
  let cls;
  if (own) cls = "ship own";
  else if (flags & SHIP_NPC) cls = "ship pirate";
  else if (flags & SHIP_HELD) cls = "ship held";
  else cls = flags & SHIP_ONLINE ? "ship" : "ship offline";
  return flags & SHIP_DESTROYED ? `${cls} destroyed` : cls;
}

/** Ship label text: name, "(you)", hit points "hp/max" when known. */
function shipLabelText(name, own, hp, flags) {
  let text = own ? `${name} (you)` : name;
  if (hp) text += ` ${hp.hp}/${hp.max}`;
  if (flags & SHIP_DESTROYED) text += " ✕";
  return text;
}

export class SystemView {
  constructor(ctx, systemId) {
    this.ctx = ctx;
    this.canvas = ctx.canvas;
    this.systemId = systemId;
    this.disposed = false;
    this.worldLimit = WORLD_LIMIT;
    this.clock = new GameClock();
    this.buffer = new SnapshotBuffer({ delay: INTERP_DELAY });
    this.headings = new Map();
    this.planets = []; // {mesh, orbit, period, phase, name}
    this.star = null;
    this.systemInfo = null; // welcome.system
    this.ownShip = null; // own ship as drawn {x, y, flags, name, dx, dy}
    this.smoother = new Smoother();
    this.ownSource = null; // "predicted" | "frames": where the own ship's position came from
    this.frameApplied = false; // a frame was applied since the last render
    this.lastRender = 0;
    this.target = null; // {x, y, cmd}
    this.attackTarget = null; // {id, cmd}: the ship this page last ordered to attack
    this.obstacles = []; // meshes of the star's exclusion zone and the asteroids
    this.follow = false;
    this.capacity = 0;
    this.hudAt = 0;

    resetSystemState("system", systemId);
    setCrumb(systemId);

    this.panel = createSystemPanel({
      onReconnect: () => this.conn.reconnectNow(),
      onFollow: (on) => {
        this.follow = on;
      },
      onJump: (id) => this.game.jump(id),
    });
    mountPanel(this.panel.node);
    this.panel.setSystem(systemId, "#ffffff", "connecting…");

    this._buildScene();
    this.game = new SystemGame(this); // station, jump points, effects, chat, following the ship
    this.economy = new EconomyGame(this); // cargo, scanner, mining, wrecks, market (issue 16)
    this._bindPointer();
    this._connect();
    this._loadLanes();
  }

  // ---- scene ----

  _buildScene() {
    const scene = new Scene(this.ctx.engine);
    scene.clearColor = new Color4(0.006, 0.008, 0.022, 1);
    scene.skipPointerMovePicking = true;
    scene.skipPointerDownPicking = true;
    scene.skipPointerUpPicking = true;
    this.scene = scene;
    const L = this.worldLimit;

    const camera = new ArcRotateCamera("systemCam", -Math.PI / 2, 0.8, L * 1.7, Vector3.Zero(), scene);
    camera.minZ = 1;
    camera.maxZ = L * 20;
    camera.lowerRadiusLimit = 60;
    camera.upperRadiusLimit = L * 5;
    camera.upperBetaLimit = Math.PI / 2 - 0.08; // stay above the plane
    camera.wheelDeltaPercentage = 0.02;
    camera.pinchDeltaPercentage = 0.01;
    camera.attachControl(this.canvas, true);
    this.camera = camera;

    const hemi = new HemisphericLight("ambient", new Vector3(0, 1, 0), scene);
    hemi.intensity = 0.35;
    hemi.groundColor = new Color3(0.1, 0.1, 0.15);
    const sun = new PointLight("sun", Vector3.Zero(), scene);
    sun.intensity = 1.1;
    this.sunLight = sun;

    // Picking plane: invisible (visibility 0 is not drawn) but picked by predicate.
    const ground = CreateGround("ground", { width: 2 * L, height: 2 * L }, scene);
    ground.visibility = 0;
    this.ground = ground;

    // Grid and world border.
    const grid = [];
    for (let v = -L; v <= L + 1e-6; v += GRID_STEP) {
      grid.push([new Vector3(v, 0, -L), new Vector3(v, 0, L)]);
      grid.push([new Vector3(-L, 0, v), new Vector3(L, 0, v)]);
    }
    const gridMesh = CreateLineSystem("grid", { lines: grid }, scene);
    gridMesh.color = new Color3(0.16, 0.28, 0.45);
    gridMesh.alpha = 0.35;
    gridMesh.isPickable = false;
    const border = CreateLines(
      "border",
      { points: [new Vector3(-L, 0, -L), new Vector3(L, 0, -L), new Vector3(L, 0, L), new Vector3(-L, 0, L), new Vector3(-L, 0, -L)] },
      scene,
    );
    border.color = new Color3(0.35, 0.55, 0.85);
    border.isPickable = false;

    // Ships: one dart mesh, thin instances with per-instance colour.
    const dart = CreateCylinder("ships", { height: SHIP_LENGTH, diameterTop: 0, diameterBottom: SHIP_LENGTH * 0.55, tessellation: 3 }, scene);
    dart.rotation.z = -Math.PI / 2; // tip along +x (heading 0 = protocol +x)
    dart.scaling.x = 0.45; // local x becomes Babylon -y after the rotation: a flat dart
    dart.bakeCurrentTransformIntoVertices();
    const shipMat = new StandardMaterial("shipMat", scene);
    shipMat.diffuseColor = new Color3(1, 1, 1);
    shipMat.emissiveColor = new Color3(0.35, 0.35, 0.35);
    shipMat.specularColor = new Color3(0.3, 0.3, 0.3);
    dart.material = shipMat;
    dart.isPickable = false;
    dart.alwaysSelectAsActiveMesh = true;
    dart.doNotSyncBoundingInfo = true;
    dart.isVisible = false;
    this.shipMesh = dart;
    this._ensureCapacity(16);

    // Own ship ring and target marker.
    const ringMat = new StandardMaterial("ringMat", scene);
    ringMat.disableLighting = true;
    ringMat.emissiveColor = new Color3(...COLOR_OWN);
    const ring = CreateTorus("ownRing", { diameter: SHIP_LENGTH * 1.9, thickness: 1.6, tessellation: 48 }, scene);
    ring.material = ringMat;
    ring.isPickable = false;
    ring.setEnabled(false);
    this.ownRing = ring;

    const targetMat = new StandardMaterial("targetMat", scene);
    targetMat.disableLighting = true;
    targetMat.emissiveColor = new Color3(1, 0.85, 0.3);
    const marker = CreateTorus("target", { diameter: 26, thickness: 2.2, tessellation: 32 }, scene);
    marker.material = targetMat;
    marker.isPickable = false;
    marker.setEnabled(false);
    this.targetMarker = marker;
    const attackMat = new StandardMaterial("attackMat", scene);
    attackMat.disableLighting = true;
    attackMat.emissiveColor = new Color3(1, 0.25, 0.2);
    const attackRing = CreateTorus("attackTarget", { diameter: SHIP_LENGTH * 1.6, thickness: 2, tessellation: 4 }, scene);
    attackRing.material = attackMat;
    attackRing.isPickable = false;
    attackRing.setEnabled(false);
    this.attackMarker = attackRing;
    this.targetLinePoints = [Vector3.Zero(), Vector3.Zero()];
    this.targetLine = CreateLines("targetLine", { points: this.targetLinePoints, updatable: true }, scene);
    this.targetLine.color = new Color3(1, 0.85, 0.3);
    this.targetLine.alpha = 0.5;
    this.targetLine.isPickable = false;
    this.targetLine.setEnabled(false);
  }

  /** Star, planets and orbits from welcome.system (built once). */
  _buildSystem(system) {
    if (this.star) return;
    const scene = this.scene;
    const starColor = hexColor(system.color, "#fff4e8");
    const radius = Math.max(5, +system.star_radius || 40);
    const star = CreateSphere("star", { diameter: 2 * radius, segments: 32 }, scene);
    const starMat = new StandardMaterial("starMat", scene);
    starMat.disableLighting = true;
    starMat.emissiveColor = starColor;
    star.material = starMat;
    star.isPickable = false;
    this.halo = createHalo(scene, "starHalo", starColor, radius * 8, 1 / 8);
    this.sunLight.diffuse = Color3.Lerp(starColor, Color3.White(), 0.5);
    this.star = star;

    const rings = [];
    for (const p of system.planets || []) {
      const mesh = CreateSphere(`planet-${p.id}`, { diameter: 2 * Math.max(4, +p.radius || 6), segments: 20 }, scene);
      const mat = new StandardMaterial(`planetMat-${p.id}`, scene);
      mat.diffuseColor = hexColor(p.color, "#8899aa");
      mat.specularColor = new Color3(0.08, 0.08, 0.08);
      mat.emissiveColor = mat.diffuseColor.scale(0.12);
      mesh.material = mat;
      mesh.isPickable = false;
      this.planets.push({
        mesh,
        name: p.name || `Planet ${p.id}`,
        orbit: +p.orbit || 0,
        period: +p.period || 1,
        phase: +p.phase || 0,
      });
      const pts = [];
      const segs = 128;
      for (let i = 0; i <= segs; i++) {
        const a = (2 * Math.PI * i) / segs;
        pts.push(new Vector3(p.orbit * Math.cos(a), 0, p.orbit * Math.sin(a)));
      }
      rings.push(pts);
    }
    this._buildObstacles(system);
    if (rings.length) {
      const orbits = CreateLineSystem("orbits", { lines: rings }, scene);
      orbits.color = new Color3(0.55, 0.65, 0.85);
      orbits.alpha = 0.3;
      orbits.isPickable = false;
    }
  }

  /** The star's exclusion zone and the asteroid discs (docs/protocol.md §9), flat on the plane. */
  _buildObstacles(system) {
    const scene = this.scene;
    const circle = (r, cx = 0, cy = 0, segs = 64) => {
      const pts = [];
      for (let i = 0; i <= segs; i++) {
        const a = (2 * Math.PI * i) / segs;
        pts.push(new Vector3(cx + r * Math.cos(a), 0.5, cy + r * Math.sin(a)));
      }
      return pts;
    };
    const excl = +system.exclusion_radius;
    if (Number.isFinite(excl) && excl > 0) {
      const zone = CreateDisc("exclusionZone", { radius: excl, tessellation: 64 }, scene);
      zone.rotation.x = Math.PI / 2; // the disc's XY plane onto the system plane (Babylon XZ)
      zone.position.y = -0.5;
      const mat = new StandardMaterial("exclusionMat", scene);
      mat.disableLighting = true;
      mat.emissiveColor = new Color3(0.9, 0.35, 0.15);
      mat.alpha = 0.12;
      mat.backFaceCulling = false;
      zone.material = mat;
      zone.isPickable = false;
      const edge = CreateLines("exclusionEdge", { points: circle(excl) }, scene);
      edge.color = new Color3(1, 0.45, 0.2);
      edge.alpha = 0.6;
      edge.isPickable = false;
      this.obstacles.push(zone, edge);
    }
    const asteroids = (Array.isArray(system.asteroids) ? system.asteroids : []).filter(
      (a) => a && Number.isFinite(+a.x) && Number.isFinite(+a.y) && +a.radius > 0,
    );
    if (asteroids.length) {
      // one flat rock mesh, a thin instance per disc (scaled to its radius)
      const rock = CreateCylinder("asteroids", { height: 1, diameter: 2, tessellation: 20 }, scene);
      const mat = new StandardMaterial("asteroidMat", scene);
      mat.diffuseColor = new Color3(0.42, 0.38, 0.34);
      mat.emissiveColor = new Color3(0.16, 0.15, 0.14);
      mat.specularColor = new Color3(0.05, 0.05, 0.05);
      rock.material = mat;
      rock.isPickable = false;
      rock.alwaysSelectAsActiveMesh = true;
      const buf = new Float32Array(16 * asteroids.length);
      const m = new Matrix();
      asteroids.forEach((a, i) => {
        const r = +a.radius;
        Matrix.ScalingToRef(r, 2, r, m);
        m.setTranslationFromFloats(+a.x, 0, +a.y);
        m.copyToArray(buf, 16 * i);
      });
      rock.thinInstanceSetBuffer("matrix", buf, 16, true);
      const outlines = CreateLineSystem("asteroidEdges", { lines: asteroids.map((a) => circle(+a.radius, +a.x, +a.y, 24)) }, scene);
      outlines.color = new Color3(0.75, 0.68, 0.6);
      outlines.alpha = 0.5;
      outlines.isPickable = false;
      this.obstacles.push(rock, outlines);
    }
    hook.asteroids = asteroids.length;
    hook.exclusionRadius = Number.isFinite(excl) ? excl : null;
  }

  _ensureCapacity(n) {
    if (n <= this.capacity) return;
    let cap = Math.max(16, this.capacity);
    while (cap < n) cap *= 2;
    this.capacity = cap;
    this.matrices = new Float32Array(16 * cap);
    this.colors = new Float32Array(4 * cap);
    this.shipMesh.thinInstanceSetBuffer("matrix", this.matrices, 16, false);
    this.shipMesh.thinInstanceSetBuffer("color", this.colors, 4, false);
  }

  // ---- input ----

  _bindPointer() {
    let down = null;
    this.scene.onPointerObservable.add((info) => {
      const ev = info.event;
      if (info.type === PointerEventTypes.POINTERDOWN) {
        down = ev.button === 0 ? { x: ev.clientX, y: ev.clientY } : null;
      } else if (info.type === PointerEventTypes.POINTERUP) {
        if (!down || ev.button !== 0) return;
        const moved = Math.hypot(ev.clientX - down.x, ev.clientY - down.y);
        down = null;
        if (moved > CLICK_SLOP_PX) return; // a drag orbits the camera
        if (this.game.click(this.scene.pointerX, this.scene.pointerY)) return; // a jump point
        const shipId = this._shipAt(this.scene.pointerX, this.scene.pointerY);
        if (shipId != null) {
          this.attack(shipId);
          return;
        }
        if (this.economy.click(this.scene.pointerX, this.scene.pointerY)) return; // a wreck, planet, field or anomaly
        const pick = this.scene.pick(this.scene.pointerX, this.scene.pointerY, (m) => m === this.ground);
        if (!pick || !pick.hit || !pick.pickedPoint) return;
        const L = this.worldLimit;
        const x = Math.max(-L, Math.min(L, pick.pickedPoint.x));
        const y = Math.max(-L, Math.min(L, pick.pickedPoint.z));
        this.moveTo(Math.round(x * 100) / 100, Math.round(y * 100) / 100);
      }
    });
  }

  moveTo(x, y) {
    const seq = this.conn.moveTo(x, y);
    this.target = { x, y, cmd: this.conn.lastCommand };
    this.attackTarget = null;
    this._syncHook();
    return seq;
  }

  /** Attack ship `id` (sent like move_to: queued offline, acknowledged). */
  attack(id) {
    const seq = this.conn.attack(id);
    this.attackTarget = { id, cmd: this.conn.lastCommand };
    this.target = null;
    this._syncHook();
    return seq;
  }

  /** The other ship drawn nearest to canvas point (x, y) (CSS px) within PICK_SHIP_PX, or null. */
  _shipAt(x, y) {
    const states = this.drawn;
    if (!states) return null;
    const v = new Vector3();
    const p = { x: 0, y: 0 };
    let best = null;
    let bestD = PICK_SHIP_PX;
    for (const [id, s] of states) {
      if (id === hook.shipId) continue;
      v.set(s.x, SHIP_ALTITUDE, s.y);
      if (!projectToCss(this.scene, this.canvas, v, p)) continue;
      const d = Math.hypot(p.x - x, p.y - y);
      if (d < bestD) {
        bestD = d;
        best = id;
      }
    }
    return best;
  }

  // ---- network ----

  _connect() {
    this.conn = new SystemConnection(this.systemId, {
      name: displayName,
      getToken: (opts) => auth.token(opts),
      invalidateToken: (token) => auth.invalidate(token),
      now: () => (this.clock.ready ? this.clock.now() : 0),
      onStatus: (st) => this._onStatus(st),
      onWelcome: (w, seq, info) => this._onWelcome(w, info),
      onFrame: (f, result) => this._onFrame(f, result),
      onMessage: (type, seq, p) => this.economy.onMessage(type, seq, p) || this.game.onMessage(type, seq, p),
      onMoved: (code) => this.game.onMoved(code),
      onServerError: (e, seq) => {
        if (this.economy.onError(e, seq)) {
          hook.lastError = { code: e.code, message: e.message, seq };
          return;
        }
        if (this.game.onError(e)) {
          if (e.code !== ERR_ELSEWHERE) hook.lastError = { code: e.code, message: e.message, seq };
          return;
        }
        hook.lastError = { code: e.code, message: e.message, seq };
        if (e.code === ERR_UNAUTHORIZED) return; // handled: a new token and straight back
        if (e.code === ERR_RATE_LIMITED) showToast("Slow down: too many commands.");
        else if (ERROR_TEXT[e.code]) showToast(`Error ${e.code}: ${ERROR_TEXT[e.code]}`);
        else showToast(`Error ${e.code}: ${e.message}`);
      },
    });
    hook.moveTo = (x, y) => this.moveTo(x, y);
    hook.attack = (id) => this.attack(id);
    hook.resync = () => this.conn.resync();
    this._online = () => this.conn.wake();
    window.addEventListener("online", this._online);
    this.conn.start();
  }

  /** Copy the connection's counters to window.starhold and the HUD. */
  _syncHook() {
    const c = this.conn;
    const w = c.world;
    Object.assign(hook, {
      seq: c.seq,
      ack: w.ack,
      queued: c.queue.size,
      pending: c.queue.pending.length,
      resyncs: c.resyncs,
      gaps: w.gaps,
      reconnects: c.reconnects,
      welcomes: c.welcomes,
      lastClose: c.lastClose,
      closes: c.closes.slice(),
    });
    setQueued(c.queue.size);
  }

  _onStatus(st) {
    setStatus(st);
    hook.status = st.state;
    hook.connection = st.connection;
    hook.statusText = st.text;
    hook.retryAt = st.retryAt || 0;
    this.panel.setReconnect(st.state);
    if (this.conn) this._syncHook();
    if (st.state === "closed" && st.code === CLOSE_UNKNOWN_ROOM) {
      showToast(`Unknown system "${this.systemId}": pick one from the galaxy map.`, 6000);
    }
  }

  _onWelcome(w, info) {
    const sys = w.system || {};
    this.systemInfo = sys;
    if (Number.isFinite(+w.world_limit) && +w.world_limit > 0) this.worldLimit = +w.world_limit;
    this._buildSystem(sys);
    if (hook.shipId !== null && hook.shipId !== w.ship) {
      // a new player (a new guest token): another ship, nothing to carry over
      this.smoother.reset();
      this.target = null;
      this.attackTarget = null;
      this.conn.queue.lastAcked.clear(); // that target was another ship's
    }
    Object.assign(hook, {
      shipId: w.ship,
      player: w.player ?? null,
      playerName: w.name ?? null,
      seat: w.seat ?? null,
      resumed: !!info.resumed,
      systemId: sys.id || this.systemId,
      systemName: sys.name || null,
    });
    this._syncHook();
    setCrumb(sys.name || this.systemId);
    this.panel.setSystem(sys.name || this.systemId, sys.color, `${(sys.planets || []).length} planets`);
    document.title = `${sys.name || this.systemId} · Starhold`;
    this.clock.observe(+w.time || 0);
    if (info.reconnects > 0) {
      const what = info.resumed ? "seat resumed" : "new seat";
      showToast(`Reconnected (${what}${info.resent ? `, ${info.resent} command${info.resent === 1 ? "" : "s"} resent` : ""}).`, 2500);
    }
    this.game.onWelcome(w);
    this.economy.onWelcome(w);
  }

  _onFrame(f, result) {
    const w = this.conn.world;
    if (result === APPLIED_KEYFRAME || result === APPLIED_DELTA) {
      hook.tick = w.tick;
      hook.time = w.time;
      hook.frames += 1;
      if (result === APPLIED_KEYFRAME) hook.keyframes += 1;
      hook.ships = w.toPlain();
      hook.shipCount = w.ships.size;
      this.clock.observe(w.time);
      this.buffer.push(w.time, w.snapshot());
      this.frameApplied = true;
      this.game.onFrame(w.events);
    }
    this._syncHook();
  }

  async _loadLanes() {
    try {
      const [sys, galaxy] = await Promise.all([fetchSystem(this.systemId), cachedGalaxy() || fetchGalaxy().catch(() => null)]);
      if (this.disposed) return;
      const byId = new Map(((galaxy && galaxy.systems) || []).map((s) => [s.id, s]));
      const here = sys.position;
      const lanes = (sys.lanes || []).map((id) => {
        const o = byId.get(id);
        let distance = null;
        if (o && here && o.position) distance = Math.hypot(...o.position.map((v, i) => v - here[i]));
        return { id, name: o ? o.name : id, distance };
      });
      lanes.sort((a, b) => (a.distance ?? 1e9) - (b.distance ?? 1e9));
      this.panel.setLanes(lanes);
      if (!this.systemInfo) {
        setCrumb(sys.name || this.systemId);
        this.panel.setSystem(sys.name || this.systemId, sys.color, "connecting…");
      }
    } catch (err) {
      if (!this.disposed) this.panel.setLanes([], err.status === 404 ? "unknown system" : `lanes unavailable: ${err.message}`);
    }
  }

  // ---- frame ----

  render() {
    const now = performance.now();
    const present = this.clock.ready ? this.clock.now(now) : 0;
    const t = this.clock.ready ? present - INTERP_DELAY : 0;
    const dt = this.lastRender ? Math.min(0.5, (now - this.lastRender) / 1000) : 0;
    this.lastRender = now;

    for (const p of this.planets) {
      const a = p.phase + (2 * Math.PI * t) / p.period;
      p.mesh.position.set(p.orbit * Math.cos(a), 0, p.orbit * Math.sin(a));
    }

    const states = this.buffer.sample(t);
    this._placeOwnShip(states, present, dt);
    this.drawn = states;
    this._updateShips(states);
    this.game.render(states, now);
    this.economy.render(states, now, t);
    this._updateMarkers(now);
    this.camera.panningSensibility = 12000 / this.camera.radius;
    if (this.follow && this.ownShip) {
      const goal = new Vector3(this.ownShip.x, 0, this.ownShip.y);
      this.camera.target = Vector3.Lerp(this.camera.target, goal, 0.08);
    }

    this.scene.render();
    this._updateLabels(states);
    if (now - this.hudAt > 250) {
      this.hudAt = now;
      this._updateHud(states);
    }
  }

  /**
   * The own ship at its predicted present position: the latest frame plus the pending
   * commands replayed; without a prediction (moving toward a target this page did not set),
   * the interpolated one. Jumps (a new frame, a switch of source) are smoothed.
   */
  _placeOwnShip(states, present, dt) {
    const id = hook.shipId;
    const world = this.conn.world;
    const server = id == null ? null : world.ships.get(id);
    if (!server) {
      this.smoother.reset();
      this.ownSource = null;
      hook.predicted = null;
      return;
    }
    const queue = this.conn.queue;
    const acked = queue.lastAcked.get(MOVE_TO);
    // After an attack order the room steers the ship toward its target: no prediction until
    // a newer move_to (in combat or destroyed, predictShip declines on its own).
    const lastAttack = queue.pendingOf(ATTACK).at(-1) || queue.lastAcked.get(ATTACK);
    const lastMove = queue.pendingOf(MOVE_TO).at(-1) || acked;
    const attacking = !!lastAttack && (!lastMove || lastAttack.at >= lastMove.at);
    const pred = attacking ? null : predictShip(server, world.time, present, this.conn.queue.pendingOf(MOVE_TO), acked ? acked.payload : null);
    const source = pred ? "predicted" : "frames";
    const raw = pred || states.get(id);
    if (!raw) return;
    const jumped = this.frameApplied || source !== this.ownSource;
    this.frameApplied = false;
    this.ownSource = source;
    const shown = this.smoother.update(raw.x, raw.y, dt, jumped);
    const flags = pred ? (server.flags & ~SHIP_MOVING) | (pred.moving ? SHIP_MOVING : 0) : raw.flags;
    states.set(id, { x: shown.x, y: shown.y, flags, name: world.name(id), dx: raw.dx || 0, dy: raw.dy || 0 });
    hook.predicted = { x: shown.x, y: shown.y };
  }

  _updateShips(states) {
    const n = states.size;
    this._ensureCapacity(n);
    const m = Matrix.Identity();
    let i = 0;
    const own = hook.shipId;
    this.ownShip = null;
    for (const [id, s] of states) {
      if (Math.abs(s.dx) + Math.abs(s.dy) > 1e-6) this.headings.set(id, Math.atan2(s.dy, s.dx));
      const h = this.headings.get(id) || 0;
      Matrix.RotationYToRef(-h, m);
      m.setTranslationFromFloats(s.x, SHIP_ALTITUDE, s.y);
      m.copyToArray(this.matrices, 16 * i);
      const c = shipColor(s.flags, id === own);
      this.colors[4 * i] = c[0];
      this.colors[4 * i + 1] = c[1];
      this.colors[4 * i + 2] = c[2];
      this.colors[4 * i + 3] = 1;
      if (id === own) this.ownShip = s;
      i++;
    }
    if (this.headings.size > n + 64) {
      for (const id of this.headings.keys()) if (!states.has(id)) this.headings.delete(id);
    }
    this.shipMesh.thinInstanceCount = n;
    this.shipMesh.isVisible = n > 0;
    if (n > 0) {
      this.shipMesh.thinInstanceBufferUpdated("matrix");
      this.shipMesh.thinInstanceBufferUpdated("color");
    }
  }

  _updateMarkers(now) {
    const own = this.ownShip;
    this.ownRing.setEnabled(!!own);
    if (own) {
      this.ownRing.position.set(own.x, SHIP_ALTITUDE, own.y);
      const s = 1 + 0.12 * Math.sin(now / 250);
      this.ownRing.scaling.set(s, 1, s);
    }
    const tgt = this.target;
    if (tgt) {
      // gone once the room has applied it and the ship stopped (there, or somewhere else
      // because a later command or the world's edge changed its course)
      const latest = hook.ships[hook.shipId];
      const seq = tgt.cmd ? tgt.cmd.seq : null;
      const acked = seq != null && hook.ack >= seq;
      if (latest && acked && !(latest.flags & SHIP_MOVING)) this.target = null;
    }
    const at = this.attackTarget;
    let victim = null;
    if (at) {
      const latest = hook.ships[at.id];
      const acked = at.cmd && at.cmd.seq != null && hook.ack >= at.cmd.seq;
      // gone with the ship, or once it is destroyed after the order was applied
      if (!latest || (acked && latest.flags & SHIP_DESTROYED) || (hook.lastError && hook.lastError.seq === at.cmd?.seq && at.cmd?.seq != null)) {
        this.attackTarget = null;
      } else {
        victim = this.drawn && this.drawn.get(at.id);
      }
    }
    this.attackMarker.setEnabled(!!victim);
    if (victim) {
      this.attackMarker.position.set(victim.x, SHIP_ALTITUDE, victim.y);
      this.attackMarker.rotation.y = now / 400;
    }
    const show = !!this.target;
    this.targetMarker.setEnabled(show);
    this.targetLine.setEnabled(show && !!own);
    if (!show) return;
    this.targetMarker.position.set(this.target.x, 1, this.target.y);
    this.targetMarker.rotation.y = now / 900;
    if (own) {
      this.targetLinePoints[0].set(own.x, SHIP_ALTITUDE, own.y);
      this.targetLinePoints[1].set(this.target.x, 1, this.target.y);
      CreateLines("targetLine", { points: this.targetLinePoints, instance: this.targetLine });
    }
  }

  _updateLabels(states) {
    const { labels } = this.ctx;
    const scene = this.scene;
    const v = new Vector3();
    labels.begin();
    if (this.star && this.systemInfo) {
      v.set(0, (+this.systemInfo.star_radius || 40) * 1.25, 0);
      labels.place(scene, this.canvas, "star", this.systemInfo.name || this.systemId, v, "star-name");
    }
    for (const p of this.planets) {
      v.copyFrom(p.mesh.position);
      v.y += 14;
      labels.place(scene, this.canvas, `planet:${p.name}`, p.name, v, "planet");
    }
    let count = 0;
    const own = hook.shipId;
    for (const [id, s] of states) {
      const mine = id === own;
      if (!mine && count >= MAX_SHIP_LABELS) continue;
      count++;
      v.set(s.x, SHIP_ALTITUDE + 18, s.y);
      const name = s.name || `#${id}`;
      const cls = shipLabelClass(s.flags, mine);
      const text = shipLabelText(name, mine, this.conn.world.hitPoints(id), s.flags);
      labels.place(scene, this.canvas, `ship:${id}`, text, v, cls);
    }
    this.game.placeLabels(labels);
    this.economy.placeLabels(labels);
    labels.end();
  }

  _updateHud(states) {
    const own = this.ownShip;
    if (own) {
      let moving = own.flags & SHIP_MOVING ? "moving" : "idle";
      if (own.flags & SHIP_IN_COMBAT) moving = "in combat";
      if (own.flags & SHIP_DESTROYED) moving = "destroyed (respawning)";
      const hp = this.conn.world.hitPoints(hook.shipId);
      const hpText = hp ? ` · hp ${hp.hp}/${hp.max}` : "";
      this.panel.setShip(`Ship #${hook.shipId} at (${own.x.toFixed(0)}, ${own.y.toFixed(0)}) · ${moving}${hpText} · ${states.size} ship${states.size === 1 ? "" : "s"} here`);
    } else if (hook.shipId != null) {
      this.panel.setShip(`Ship #${hook.shipId}`);
    }
  }

  dispose() {
    this.disposed = true;
    window.removeEventListener("online", this._online);
    this.conn.stop("left system");
    this.game.dispose();
    this.economy.dispose();
    setStatus(null);
    this.ctx.labels.clear();
    mountPanel(null);
    this.scene.dispose();
    document.title = "Starhold";
  }
}

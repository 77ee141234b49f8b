// Galaxy view: a 3-D map of the systems from /api/galaxy (parsecs, ICRS axes mapped to
// Babylon's y-up: protocol (x, y, z) -> Babylon (x, z, y)), lanes as thin lines, stars as
// one point cloud, clickable (picked in screen space); plus the HTML side list with search.
import { Scene } from "@babylonjs/core/scene.js";
import { ArcRotateCamera } from "@babylonjs/core/Cameras/arcRotateCamera.js";
import { Color3, Color4 } from "@babylonjs/core/Maths/math.color.js";
import { Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";
import { PointerEventTypes } from "@babylonjs/core/Events/pointerEvents.js";

import { fetchGalaxy } from "./api.js";
import { createGalaxyList } from "./galaxyList.js";
import { GalaxyRoute } from "./galaxyRoute.js";
import { declutter, labelBox, starPriority } from "./declutter.js";
import { mountPanel, setCrumb, setStatus } from "./hud.js";
import { projectToCss } from "./labels.js";
import { createStarPoints } from "./sprites.js";
import hook, { resetSystemState } from "./testHook.js";

const REFRESH_MS = 15000;
const PICK_RADIUS_PX = 14;
const CLICK_SLOP_PX = 6;
const NAMED_LABEL_PC = 5; // named stars closer than this get a permanent label

export function galaxyToBabylon(p) {
  return new Vector3(p[0], p[2], p[1]);
}

function starSize(s) {
  if (s.id === "sol") return 0.9;
  if (s.magnitude == null || !Number.isFinite(+s.magnitude)) return 0.5;
  return Math.min(1.1, Math.max(0.35, 0.9 - 0.035 * s.magnitude));
}

function isNamed(s) {
  return !/^(HIP|GJ|Gliese|Gl)\s/i.test(s.name);
}

export class GalaxyView {
  constructor(ctx) {
    this.ctx = ctx;
    const { engine, canvas } = ctx;
    this.canvas = canvas;
    this.systems = [];
    this.positions = []; // Vector3 per system, same order
    this.byId = new Map();
    this.hoverId = null; // star under the pointer
    this.listHoverId = null; // list entry under the pointer
    this.pointerDirty = false;
    this.disposed = false;
    this.screen = { x: 0, y: 0 };

    resetSystemState("galaxy");
    setCrumb("");
    setStatus(null);

    const scene = new Scene(engine);
    scene.clearColor = new Color4(0.008, 0.01, 0.03, 1);
    scene.skipPointerMovePicking = true;
    scene.skipPointerDownPicking = true;
    scene.skipPointerUpPicking = true;
    this.scene = scene;

    const camera = new ArcRotateCamera("galaxyCam", -Math.PI / 2.4, Math.PI / 2.8, 40, Vector3.Zero(), scene);
    camera.minZ = 0.05;
    camera.maxZ = 2000;
    camera.lowerRadiusLimit = 1;
    camera.wheelDeltaPercentage = 0.02;
    camera.pinchDeltaPercentage = 0.01;
    camera.panningSensibility = 60;
    camera.attachControl(canvas, true);
    this.camera = camera;

    this.list = createGalaxyList({
      onHover: (id) => {
        this.listHoverId = id;
      },
      onRetry: () => this.load(),
    });
    mountPanel(this.list.node);

    this.routeUi = new GalaxyRoute(this); // star card, route plotter
    this._bindPointer();
    this.load();
    this.refreshTimer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  async load() {
    try {
      const galaxy = await fetchGalaxy();
      if (this.disposed) return;
      this._build(galaxy.systems || []);
      this.list.setSystems(this.systems);
    } catch (err) {
      if (!this.disposed) this.list.setError(err.message || String(err));
    }
  }

  async refresh() {
    try {
      const galaxy = await fetchGalaxy({ force: true });
      if (this.disposed) return;
      if (!this.systems.length) this._build(galaxy.systems || []);
      for (const s of galaxy.systems || []) {
        const i = this.byId.get(s.id);
        if (i !== undefined) this.systems[i].players = s.players;
      }
      this.list.setSystems(galaxy.systems || []);
    } catch {
      /* keep the last list; the next refresh may work */
    }
  }

  _build(systems) {
    if (this.systems.length) return;
    this.systems = systems;
    this.positions = systems.map((s) => galaxyToBabylon(s.position || [0, 0, 0]));
    systems.forEach((s, i) => this.byId.set(s.id, i));
    const scene = this.scene;

    // Stars: one point cloud, colour and size per star.
    const n = systems.length;
    const positions = new Float32Array(3 * n);
    const colors = new Float32Array(4 * n);
    const sizes = new Float32Array(n);
    let maxDist = 1;
    systems.forEach((s, i) => {
      const p = this.positions[i];
      p.toArray(positions, 3 * i);
      const c = Color3.FromHexString(/^#[0-9a-f]{6}$/i.test(s.color) ? s.color : "#ffffff");
      colors.set([c.r, c.g, c.b, 1], 4 * i);
      sizes[i] = starSize(s);
      maxDist = Math.max(maxDist, p.length());
    });
    this.stars = createStarPoints(scene, "stars", positions, colors, sizes);

    // Lanes: one line system, each pair once.
    const lines = [];
    systems.forEach((s, i) => {
      for (const other of s.lanes || []) {
        const j = this.byId.get(other);
        if (j === undefined || j <= i) continue;
        lines.push([this.positions[i], this.positions[j]]);
      }
    });
    if (lines.length) {
      const lanes = CreateLineSystem("lanes", { lines }, scene);
      lanes.color = new Color3(0.35, 0.55, 0.95);
      lanes.alpha = 0.28;
      lanes.isPickable = false;
    }

    this.camera.radius = Math.min(maxDist * 1.6, 200);
    this.camera.upperRadiusLimit = maxDist * 5;
  }

  _bindPointer() {
    let down = null;
    this.scene.onPointerObservable.add((info) => {
      const ev = info.event;
      if (info.type === PointerEventTypes.POINTERMOVE) {
        this.pointerDirty = true;
      } else if (info.type === PointerEventTypes.POINTERDOWN) {
        down = ev.button === 0 ? { x: ev.clientX, y: ev.clientY } : null;
      } else if (info.type === PointerEventTypes.POINTERUP) {
        if (!down || ev.button !== 0) return;
        const moved = Math.hypot(ev.clientX - down.x, ev.clientY - down.y);
        down = null;
        if (moved > CLICK_SLOP_PX) return;
        const i = this._nearestStar(this.scene.pointerX, this.scene.pointerY);
        if (i >= 0) this.routeUi.select(this.systems[i].id); // the star's card (View system: go there)
      }
    });
  }

  /** Index of the star drawn nearest to CSS pixel (x, y) within PICK_RADIUS_PX, or -1. */
  _nearestStar(x, y) {
    let best = -1;
    let bestD = PICK_RADIUS_PX * PICK_RADIUS_PX;
    const pt = this.screen;
    for (let i = 0; i < this.positions.length; i++) {
      if (!projectToCss(this.scene, this.canvas, this.positions[i], pt)) continue;
      const d = (pt.x - x) ** 2 + (pt.y - y) ** 2;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  }

  render() {
    if (this.stars) this.stars.update(this.camera);
    this.scene.render();
    if (!this.systems.length) return;
    if (this.pointerDirty) {
      this.pointerDirty = false;
      const i = this._nearestStar(this.scene.pointerX, this.scene.pointerY);
      this.hoverId = i >= 0 ? this.systems[i].id : null;
      this.canvas.style.cursor = i >= 0 ? "pointer" : "";
    }
    this._placeLabels();
  }

  /**
   * Star labels: Sol, the hovered and selected stars, the plotted route's and the named stars
   * within NAMED_LABEL_PC; a label that would overlap a more important one (Sol, brighter,
   * closer) is hidden until hovered (declutter.js).
   */
  _placeLabels() {
    const labels = this.ctx.labels;
    const route = this.routeUi.highlighted();
    const items = [];
    const pt = this.screen;
    this.systems.forEach((s, i) => {
      const hovered = s.id === this.hoverId || s.id === this.listHoverId;
      const selected = s.id === this.routeUi.selected;
      let text = null;
      let cls = "star named";
      if (hovered) {
        const players = s.players ? ` · ${s.players} online` : "";
        text = `${s.name} · ${s.distance.toFixed(2)} pc${players}`;
        cls = s.id === "sol" ? "star sol hover" : "star hover";
      } else if (s.id === "sol") {
        text = s.name;
        cls = "star sol";
      } else if (selected || route.has(s.id)) {
        text = s.name;
        cls = selected ? "star selected" : "star route";
      } else if (s.distance <= NAMED_LABEL_PC && isNamed(s)) {
        text = s.name;
      }
      if (text === null || !projectToCss(this.scene, this.canvas, this.positions[i], pt)) return;
      const priority = starPriority(s) + (route.has(s.id) ? 1000 : 0);
      items.push({ key: s.id, text, cls, i, priority, force: hovered || selected || s.id === "sol", box: labelBox(pt.x, pt.y, text) });
    });
    const shown = declutter(items);
    labels.begin();
    for (const it of items) {
      if (shown.has(it.key)) labels.place(this.scene, this.canvas, it.key, it.text, this.positions[it.i], it.cls);
    }
    labels.end();
  }

  dispose() {
    this.disposed = true;
    clearInterval(this.refreshTimer);
    this.routeUi.dispose();
    this.canvas.style.cursor = "";
    this.ctx.labels.clear();
    mountPanel(null);
    this.scene.dispose();
    if (hook.view === "galaxy") hook.view = null;
  }
}

// The economy in the 3-D scene: wrecks (amber tumbling crates), anomalies (violet rings),
// the scanner's selected target (a yellow ring), and what ships are doing: a ship flagged
// SHIP_SCANNING sends out expanding cyan pulses, a ship flagged SHIP_MINING a green beam to
// the nearest field or planet within mining range (its own ship: to the target it mines).
// Every pilot sees every ship's flags, so everyone sees who scans and who mines.
import { Color3 } from "@babylonjs/core/Maths/math.color.js";
import { Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { StandardMaterial } from "@babylonjs/core/Materials/standardMaterial.js";
import { CreateBox } from "@babylonjs/core/Meshes/Builders/boxBuilder.js";
import { CreateTorus } from "@babylonjs/core/Meshes/Builders/torusBuilder.js";
import { CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";

import { MINE_RANGE, SHIP_MINING, SHIP_SCANNING } from "./economy_protocol.js";
import { projectToCss } from "./labels.js";

const ALTITUDE = 3;
const PULSE_MS = 1200;
export const PICK_TARGET_PX = 22; // a click this close (CSS px) to a target's centre picks it

function material(scene, name, rgb, alpha = 1) {
  const m = new StandardMaterial(name, scene);
  m.disableLighting = true;
  m.emissiveColor = new Color3(...rgb);
  m.alpha = alpha;
  return m;
}

export class EconomyFx {
  constructor(scene) {
    this.scene = scene;
    this.wreckMeshes = new Map(); // wreck id -> mesh
    this.anomalyMeshes = [];
    this.pulses = []; // torus pool
    this.beams = null;
    this.wreckMat = material(scene, "wreckMat", [1.0, 0.7, 0.25]);
    this.pulseMat = material(scene, "scanPulseMat", [0.3, 0.95, 1.0], 0.6);
    this.anomalyMat = material(scene, "anomalyMat", [0.8, 0.45, 1.0]);
    this.selected = CreateTorus("scanSelected", { diameter: 60, thickness: 1.5, tessellation: 48 }, scene);
    this.selected.material = material(scene, "scanSelectedMat", [1.0, 0.9, 0.3]);
    this.selected.isPickable = false;
    this.selected.setEnabled(false);
    this.v = new Vector3();
    this.pt = { x: 0, y: 0 };
  }

  /** The anomalies (economyTargets.anomalies), built once. */
  buildAnomalies(list) {
    if (this.anomalyMeshes.length) return;
    for (const a of list) {
      const ring = CreateTorus(`anomaly-${a.index}`, { diameter: 34, thickness: 3, tessellation: 6 }, this.scene);
      ring.material = this.anomalyMat;
      ring.position.set(a.x, 8, a.y);
      ring.isPickable = false;
      this.anomalyMeshes.push(ring);
    }
  }

  /** Keep one crate per wreck. */
  setWrecks(wrecks) {
    const keep = new Set(wrecks.map((w) => w.id));
    for (const [id, mesh] of this.wreckMeshes) {
      if (!keep.has(id)) {
        mesh.dispose();
        this.wreckMeshes.delete(id);
      }
    }
    for (const w of wrecks) {
      let mesh = this.wreckMeshes.get(w.id);
      if (!mesh) {
        mesh = CreateBox(`wreck-${w.id}`, { size: 12 }, this.scene);
        mesh.material = this.wreckMat;
        mesh.isPickable = false;
        this.wreckMeshes.set(w.id, mesh);
      }
      mesh.position.set(w.x, ALTITUDE + 4, w.y);
    }
  }

  _pulse(i) {
    if (!this.pulses[i]) {
      const t = CreateTorus(`scanPulse-${i}`, { diameter: 2, thickness: 0.08, tessellation: 40 }, this.scene);
      t.material = this.pulseMat;
      t.isPickable = false;
      this.pulses[i] = t;
    }
    return this.pulses[i];
  }

  /**
   * Draw at `nowMs`: `states` Map ship id -> {x, y, flags} as drawn; `own` the own ship id;
   * `ownMine` the own ship's mining target {x, y} or null; `spots` [{x, y}] fields and planets
   * (where other ships' beams point); `selected` {x, y, radius} or null.
   */
  render(nowMs, states, own, ownMine, spots, selected) {
    for (const [i, m] of [...this.wreckMeshes.values()].entries()) m.rotation.set(nowMs / 900 + i, nowMs / 1300, 0);
    for (const m of this.anomalyMeshes) m.rotation.y = nowMs / 700;
    let n = 0;
    const segs = [];
    for (const [id, s] of states) {
      if (s.flags & SHIP_SCANNING) {
        const k = (nowMs % PULSE_MS) / PULSE_MS;
        const p = this._pulse(n++);
        p.setEnabled(true);
        p.position.set(s.x, ALTITUDE, s.y);
        p.scaling.setAll(20 + 230 * k); // out to the scan range
        p.visibility = 1 - k;
      }
      if (s.flags & SHIP_MINING) {
        const to = id === own && ownMine ? ownMine : nearest(spots, s, MINE_RANGE + 60);
        if (to) segs.push([new Vector3(s.x, ALTITUDE, s.y), new Vector3(to.x, ALTITUDE, to.y)]);
      }
    }
    for (let i = n; i < this.pulses.length; i++) this.pulses[i].setEnabled(false);
    if (this.beams) this.beams.dispose();
    this.beams = null;
    if (segs.length) {
      this.beams = CreateLineSystem("mineBeams", { lines: segs }, this.scene);
      this.beams.color = new Color3(0.35, 1.0, 0.45);
      this.beams.alpha = 0.55 + 0.45 * Math.sin(nowMs / 90);
      this.beams.isPickable = false;
    }
    this.selected.setEnabled(!!selected);
    if (selected) {
      this.selected.position.set(selected.x, 1.5, selected.y);
      const r = Math.max(20, selected.radius || 20);
      this.selected.scaling.set(r / 30, 1, r / 30);
      this.selected.rotation.y = nowMs / 1000;
    }
    return { pulses: n, beams: segs.length };
  }

  /** The wreck or target (rows with x, y, and `key`) drawn nearest to canvas (x, y), or null. */
  pick(canvas, x, y, candidates) {
    let best = null;
    let bestD = PICK_TARGET_PX;
    for (const c of candidates) {
      this.v.set(c.x, ALTITUDE, c.y);
      if (!projectToCss(this.scene, canvas, this.v, this.pt)) continue;
      const d = Math.hypot(this.pt.x - x, this.pt.y - y);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    return best;
  }

  dispose() {
    for (const m of this.wreckMeshes.values()) m.dispose();
    this.wreckMeshes.clear();
  }
}

/** The spot nearest to `s` within `max` units, or null. */
export function nearest(spots, s, max) {
  let best = null;
  let bestD = max;
  for (const p of spots) {
    const d = Math.hypot(p.x - s.x, p.y - s.y);
    if (d <= bestD) {
      bestD = d;
      best = p;
    }
  }
  return best;
}

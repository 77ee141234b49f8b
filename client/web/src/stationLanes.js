// The station and the jump points of a system (welcome `system.station` {x, y, radius} and
// `system.lanes` [{id, name, parsecs, x, y}], docs/protocol.md §10), drawn on the plane with labels; a
// click near a jump point picks its lane.
import { Color3 } from "@babylonjs/core/Maths/math.color.js";
import { Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { StandardMaterial } from "@babylonjs/core/Materials/standardMaterial.js";
import { CreateTorus } from "@babylonjs/core/Meshes/Builders/torusBuilder.js";
import { CreateBox } from "@babylonjs/core/Meshes/Builders/boxBuilder.js";
import { CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";

import { JUMP_RANGE } from "./gameProtocol.js";
import { projectToCss } from "./labels.js";

/** A click this close (CSS px) to a jump point's centre picks it (or inside its ring). */
export const PICK_JUMP_PX = 26;

function finite(...v) {
  return v.every((x) => Number.isFinite(+x));
}

/** The station and lanes of a welcome's system, validated: {station|null, lanes: [...]}. */
export function parseSystemExtras(system) {
  const st = system && system.station;
  const station = st && finite(st.x, st.y) ? { x: +st.x, y: +st.y, radius: Math.max(10, +st.radius || 60) } : null;
  const lanes = (system && Array.isArray(system.lanes) ? system.lanes : [])
    .filter((l) => l && typeof l.id === "string" && finite(l.x, l.y))
    .map((l) => ({
      id: l.id,
      name: typeof l.name === "string" && l.name ? l.name : l.id,
      parsecs: Number.isFinite(+l.parsecs) ? +l.parsecs : null,
      x: +l.x,
      y: +l.y,
    }));
  return { station, lanes };
}

function material(scene, name, rgb) {
  const m = new StandardMaterial(name, scene);
  m.disableLighting = true;
  m.emissiveColor = new Color3(...rgb);
  return m;
}

export class StationLanes {
  constructor(scene) {
    this.scene = scene;
    this.station = null;
    this.lanes = [];
    this.meshes = [];
    this.spin = [];
    this.pt = { x: 0, y: 0 };
    this.v = new Vector3();
  }

  /** Build once from welcome.system. */
  build(system) {
    if (this.meshes.length) return;
    const { station, lanes } = parseSystemExtras(system);
    this.station = station;
    this.lanes = lanes;
    const scene = this.scene;
    if (station) {
      const ring = CreateTorus("station", { diameter: 2 * station.radius, thickness: 2.5, tessellation: 64 }, scene);
      ring.material = material(scene, "stationMat", [0.4, 0.85, 1.0]);
      ring.position.set(station.x, 1, station.y);
      const hub = CreateBox("stationHub", { size: 18 }, scene);
      hub.material = material(scene, "stationHubMat", [0.7, 0.95, 1.0]);
      hub.position.set(station.x, 6, station.y);
      this.spin.push(hub);
      this.meshes.push(ring, hub);
    }
    if (lanes.length) {
      const mat = material(scene, "jumpMat", [0.75, 0.5, 1.0]);
      const beams = [];
      for (const l of lanes) {
        const ring = CreateTorus(`jump-${l.id}`, { diameter: 2 * JUMP_RANGE, thickness: 2, tessellation: 40 }, scene);
        ring.material = mat;
        ring.position.set(l.x, 2, l.y);
        this.meshes.push(ring);
        beams.push([new Vector3(l.x, 0, l.y), new Vector3(l.x, 60, l.y)]);
      }
      const beam = CreateLineSystem("jumpBeams", { lines: beams }, scene);
      beam.color = new Color3(0.75, 0.5, 1.0);
      beam.alpha = 0.6;
      this.meshes.push(beam);
    }
    for (const m of this.meshes) m.isPickable = false;
  }

  render(nowMs) {
    for (const m of this.spin) m.rotation.y = nowMs / 1500;
  }

  /** Labels for the station and the jump points (between LabelLayer begin() and end()). */
  placeLabels(labels, canvas) {
    const v = this.v;
    if (this.station) {
      v.set(this.station.x, 24, this.station.y);
      labels.place(this.scene, canvas, "station", "Station", v, "station");
    }
    for (const l of this.lanes) {
      v.set(l.x, 64, l.y);
      const pc = l.parsecs === null ? "" : ` · ${l.parsecs.toFixed(2)} pc`;
      labels.place(this.scene, canvas, `jump:${l.id}`, `⇢ ${l.name}${pc}`, v, "jump-point");
    }
  }

  /** The lane whose jump point is drawn nearest to canvas point (x, y) (CSS px), or null. */
  pick(canvas, x, y) {
    let best = null;
    let bestD = PICK_JUMP_PX;
    for (const l of this.lanes) {
      this.v.set(l.x, 2, l.y);
      if (!projectToCss(this.scene, canvas, this.v, this.pt)) continue;
      const d = Math.hypot(this.pt.x - x, this.pt.y - y);
      if (d < bestD) {
        bestD = d;
        best = l;
      }
    }
    return best;
  }

  /** The lane whose jump point disc (JUMP_RANGE) contains world point (x, y), or null. */
  laneAt(x, y) {
    return this.lanes.find((l) => Math.hypot(l.x - x, l.y - y) <= JUMP_RANGE * 1.5) || null;
  }
}

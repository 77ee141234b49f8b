// Shots and explosions (effects.js) drawn in a system: a shot is a red line from the
// attacker to the target, an explosion an expanding, fading sphere at the ship.
import { Color3 } from "@babylonjs/core/Maths/math.color.js";
import { Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { StandardMaterial } from "@babylonjs/core/Materials/standardMaterial.js";
import { CreateSphere } from "@babylonjs/core/Meshes/Builders/sphereBuilder.js";
import { CreateLineSystem } from "@babylonjs/core/Meshes/Builders/linesBuilder.js";

import { boomLook, Effects } from "./effects.js";

const ALTITUDE = 3;

export class CombatFx {
  constructor(scene) {
    this.scene = scene;
    this.effects = new Effects();
    this.lines = null;
    this.booms = []; // sphere pool
    this.lastPos = new Map(); // ship id -> {x, y}: where a removed ship was last drawn
  }

  /** A frame's events, seen at `now` (seconds, performance clock). */
  addEvents(events, now) {
    this.effects.addEvents(events, now);
  }

  _boom(i) {
    if (!this.booms[i]) {
      const s = CreateSphere(`boom-${i}`, { diameter: 2, segments: 12 }, this.scene);
      const m = new StandardMaterial(`boomMat-${i}`, this.scene);
      m.disableLighting = true;
      m.emissiveColor = new Color3(1, 0.6, 0.2);
      s.material = m;
      s.isPickable = false;
      this.booms[i] = s;
    }
    return this.booms[i];
  }

  /** Draw the effects alive at `now`; `states`: Map ship id -> {x, y} as drawn. */
  render(now, states) {
    for (const [id, s] of states) this.lastPos.set(id, s);
    if (this.lastPos.size > states.size + 256) for (const id of this.lastPos.keys()) if (!states.has(id)) this.lastPos.delete(id);
    const active = this.effects.active(now);
    const segs = [];
    let n = 0;
    for (const f of active) {
      const a = states.get(f.a) || this.lastPos.get(f.a);
      if (!a) continue;
      if (f.kind === "shot") {
        const b = states.get(f.b) || this.lastPos.get(f.b);
        if (b) segs.push([new Vector3(a.x, ALTITUDE, a.y), new Vector3(b.x, ALTITUDE, b.y)]);
      } else {
        const look = boomLook(f, now);
        const s = this._boom(n++);
        s.setEnabled(true);
        s.position.set(a.x, ALTITUDE, a.y);
        s.scaling.setAll(Math.max(0.1, look.radius));
        s.material.alpha = look.alpha;
      }
    }
    for (let i = n; i < this.booms.length; i++) this.booms[i].setEnabled(false);
    if (this.lines) {
      this.lines.dispose();
      this.lines = null;
    }
    if (segs.length) {
      this.lines = CreateLineSystem("shots", { lines: segs }, this.scene);
      this.lines.color = new Color3(1, 0.3, 0.25);
      this.lines.isPickable = false;
    }
  }

  get counts() {
    return { shots: this.effects.shots, explosions: this.effects.explosions };
  }
}

// HTML labels drawn over the canvas at projected 3-D positions (cheaper than a GUI texture
// and crisp at any pixel ratio).
import { Matrix, Vector3 } from "@babylonjs/core/Maths/math.vector.js";
import { Viewport } from "@babylonjs/core/Maths/math.viewport.js";

const tmp = new Vector3();
const viewport = new Viewport(0, 0, 1, 1);

/**
 * Project world position `pos` to CSS pixels of `canvas`. Returns false when the point is
 * behind the camera or outside the depth range; writes x, y into `out`.
 */
export function projectToCss(scene, canvas, pos, out) {
  viewport.width = canvas.clientWidth;
  viewport.height = canvas.clientHeight;
  Vector3.ProjectToRef(pos, Matrix.IdentityReadOnly, scene.getTransformMatrix(), viewport, tmp);
  out.x = tmp.x;
  out.y = tmp.y;
  return tmp.z >= 0 && tmp.z <= 1;
}

export class LabelLayer {
  constructor(root) {
    this.root = root;
    this.items = new Map(); // key -> {el, text, cls, used}
    this.point = { x: 0, y: 0 };
  }

  begin() {
    for (const item of this.items.values()) item.used = false;
  }

  /** Show label `key` with `text` at world position `pos` (a Vector3). */
  place(scene, canvas, key, text, pos, cls = "") {
    if (!projectToCss(scene, canvas, pos, this.point)) return;
    const { x, y } = this.point;
    if (x < -200 || y < -50 || x > canvas.clientWidth + 200 || y > canvas.clientHeight + 50) return;
    let item = this.items.get(key);
    if (!item) {
      const el = document.createElement("div");
      el.className = "label";
      this.root.appendChild(el);
      item = { el, text: null, cls: null, used: false, shown: true };
      this.items.set(key, item);
    }
    if (item.text !== text) {
      item.el.textContent = text;
      item.text = text;
    }
    if (item.cls !== cls) {
      item.el.className = `label ${cls}`;
      item.cls = cls;
    }
    item.el.style.transform = `translate(${x.toFixed(1)}px, ${y.toFixed(1)}px)`;
    if (!item.shown) {
      item.el.hidden = false;
      item.shown = true;
    }
    item.used = true;
  }

  /** Hide labels not placed since begin(); drop them if there are many. */
  end() {
    for (const [key, item] of this.items) {
      if (item.used) continue;
      if (this.items.size > 300) {
        item.el.remove();
        this.items.delete(key);
      } else if (item.shown) {
        item.el.hidden = true;
        item.shown = false;
      }
    }
  }

  clear() {
    for (const item of this.items.values()) item.el.remove();
    this.items.clear();
  }
}

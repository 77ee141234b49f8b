// Entry point: one Babylon engine on #renderCanvas, hash routing between the galaxy map
// (#/) and a system (#/system/<id>).
import { Engine } from "@babylonjs/core/Engines/engine.js";

import "./style.css";
import { GalaxyView } from "./galaxyView.js";
import { LabelLayer } from "./labels.js";
import { SystemView } from "./systemView.js";
import "./testHook.js";

const canvas = document.getElementById("renderCanvas");
const engine = new Engine(canvas, true, { preserveDrawingBuffer: true, antialias: true, stencil: true }, true);
const ctx = { engine, canvas, labels: new LabelLayer(document.getElementById("labels")) };

let view = null;
let routeKey = null;

export function parseRoute(hash) {
  const m = /^#\/system\/([^/?#]+)/.exec(hash || "");
  if (m) {
    let id = m[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      /* keep the raw text */
    }
    if (id) return { view: "system", id };
  }
  return { view: "galaxy" };
}

function route() {
  const r = parseRoute(location.hash);
  const key = r.view === "system" ? `system:${r.id}` : "galaxy";
  if (key === routeKey) return;
  routeKey = key;
  if (view) view.dispose();
  view = null;
  view = r.view === "system" ? new SystemView(ctx, r.id) : new GalaxyView(ctx);
}

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => engine.resize());
route();

engine.runRenderLoop(() => {
  if (view) view.render();
});

// Entry point: one Babylon engine on #renderCanvas, hash routing between the galaxy map
// (#/) and a system (#/system/<id>).
import { Engine } from "@babylonjs/core/Engines/engine.js";

import "./style.css";
import { createAccountPanel } from "./accountPanel.js";
import { GalaxyView } from "./galaxyView.js";
import { LabelLayer } from "./labels.js";
import { SystemView } from "./systemView.js";
import * as pilot from "./pilot.js";
import "./testHook.js";
import { renderGraph } from "./graph.js";
import { setKnowledgeRenderer } from "./knowledgePanel.js";

setKnowledgeRenderer(renderGraph);

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

function route(force = false) {
  const r = parseRoute(location.hash);
  const key = r.view === "system" ? `system:${r.id}` : "galaxy";
  if (key === routeKey && !force) return;
  routeKey = key;
  if (view) view.dispose();
  view = null;
  view = r.view === "system" ? new SystemView(ctx, r.id) : new GalaxyView(ctx);
}

window.addEventListener("hashchange", () => route());
window.addEventListener("resize", () => engine.resize());
const account = createAccountPanel({ onChange: () => pilot.loginChanged() });
pilot.configure({
  rebuild: () => {
    account.paint();
    route(true); // the new pilot's view (a system view joins with the new token)
  },
});
route();
// Following the ship: a page opened on the galaxy map (no system in the URL) with a stored
// token goes to where the ship is (or waits its transit); a pilot without a token or who
// never flew (404) keeps the star picker.
if (parseRoute(location.hash).view === "galaxy" && !/^#\/galaxy/.test(location.hash)) {
  const opened = routeKey;
  pilot.relocate({ navigate: false }).then((info) => {
    if (info && routeKey === opened && (info.system || info.transit)) pilot.follow(info);
  });
}

engine.runRenderLoop(() => {
  if (view) view.render();
});

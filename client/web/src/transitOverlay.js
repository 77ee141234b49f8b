// The transit overlay (#transit): "Hyperspace · Sol → Alpha Centauri A · 6.2 s" with a progress
// bar and the autopilot's remaining jumps, over whatever view is showing.
import { cachedGalaxy } from "./api.js";
import { formatCountdown, progress, secondsLeft } from "./transit.js";

let node = null;
let parts = null;
let timer = null;

function systemName(id) {
  const g = cachedGalaxy();
  const s = g && (g.systems || []).find((x) => x.id === id);
  return s ? s.name : id;
}

function build() {
  const make = (tag, cls) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  };
  node = make("div", "transit panel");
  node.id = "transit";
  node.setAttribute("role", "status");
  const title = make("div", "transit-title");
  title.textContent = "Hyperspace";
  const route = make("div", "transit-route");
  const count = make("div", "transit-count");
  count.id = "transitCountdown";
  const bar = make("div", "transit-bar");
  const fill = make("div", "transit-fill");
  bar.append(fill);
  const more = make("div", "transit-more");
  node.append(title, route, count, bar, more);
  parts = { route, count, fill, more };
  node.hidden = true;
  (document.getElementById("hud") || document.body).append(node);
}

function paint(plan) {
  const now = Date.now();
  parts.count.textContent = formatCountdown(secondsLeft(plan, now));
  parts.fill.style.width = `${(100 * progress(plan, now)).toFixed(1)}%`;
}

/** Show `plan` (transit.js) until hideTransit(); the countdown repaints itself. */
export function showTransit(plan) {
  if (!node) build();
  clearInterval(timer);
  const from = plan.from ? systemName(plan.from) : "?";
  parts.route.textContent = `${from} → ${systemName(plan.to)}${plan.parsecs ? ` · ${plan.parsecs.toFixed(2)} pc` : ""}`;
  const n = plan.route.length;
  parts.more.textContent = n ? `Autopilot: ${n} more jump${n === 1 ? "" : "s"} to ${systemName(plan.route[n - 1])}` : "";
  node.hidden = false;
  paint(plan);
  timer = setInterval(() => paint(plan), 100);
}

export function hideTransit() {
  clearInterval(timer);
  timer = null;
  if (node) node.hidden = true;
}

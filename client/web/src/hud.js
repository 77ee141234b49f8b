// HTML heads-up display: top bar, connection status (#status), toast (#toast) and the
// system panel (ship info, lanes to jump to).
const root = document.getElementById("hud");
const toastEl = document.getElementById("toast");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}
export { el };

const topbar = el("header", { class: "topbar panel" });
const brand = el("a", { class: "brand", href: "#/", text: "Starhold" });
const crumb = el("span", { class: "crumb" });
const statusEl = el("span", { id: "status", "data-state": "closed", text: "" });
topbar.append(brand, crumb, statusEl);
const panelSlot = el("div", { class: "panel-slot" });
root.append(topbar, panelSlot);

/** Breadcrumb after the brand ("" in the galaxy view). */
export function setCrumb(text) {
  crumb.textContent = text ? `/ ${text}` : "";
}

/**
 * Show a connection status `{state, connection, text, retryAt, reason}` (SystemConnection
 * status): "connected", "reconnecting in Ns (reason)", "offline: reason"; `null` hides it
 * (galaxy view). `#status` carries `data-state` (socket state) and `data-connection`.
 */
let countdown = null;
let current = null;
let queued = 0;

function paintStatus() {
  const status = current;
  if (!status) return;
  let text = status.text;
  if (status.state === "reconnecting" && status.retryAt) {
    const s = Math.max(0, Math.ceil((status.retryAt - Date.now()) / 1000));
    text = `reconnecting in ${s}s` + (status.reason ? ` (${status.reason})` : "");
  }
  if (queued > 0 && status.state !== "joined") text += ` · ${queued} command${queued === 1 ? "" : "s"} queued`;
  if (statusEl.textContent !== text) statusEl.textContent = text;
}

export function setStatus(status) {
  clearInterval(countdown);
  countdown = null;
  current = status;
  if (!status) {
    statusEl.dataset.state = "closed";
    statusEl.dataset.connection = "offline";
    statusEl.textContent = "";
    statusEl.hidden = true;
    queued = 0;
    return;
  }
  statusEl.hidden = false;
  statusEl.dataset.state = status.state;
  statusEl.dataset.connection = status.connection || "";
  statusEl.title = status.reason ? `last close: ${status.reason}${status.code ? ` (${status.code})` : ""}` : "";
  paintStatus();
  if (status.state === "reconnecting") countdown = setInterval(paintStatus, 250);
}

/** Number of commands waiting for the connection (shown while not connected). */
export function setQueued(n) {
  if (n === queued) return;
  queued = n;
  paintStatus();
}

/** Show `message` briefly in #toast. */
let toastTimer = null;
export function showToast(message, ms = 4000) {
  toastEl.textContent = message;
  toastEl.hidden = false;
  toastEl.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toastEl.classList.remove("show");
    toastEl.hidden = true;
  }, ms);
}

/** Put `node` (the account widget) at the end of the top bar. */
export function mountTopbar(node) {
  topbar.append(node);
}

/** Replace the view's panel (side list or system panel). */
export function mountPanel(node) {
  panelSlot.replaceChildren(...(node ? [node] : []));
}

function fmtPc(d) {
  return `${(+d).toFixed(2)} pc`;
}
export { fmtPc };

/**
 * The system view's panel. Returns setters; `onJump(id)` sends the ship to that lane's jump point, `onReconnect()` retries
 * a closed connection, `onFollow(bool)` toggles the camera following the ship.
 */
export function createSystemPanel({ onReconnect, onFollow, onJump }) {
  const title = el("h2", { class: "sys-name", text: "…" });
  const info = el("div", { class: "sys-info" });
  const ship = el("div", { class: "ship-info", id: "shipInfo", text: "no ship yet" });
  const reconnect = el("button", { type: "button", class: "reconnect", hidden: true, text: "Reconnect", onclick: () => onReconnect() });
  const follow = el("input", { type: "checkbox", id: "followShip" });
  follow.addEventListener("change", () => onFollow(follow.checked));
  const followLabel = el("label", { class: "follow" }, follow, " follow my ship");
  const lanesTitle = el("h3", { text: "Lanes" });
  const lanes = el("div", { class: "lanes", id: "lanes" }, el("span", { class: "muted", text: "loading…" }));
  const hint = el("p", {
    class: "hint",
    id: "controlsHint",
    text: "Click the plane to fly there. Click another ship to attack it (red: pirates; grey discs: asteroids, no-fly). Click a planet, asteroid field or anomaly to target it in the Scanner, a wreck to loot it. Drag to orbit, wheel to zoom.",
  });
  const node = el("section", { class: "panel system-panel" }, title, info, ship, reconnect, followLabel, lanesTitle, lanes, hint);

  return {
    node,
    setSystem(name, color, extra = "") {
      title.textContent = name;
      title.style.setProperty("--star", color || "#fff");
      info.textContent = extra;
    },
    setShip(text) {
      if (ship.textContent !== text) ship.textContent = text;
    },
    /** The Reconnect button: shown while offline ("Reconnect") or waiting ("Reconnect now"). */
    setReconnect(state) {
      reconnect.hidden = state !== "closed" && state !== "reconnecting";
      reconnect.textContent = state === "reconnecting" ? "Reconnect now" : "Reconnect";
    },
    /** lanes: [{id, name, distance}] (distance from this system, pc; may be null). */
    setLanes(list, error) {
      if (error) {
        lanes.replaceChildren(el("span", { class: "muted", text: error }));
        return;
      }
      if (!list.length) {
        lanes.replaceChildren(el("span", { class: "muted", text: "no lanes" }));
        return;
      }
      lanes.replaceChildren(
        ...list.map((l) =>
          el(
            "a",
            {
              class: "lane",
              href: `#/system/${encodeURIComponent(l.id)}`,
              "data-lane-id": l.id,
              title: `Jump to ${l.name} (your ship flies to the jump point)`,
              onclick: (ev) => {
                if (!onJump) return;
                ev.preventDefault();
                onJump(l.id);
              },
            },
            el("span", { class: "lane-name", text: `⇢ ${l.name}` }),
            el("span", { class: "lane-dist", text: l.distance == null ? "" : fmtPc(l.distance) }),
          ),
        ),
      );
    },
  };
}

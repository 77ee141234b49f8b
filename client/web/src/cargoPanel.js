// The economy dock (#economy) in a system view: the cargo summary always on top (credits and
// the hold bar: used, reserved by open orders, free), then tabs: Cargo (the goods in the
// hold and the pilot's audit counters), Scanner, Market, Knowledge. Text goes through
// textContent only.
import { el } from "./hud.js";
import { GOOD_NAMES } from "./economy_protocol.js";
import { goodsList, holdModel, totalOf } from "./economy.js";
import { fmt } from "./marketModel.js";

/** Keep `container`'s children in step with `items` by `key` (rows are reused, not rebuilt). */
export function syncList(container, items, key, create, update) {
  const old = new Map([...container.children].map((n) => [n.dataset.key, n]));
  const nodes = items.map((item) => {
    const k = String(key(item));
    let node = old.get(k);
    if (!node) {
      node = create(item);
      node.dataset.key = k;
    }
    update(node, item);
    return node;
  });
  const same = nodes.length === container.children.length && nodes.every((n, i) => container.children[i] === n);
  if (!same) container.replaceChildren(...nodes);
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** `tabs`: [{id, title, node}]; `onTab(id)` when the player opens one. */
export function createEconomyDock({ tabs, onTab }) {
  const credits = el("span", { class: "eco-credits", id: "credits", text: "— cr" });
  const holdText = el("span", { class: "eco-hold-text", id: "holdText", text: "hold —" });
  const usedBar = el("span", { class: "hold-used" });
  const reservedBar = el("span", { class: "hold-reserved" });
  const bar = el("div", { class: "hold-bar", id: "holdBar", title: "used / reserved for open orders / free" }, usedBar, reservedBar);
  const head = el("div", { class: "eco-head" }, el("div", { class: "eco-row" }, credits, holdText), bar);
  const buttons = el("div", { class: "eco-tabs", role: "tablist" });
  const bodies = el("div", { class: "eco-bodies" });
  let current = null;
  function open(id) {
    current = current === id ? null : id; // a second click folds the dock
    for (const b of buttons.children) b.classList.toggle("active", b.dataset.tab === current);
    for (const t of tabs) t.node.hidden = t.id !== current;
    onTab(current);
  }
  for (const t of tabs) {
    buttons.append(el("button", { type: "button", class: "eco-tab", "data-tab": t.id, role: "tab", text: t.title, onclick: () => open(t.id) }));
    t.node.hidden = true;
    bodies.append(t.node);
  }
  const node = el("section", { class: "panel economy-dock", id: "economy" }, head, buttons, bodies);
  return {
    node,
    open,
    get tab() {
      return current;
    },
    /** The cargo summary from economy state. */
    setCargo(state) {
      const h = holdModel(state);
      setText(credits, state.credits === null ? "— cr" : `${fmt(state.credits)} cr`);
      setText(holdText, h.capacity ? `hold ${h.used}${h.reserved ? ` +${h.reserved} reserved` : ""} / ${h.capacity} · ${h.free} free` : "hold —");
      usedBar.style.width = `${(100 * h.usedShare).toFixed(1)}%`;
      reservedBar.style.width = `${(100 * h.reservedShare).toFixed(1)}%`;
      bar.dataset.free = String(h.free);
    },
  };
}

/** The Cargo tab: the goods in the hold, and the pilot's audit counters (/api/me totals). */
export function createCargoTab() {
  const list = el("ul", { class: "goods", id: "cargoList" });
  const empty = el("p", { class: "muted", text: "The hold is empty. Mine a field or loot a wreck." });
  const totals = el("p", { class: "eco-totals muted" });
  const node = el("div", { class: "eco-body cargo-tab" }, list, empty, totals);
  return {
    node,
    update(state) {
      const goods = goodsList(state.cargo);
      empty.hidden = goods.length > 0;
      syncList(
        list,
        goods,
        (g) => g.good,
        (g) => el("li", { class: "good", "data-good": g.good }, el("span", { class: "good-name", text: GOOD_NAMES[g.good] || g.good }), el("span", { class: "good-units" })),
        (node, g) => setText(node.lastChild, `${g.units} u`),
      );
      const t = state.totals;
      setText(totals, t ? `mined ${fmt(totalOf(t.mined))} u · looted ${fmt(totalOf(t.looted))} u · lost ${fmt(totalOf(t.lost))} u · bounties ${fmt(totalOf(t.bounties))} cr · fees ${fmt(totalOf(t.fees))} cr` : "");
    },
  };
}

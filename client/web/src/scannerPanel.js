// The Scanner tab: the targets of the system nearest first (planets, asteroid fields,
// anomalies: "Scan" within range, "Approach" beyond it, "Mine" for a field or a scanned planet
// within mining range), the scan under way (a progress bar) and the last result card
// (kind, region, resources, lore, fragments), the mining status with "Stop", and the wrecks
// around with "Loot". Text goes through textContent only.
import { el } from "./hud.js";
import { GOOD_NAMES, MINE_RANGE } from "./economy_protocol.js";
import { goodsList } from "./economy.js";
import { syncList } from "./cargoPanel.js";

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

const goodsText = (goods) => goodsList(goods).map((g) => `${GOOD_NAMES[g.good] || g.good} ${g.units}`).join(", ") || "nothing";

/**
 * Handlers: `onScan(target)`, `onMine(target)`, `onStop()`, `onLoot(wreckId)`,
 * `onApproach(entry)` (entry: a target or wreck row {x, y, ...}), `onSelect(target)`.
 */
export function createScannerPanel({ onScan, onMine, onStop, onLoot, onApproach, onSelect }) {
  const status = el("div", { class: "scan-status", id: "scanStatus" });
  const fill = el("span", { class: "scan-fill" });
  const progress = el("div", { class: "scan-bar", id: "scanProgress" }, fill);
  const stop = el("button", { type: "button", id: "mineStop", text: "Stop mining", onclick: () => onStop() });
  const mining = el("div", { class: "mine-status", id: "mineStatus" });
  const card = el("div", { class: "scan-card", id: "scanCard" });
  const targets = el("ul", { class: "scan-targets", id: "scanTargets" });
  const wrecks = el("ul", { class: "wrecks", id: "wreckList" });
  const noWrecks = el("p", { class: "muted", text: "No wrecks in this system." });
  const node = el(
    "div",
    { class: "eco-body scanner-tab" },
    status,
    progress,
    el("div", { class: "mine-row" }, mining, stop),
    card,
    el("h4", { text: "Targets" }),
    targets,
    el("h4", { text: "Wrecks" }),
    wrecks,
    noWrecks,
  );
  let rows = new Map();

  function targetRow(t) {
    const name = el("span", { class: "target-name" });
    const dist = el("span", { class: "target-dist" });
    const scan = el("button", { type: "button", class: "scan-btn", text: "Scan", onclick: () => onScan(t.target) });
    const mine = el("button", { type: "button", class: "mine-btn", text: "Mine", onclick: () => onMine(t.target) });
    const go = el("button", { type: "button", class: "approach-btn", text: "Approach", onclick: () => onApproach(rows.get(t.target)) });
    const li = el("li", { class: `scan-target ${t.type}`, "data-target": t.target, onclick: (ev) => ev.target.tagName !== "BUTTON" && onSelect(t.target) }, name, dist, scan, mine, go);
    li._parts = { name, dist, scan, mine, go };
    return li;
  }

  function wreckRow(w) {
    const label = el("span", { class: "wreck-goods" });
    const loot = el("button", { type: "button", class: "loot-btn", text: "Loot", onclick: () => onLoot(w.id) });
    const go = el("button", { type: "button", class: "approach-btn", text: "Approach", onclick: () => onApproach(rows.get(`wreck:${w.id}`)) });
    const li = el("li", { class: "wreck", "data-wreck": String(w.id) }, label, loot, go);
    li._parts = { label, loot, go };
    return li;
  }

  return {
    node,
    /**
     * `view`: {targets (economyTargets.scanTargets), selected, scan, progress (0..1), lastScan,
     * scans ({target: result}), mining (target or null), miningFlag, scanningFlag (own ship
     * flags), wrecks (wrecksAround rows, with `left` seconds)}.
     */
    update(view) {
      rows = new Map([...view.targets.map((t) => [t.target, t]), ...view.wrecks.map((w) => [`wreck:${w.id}`, w])]);
      const s = view.scan;
      let text = "Pick a target within range and scan it.";
      if (s && s.state === "scanning") text = `Scanning ${s.target}…`;
      else if (s && s.state === "failed") text = `Scan of ${s.target} failed: ${s.error}`;
      else if (s && s.state === "done") text = `Scanned ${s.target}.`;
      setText(status, text);
      status.dataset.state = s ? s.state : "idle";
      progress.hidden = !(s && s.state === "scanning");
      fill.style.width = `${Math.round(100 * view.progress)}%`;

      const mineTarget = view.mining;
      stop.hidden = !mineTarget && !view.miningFlag;
      setText(mining, view.miningFlag ? `Mining ${mineTarget || ""}`.trim() : mineTarget ? `Mining ${mineTarget} (starting…)` : "");
      mining.dataset.active = view.miningFlag ? "1" : "0";

      const r = view.lastScan;
      card.hidden = !r;
      if (r) {
        const frags = r.fragments.map((f) => `${f[0]} —${f[1]}→ ${f[2]}`);
        card.replaceChildren(
          el("div", { class: "scan-card-title", text: `${r.target}${r.kind ? ` · ${r.kind}` : ""}${r.region ? ` · ${r.region}` : ""}` }),
          el("div", { class: "scan-card-res", text: `Resources: ${goodsText(r.resources)}` }),
          r.lore ? el("div", { class: "scan-card-lore", text: r.lore }) : null,
          frags.length ? el("div", { class: "scan-card-frags muted", text: `${frags.length} fragment${frags.length === 1 ? "" : "s"}: ${frags.slice(0, 4).join("; ")}${frags.length > 4 ? "; …" : ""}` }) : null,
        );
      }

      const busy = !!(s && s.state === "scanning");
      syncList(targets, view.targets, (t) => t.target, targetRow, (li, t) => {
        const p = li._parts;
        const scanned = view.scans[t.target];
        setText(p.name, `${t.name}${scanned && scanned.kind ? ` (${scanned.kind})` : ""}`);
        setText(p.dist, t.distance === null ? "" : `${Math.round(t.distance)} u`);
        li.classList.toggle("selected", t.target === view.selected);
        li.classList.toggle("in-range", t.inScanRange);
        p.scan.hidden = !t.inScanRange;
        p.scan.disabled = busy;
        const mineable = t.type !== "anomaly"; // a planet must have been scanned: the room says so if not
        p.mine.hidden = !(mineable && t.inMineRange) || mineTarget === t.target;
        p.mine.title = t.type === "planet" && !scanned ? "Mine (scan the planet first)" : "Mine";
        p.go.hidden = t.inScanRange && (!mineable || t.inMineRange);
        p.go.title = t.inScanRange ? `Within ${MINE_RANGE} u to mine` : "Fly within scanning range";
      });

      noWrecks.hidden = view.wrecks.length > 0;
      syncList(wrecks, view.wrecks, (w) => w.id, wreckRow, (li, w) => {
        const p = li._parts;
        const left = w.left === null ? "" : ` · ${Math.ceil(w.left)} s left`;
        const dist = w.distance === null ? "" : ` · ${Math.round(w.distance)} u`;
        setText(p.label, `Wreck ${w.id}: ${goodsText(w.goods)}${dist}${left}`);
        p.loot.hidden = !w.inRange;
        p.go.hidden = w.inRange;
      });
    },
  };
}

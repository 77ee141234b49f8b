// The economy in a system view (issue 16): the `cargo`, `wrecks` and `scan` messages, the
// `scan`/`mine`/`loot` commands (through the command queue, acknowledged like `jump`), the
// dock (cargo summary, Cargo and Scanner tabs; the Market and Knowledge tabs and every HTTP
// call are economyDesk.js's), clicks on targets and wrecks, and the scene's effects. State is
// economy.js's; window.starhold mirrors it for end-to-end tests.
import { auth } from "./session.js";
import { showToast } from "./hud.js";
import { createCargoTab, createEconomyDock } from "./cargoPanel.js";
import { createScannerPanel } from "./scannerPanel.js";
import { EconomyDesk } from "./economyDesk.js";
import { EconomyFx } from "./economyFx.js";
import { createEconomyApi } from "./economyApi.js";
import { CARGO, ECONOMY_ERROR_TEXT, GOOD_NAMES, LOOT, LOOT_RANGE, MINE, MINE_RANGE, SCAN, SCAN_RANGE, SHIP_MINING, SHIP_SCANNING, WRECKS } from "./economy_protocol.js";
import { applyCargo, applyLootMessage, applyMineMessage, applyScanMessage, goodsList, applyWrecks, holdModel, initialEconomy, scanFailed, scanProgress, scanStarted, watchScan, wreckSecondsLeft } from "./economy.js";
import { anomalies, approachPoint, asteroidFields, scanTargets, wrecksAround } from "./economyTargets.js";
import { validateOrder } from "./orderForm.js";
import hook from "./testHook.js";

const PANEL_MS = 250; // panels repaint at most this often
const MARKET_POLL_MS = 5000; // the open market tab refreshes this often
const COMMAND_TEXT = { [SCAN]: "Scan", [MINE]: "Mining", [LOOT]: "Loot" };

export class EconomyGame {
  constructor(view, { api } = {}) {
    this.view = view;
    this.state = initialEconomy();
    this.system = null;
    this.fields = [];
    this.selected = null; // scanner target string
    this.commands = []; // [{type, cmd, target}] sent this view: errors are matched by seq
    this.sawMining = false; // the own ship had SHIP_MINING since the last mine order
    this.scanWatch = null; // economy.watchScan's record of the own ship's SHIP_SCANNING flag
    this.paintedAt = 0;
    this.fx = new EconomyFx(view.scene);
    this.cargoTab = createCargoTab();
    this.scanner = createScannerPanel({
      onScan: (t) => this.scan(t),
      onMine: (t) => this.mine(t),
      onStop: () => this.mine(null),
      onLoot: (id) => this.loot(id),
      onApproach: (entry) => entry && this.approach(entry),
      onSelect: (t) => this.select(t),
    });
    this.desk = new EconomyDesk(this, api || createEconomyApi({ getToken: () => auth.token() }));
    this.dock = createEconomyDock({
      tabs: [
        { id: "cargo", title: "Cargo", node: this.cargoTab.node },
        { id: "scanner", title: "Scanner", node: this.scanner.node },
        { id: "market", title: "Market", node: this.desk.marketPanel.node },
        { id: "knowledge", title: "Knowledge", node: this.desk.knowledge.node },
      ],
      onTab: (id) => this.desk.onTab(id),
    });
    (document.getElementById("hud") || document.body).append(this.dock.node);
    this.poll = setInterval(() => this.desk.onTab(this.dock.tab, true), MARKET_POLL_MS);
    Object.assign(hook, {
      scan: (t) => this.scan(t),
      mine: (t) => this.mine(t),
      stopMining: () => this.mine(null),
      loot: (id) => this.loot(id),
      placeOrder: (form) => {
        const r = validateOrder({ kind: "limit", ...form }, this.state);
        return r.ok ? this.desk.placeOrder(r.order) : Promise.reject(Object.assign(new Error(Object.values(r.errors).join(" ")), { status: 0, errors: r.errors }));
      },
      cancelOrder: (id) => this.desk.cancelOrder(id),
      openEconomyTab: (id) => this.dock.tab !== id && this.dock.open(id),
      refreshEconomy: () => this.desk.refresh(),
    });
    this._sync();
  }

  // ---- commands ----

  _command(type, payload, target) {
    const seq = this.view.conn.send(type, payload);
    this.commands.push({ type, cmd: this.view.conn.lastCommand, target });
    if (this.commands.length > 32) this.commands.shift();
    return seq;
  }

  scan(target) {
    this.selected = target;
    const seq = this._command(SCAN, { target }, target);
    this.state = scanStarted(this.state, target, seq, performance.now() / 1000);
    this.scanWatch = null;
    this._sync();
    return seq;
  }

  /** Mine `target`, or stop (null). */
  mine(target) {
    const seq = this._command(MINE, { target }, target);
    this.state = { ...this.state, mining: target };
    this.sawMining = false;
    this._sync();
    return seq;
  }

  loot(wreck) {
    return this._command(LOOT, { wreck }, `wreck:${wreck}`);
  }

  select(target) {
    this.selected = target;
    this._paint(true);
  }

  /** Fly within range of a target or wreck row {x, y, type?}. */
  approach(entry) {
    const own = this.view.ownShip;
    if (!own) return null;
    const range = entry.type === undefined ? LOOT_RANGE : entry.type === "anomaly" ? SCAN_RANGE : MINE_RANGE;
    const p = approachPoint(own, entry, range);
    return this.view.moveTo(Math.round(p.x * 100) / 100, Math.round(p.y * 100) / 100);
  }

  // ---- from the connection ----

  onWelcome(w) {
    this.system = w.system || {};
    this.fields = asteroidFields(this.system);
    this.fx.buildAnomalies(anomalies(this.system));
    this.state = { ...this.state, region: typeof this.system.region === "string" ? this.system.region : this.state.region };
    this.desk.marketPanel.setRegion(this.state.region);
    this.desk.refresh();
  }

  /** The economy's message types; true when handled. */
  onMessage(type, seq, p) {
    if (type === CARGO) this.state = applyCargo(this.state, p);
    else if (type === WRECKS) {
      this.state = applyWrecks(this.state, p);
      this.fx.setWrecks(this.state.wrecks);
    } else if (type === MINE) {
      this.state = applyMineMessage(this.state, p);
      const stop = this.state.mineStopped;
      if (p && p.state === "stopped" && stop && !["stopped", "replaced"].includes(stop.reason)) showToast(`Mining stopped (${stop.target}): ${stop.reason}.`, 3000);
    } else if (type === LOOT) {
      this.state = applyLootMessage(this.state, p);
      const taken = this.state.lastLoot ? goodsList(this.state.lastLoot.goods) : [];
      if (taken.length) showToast(`Looted ${taken.map((g) => `${g.units} ${GOOD_NAMES[g.good] || g.good}`).join(", ")}.`, 2500);
    } else if (type === SCAN) {
      const before = this.state.lastScan;
      this.state = applyScanMessage(this.state, p, performance.now() / 1000);
      if (this.state.lastScan !== before && this.dock.tab === "knowledge") this.desk.loadGraph();
    } else return false;
    this._sync();
    return true;
  }

  /**
   * An error frame answering one of our economy commands (by seq), or an economy code
   * (22-25) with seq 0 (mining stopped): shown here, true. Others: false.
   */
  onError(e, seq) {
    const c = seq ? this.commands.find((x) => x.cmd && x.cmd.seq != null && x.cmd.seq === seq) : null;
    const words = ECONOMY_ERROR_TEXT[e.code] ? `${ECONOMY_ERROR_TEXT[e.code]} (${e.message || e.code})` : e.message || `error ${e.code}`;
    if (!c) {
      if (!ECONOMY_ERROR_TEXT[e.code]) return false;
      showToast(`${this.state.mining ? "Mining stopped: " : ""}${words}`);
      return true;
    }
    if (c.type === SCAN) this.state = scanFailed(this.state, seq, words);
    if (c.type === MINE) this.state = { ...this.state, mining: null };
    showToast(`${COMMAND_TEXT[c.type]} (${c.target || "stop"}): ${words}`);
    this._sync();
    return true;
  }

  // ---- drawing and input ----

  _targets(t) {
    return scanTargets(this.system, this.view.ownShip, t, this.fields);
  }

  /** Per frame: `states` ships as drawn, `t` the game time planets are drawn at. */
  render(states, nowMs, t) {
    this.t = t;
    const own = this.view.ownShip;
    const flags = own ? own.flags : 0;
    if (flags & SHIP_MINING) this.sawMining = true;
    else if (this.sawMining && this.state.mining) {
      this.state = { ...this.state, mining: null }; // the room stopped it (hold full, moved, ...)
      this.sawMining = false;
    }
    const watched = watchScan(this.state.scan, this.scanWatch, !!(flags & SHIP_SCANNING), performance.now() / 1000);
    this.scanWatch = watched.watch;
    if (watched.failure) {
      this.state = scanFailed(this.state, null, watched.failure);
      this._sync();
    }
    const targets = this.system ? this._targets(t) : [];
    const byTarget = new Map(targets.map((x) => [x.target, x]));
    const mineAt = this.state.mining ? byTarget.get(this.state.mining) : null;
    const spots = targets.filter((x) => x.type !== "anomaly");
    const sel = this.selected ? byTarget.get(this.selected) : null;
    const selRadius = sel ? (sel.type === "field" ? (this.fields.find((f) => `field:${f.index}` === sel.target) || {}).radius : 25) : 0;
    const drawn = this.fx.render(nowMs, states, hook.shipId, mineAt || null, spots, sel ? { x: sel.x, y: sel.y, radius: selRadius } : null);
    hook.scanPulses = drawn.pulses;
    hook.miningBeams = drawn.beams;
    if (nowMs - this.paintedAt > PANEL_MS) this._paint(false, targets, flags);
  }

  _paint(force, targets = this.system ? this._targets(this.t || 0) : [], flags = this.view.ownShip ? this.view.ownShip.flags : 0) {
    this.paintedAt = performance.now();
    const now = performance.now() / 1000;
    const wrecks = wrecksAround(this.state.wrecks, this.view.ownShip).map((w) => ({ ...w, left: wreckSecondsLeft(w, hook.time) }));
    this.scanner.update({
      targets,
      selected: this.selected,
      scan: this.state.scan,
      progress: scanProgress(this.state.scan, now),
      lastScan: this.state.lastScan,
      scans: this.state.scans,
      mining: this.state.mining,
      miningFlag: !!(flags & SHIP_MINING),
      scanningFlag: !!(flags & SHIP_SCANNING),
      wrecks,
    });
    hook.scanning = !!(flags & SHIP_SCANNING);
    hook.miningFlag = !!(flags & SHIP_MINING);
    hook.scanProgress = scanProgress(this.state.scan, now);
    hook.targets = targets.map(({ target, type, name, distance, inScanRange, inMineRange }) => ({ target, type, name, distance, inScanRange, inMineRange }));
  }

  /** A click at canvas (x, y) on a wreck (loot, or approach) or a target (select; approach when out of range). */
  click(x, y) {
    if (!this.system) return false;
    const targets = this._targets(this.t || 0);
    const wrecks = wrecksAround(this.state.wrecks, this.view.ownShip).map((w) => ({ ...w, wreck: true }));
    const hit = this.fx.pick(this.view.canvas, x, y, [...wrecks, ...targets]);
    if (!hit) return false;
    if (hit.wreck) {
      if (hit.inRange) this.loot(hit.id);
      else this.approach(hit);
    } else {
      this.select(hit.target);
      if (this.dock.tab !== "scanner") this.dock.open("scanner");
      if (!hit.inScanRange) this.approach(hit);
    }
    return true;
  }

  placeLabels(labels) {
    const { scene, canvas } = this.view;
    const v = this.fx.v;
    for (const f of this.fields) {
      v.set(f.x, 30, f.y);
      labels.place(scene, canvas, `field:${f.index}`, `Field ${f.index + 1}`, v, "field");
    }
    for (const a of anomalies(this.system)) {
      v.set(a.x, 28, a.y);
      labels.place(scene, canvas, `anomaly:${a.index}`, `Anomaly (${a.kind})`, v, "anomaly");
    }
    for (const w of this.state.wrecks) {
      const units = Object.values(w.goods).reduce((s, n) => s + n, 0);
      v.set(w.x, 22, w.y);
      labels.place(scene, canvas, `wreck:${w.id}`, `Wreck · ${units} u`, v, "wreck");
    }
  }

  /** State to the dock and window.starhold. */
  _sync() {
    const s = this.state;
    this.dock.setCargo(s);
    this.cargoTab.update(s);
    this.desk.marketPanel.setOrders(s.orders);
    this.desk.marketPanel.recheck();
    const h = holdModel(s);
    Object.assign(hook, {
      credits: s.credits,
      cargo: { ...s.cargo },
      capacity: s.capacity,
      reserved: s.reserved,
      free: h.free,
      region: s.region,
      wrecks: s.wrecks.map((w) => ({ ...w, goods: { ...w.goods } })),
      lastScan: s.lastScan,
      scanState: s.scan ? { ...s.scan } : null,
      mining: s.mining,
      mined: { ...s.mined },
      mineStopped: s.mineStopped,
      lastLoot: s.lastLoot,
      orders: s.orders,
      cargoUpdates: s.cargoUpdates,
      market: { region: s.region, ...this.desk.market },
    });
    this._paint(true);
  }

  dispose() {
    clearInterval(this.poll);
    this.fx.dispose();
    this.dock.node.remove();
  }
}

// The economy's HTTP side in a system view: the pilot's ledger and orders (`GET /api/me`),
// the market of the ship's region (statistics, the selected good's book, trades and candles;
// loaded when the Market tab opens, then every few seconds while it stays open), placing and
// cancelling orders, and the Knowledge Graph. It owns the Market and Knowledge tabs' panels
// and writes into the EconomyGame's state (`game.state`, then `game._sync()`).
import { GOODS } from "./economy_protocol.js";
import { applyMe } from "./economy.js";
import { showToast } from "./hud.js";
import { createKnowledgePanel } from "./knowledgePanel.js";
import { createMarketPanel } from "./marketPanel.js";
import { bookModel, parseCandles, statsRows, tradesModel } from "./marketModel.js";
import { validateOrder } from "./orderForm.js";
import hook from "./testHook.js";

export const HISTORY_CANDLES = 48;

export class EconomyDesk {
  /** `game`: the EconomyGame (state, dock, view); `api`: economyApi.createEconomyApi(). */
  constructor(game, api) {
    this.game = game;
    this.api = api;
    this.market = { good: GOODS[0], interval: 3600, stats: [], book: null, trades: [], candles: [] };
    this.marketPanel = createMarketPanel({
      onGood: (g) => this.showGood(g),
      onInterval: (i) => this.showGood(this.market.good, i),
      onValidate: (form) => validateOrder(form, this.game.state),
      onPlace: (order) => this.placeOrder(order),
      onCancel: (id) => this.cancelOrder(id),
    });
    this.knowledge = createKnowledgePanel({ onRefresh: () => this.loadGraph() });
    this.marketPanel.setGood(this.market.good, this.market.interval);
  }

  get tab() {
    return this.game.dock ? this.game.dock.tab : null;
  }

  /** /api/me, and the open tab's data. */
  refresh() {
    this.loadMe();
    if (this.tab === "market") this.loadMarket();
    if (this.tab === "knowledge") this.loadGraph();
  }

  /** Tab `id` opened (or, `polling`, still open after MARKET_POLL_MS): load what it shows. */
  onTab(id, polling = false) {
    if (this.game.view.disposed) return;
    if (id === "market") {
      this.loadMe();
      this.loadMarket();
    } else if (!polling && id === "cargo") this.loadMe();
    else if (!polling && id === "knowledge") this.loadGraph();
  }

  /** GET /api/me into the game's state (a failure is kept in window.starhold.economyError). */
  async loadMe() {
    try {
      const me = await this.api.me(); // (read the state after the await: messages may have come meanwhile)
      this.game.state = applyMe(this.game.state, me);
      this.game._sync();
    } catch (err) {
      hook.economyError = { where: "me", status: err.status, message: err.message };
    }
  }

  /** Show `good` (and candles of `interval` seconds) in the Market tab. */
  showGood(good, interval = this.market.interval) {
    this.market = { ...this.market, good, interval };
    this.marketPanel.setGood(good, interval);
    this.loadMarket();
  }

  /** The region's statistics, and the selected good's book, trades and candles. */
  async loadMarket() {
    const region = this.game.state.region;
    this.marketPanel.setRegion(region);
    if (!region) return;
    const { good, interval } = this.market;
    const [stats, book, history] = await Promise.allSettled([this.api.market(region), this.api.book(region, good), this.api.history(region, good, interval, HISTORY_CANDLES)]);
    if (this.game.view.disposed || good !== this.market.good) return;
    const m = { ...this.market };
    if (stats.status === "fulfilled") m.stats = statsRows(stats.value);
    if (book.status === "fulfilled") {
      m.book = bookModel(book.value);
      m.trades = tradesModel(book.value);
    }
    if (history.status === "fulfilled") m.candles = parseCandles(history.value);
    this.market = m;
    this.marketPanel.setStats(m.stats);
    if (m.book) this.marketPanel.setBook(m.book);
    this.marketPanel.setTrades(m.trades);
    this.marketPanel.setCandles(m.candles);
    const failed = [stats, book, history].find((r) => r.status === "rejected");
    if (failed) this.marketPanel.setError(`market unavailable: ${failed.reason.message}`);
    this.game._sync();
  }

  /** POST the order; refreshes /api/me and the book. Rejects with the server's EconomyApiError. */
  async placeOrder(order) {
    const answer = await this.api.placeOrder(order);
    hook.lastOrder = answer && answer.order ? answer.order : answer;
    await this.loadMe();
    this.loadMarket();
    return answer;
  }

  /** DELETE the order (a refusal is shown), then /api/me again. */
  async cancelOrder(id) {
    try {
      await this.api.cancelOrder(id);
    } catch (err) {
      showToast(`Cancel ${id}: ${err.message}`);
    }
    await this.loadMe();
    if (this.tab === "market") this.loadMarket();
  }

  /** GET /api/me/graph into the Knowledge tab. */
  async loadGraph() {
    try {
      const answer = await this.api.graph();
      hook.graphCount = Array.isArray(answer && answer.fragments) ? answer.fragments.length : 0;
      this.knowledge.set(answer);
    } catch (err) {
      this.knowledge.set(`graph unavailable: ${err.message}`);
    }
  }
}

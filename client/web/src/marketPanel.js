// The Market tab: the market of the region the ship is in. Goods tabs (with their last price),
// the selected good's statistics, its order book depth (bids | asks with cumulative depth
// bars), a price chart (OHLC candles and the close line, 1 min / 1 h / 1 day), recent trades,
// "my orders" with Cancel, and the place-order form (checked as it is typed: orderForm.js;
// the server's refusal is shown as it comes). Text goes through textContent only.
import { el } from "./hud.js";
import { FEE_RATE, GOOD_NAMES, GOODS, HISTORY_INTERVALS } from "./economy_protocol.js";
import { chartModel, fmt, fmtGameTime } from "./marketModel.js";
import { isOpen, orderStatus } from "./orderForm.js";

const SVG = "http://www.w3.org/2000/svg";
const CHART_W = 300;
const CHART_H = 90;
const INTERVAL_NAMES = { 60: "1m", 3600: "1h", 86400: "1d" };

function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

function field(label, input) {
  return el("label", { class: "order-field" }, el("span", { text: label }), input);
}

/**
 * Handlers: `onGood(good)`, `onInterval(seconds)`, `onValidate(form)` -> orderForm result,
 * `onPlace(order)` -> Promise (rejects with an EconomyApiError), `onCancel(orderId)`.
 */
export function createMarketPanel({ onGood, onInterval, onValidate, onPlace, onCancel }) {
  const title = el("div", { class: "market-title", id: "marketRegion", text: "Market" });
  const goods = el("div", { class: "goods-tabs", id: "marketGoods" });
  for (const g of GOODS) goods.append(el("button", { type: "button", class: "good-tab", "data-good": g, onclick: () => onGood(g) }, el("span", { text: GOOD_NAMES[g] }), el("span", { class: "good-last" })));
  const stats = el("div", { class: "market-stats muted", id: "marketStats" });
  const bids = el("div", { class: "book-side bids", id: "bookBids" });
  const asks = el("div", { class: "book-side asks", id: "bookAsks" });
  const spread = el("div", { class: "book-spread muted", id: "bookSpread" });
  const chart = svg("svg", { class: "price-chart", id: "priceChart", viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: "none" });
  const chartNote = el("div", { class: "chart-note muted" });
  const intervals = el("div", { class: "intervals" });
  for (const i of HISTORY_INTERVALS) intervals.append(el("button", { type: "button", class: "interval", "data-interval": String(i), text: INTERVAL_NAMES[i], onclick: () => onInterval(i) }));
  const trades = el("ul", { class: "trades", id: "marketTrades" });
  const orders = el("ul", { class: "my-orders", id: "myOrders" });

  const side = el("select", { id: "orderSide" }, el("option", { value: "buy", text: "Buy" }), el("option", { value: "sell", text: "Sell" }));
  const kind = el("select", { id: "orderKind" }, el("option", { value: "limit", text: "Limit" }), el("option", { value: "market", text: "Market" }));
  const price = el("input", { id: "orderPrice", inputmode: "numeric", placeholder: "cr / unit", autocomplete: "off" });
  const quantity = el("input", { id: "orderQuantity", inputmode: "numeric", placeholder: "units", autocomplete: "off" });
  const ttl = el("input", { id: "orderTtl", inputmode: "numeric", placeholder: "7 days", autocomplete: "off", title: "lifetime in seconds (60 s to 30 days)" });
  const estimate = el("div", { class: "order-estimate muted", id: "orderEstimate" });
  const error = el("div", { class: "order-error error", id: "orderError", role: "alert" });
  const submit = el("button", { type: "submit", id: "orderSubmit", text: "Place order" });
  const form = el(
    "form",
    { class: "order-form", id: "orderForm" },
    el("div", { class: "order-row" }, field("Side", side), field("Type", kind)),
    el("div", { class: "order-row" }, field("Price", price), field("Quantity", quantity), field("TTL s", ttl)),
    estimate,
    error,
    submit,
  );
  const node = el(
    "div",
    { class: "eco-body market-tab" },
    title,
    goods,
    stats,
    el("div", { class: "book" }, bids, asks),
    spread,
    el("div", { class: "chart-head" }, el("h4", { text: "Price" }), intervals),
    chart,
    chartNote,
    el("h4", { text: "Recent trades" }),
    trades,
    el("h4", { text: "Place an order" }),
    form,
    el("h4", { text: "My orders" }),
    orders,
  );

  let good = GOODS[0];
  const read = () => ({ good, side: side.value, kind: kind.value, price: price.value, quantity: quantity.value, ttl: ttl.value });

  function check(showAll = false) {
    const f = read();
    ttl.disabled = f.kind !== "limit";
    price.placeholder = f.kind === "market" ? (f.side === "buy" ? "max cr / unit" : "min (any)") : "cr / unit";
    const r = onValidate(f);
    const msgs = Object.entries(r.errors)
      .filter(([k]) => showAll || (k === "price" ? price.value : k === "quantity" ? quantity.value : k === "ttl" ? ttl.value : true))
      .map(([, m]) => m);
    error.textContent = msgs.join(" ");
    submit.disabled = !r.ok;
    const p = Number(r.order && r.order.price != null ? r.order.price : 0);
    const q = Number(r.order ? r.order.quantity : 0);
    if (r.ok && f.side === "buy") estimate.textContent = `Escrow ${fmt(p * q)} cr and ${q} hold units${f.kind === "market" ? " (at most)" : ""}.`;
    else if (r.ok && p > 0) estimate.textContent = `Proceeds ${fmt(p * q - Math.ceil(p * q * FEE_RATE))} cr after the 2 % fee${f.kind === "market" ? " (at least)" : ""}.`;
    else if (r.ok) estimate.textContent = "Sells at the best bids, less the 2 % fee.";
    else estimate.textContent = "";
    return r;
  }
  for (const i of [side, kind, price, quantity, ttl]) i.addEventListener(i.tagName === "SELECT" ? "change" : "input", () => check());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = check(true);
    if (!r.ok) return;
    submit.disabled = true;
    error.textContent = "";
    estimate.textContent = "Placing…";
    try {
      await onPlace(r.order);
      estimate.textContent = "Order placed.";
      quantity.value = "";
    } catch (err) {
      const code = err && err.code != null ? `, code ${err.code}` : "";
      error.textContent = `Refused (${err && err.status ? `HTTP ${err.status}` : "no answer"}${code}): ${err && err.message ? err.message : err}`;
      estimate.textContent = "";
    } finally {
      submit.disabled = false;
    }
  });
  orders.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-cancel]");
    if (b) {
      b.disabled = true;
      onCancel(b.dataset.cancel);
    }
  });

  function ladder(sideEl, levels, label) {
    sideEl.replaceChildren(
      el("div", { class: "book-head" }, el("span", { text: label }), el("span", { text: "units" })),
      ...levels.map((l) => {
        const row = el("div", { class: "book-level", "data-price": String(l.price) }, el("span", { text: fmt(l.price) }), el("span", { text: fmt(l.units) }));
        row.style.setProperty("--depth", `${(100 * l.width).toFixed(1)}%`);
        return row;
      }),
    );
    if (!levels.length) sideEl.append(el("div", { class: "muted", text: "none" }));
  }

  return {
    node,
    /** The good shown (goods tab); also re-checks the form. */
    setGood(g, interval) {
      good = g;
      for (const b of goods.children) b.classList.toggle("active", b.dataset.good === g);
      for (const b of intervals.children) b.classList.toggle("active", Number(b.dataset.interval) === interval);
      check();
    },
    setRegion(region) {
      title.textContent = region ? `Market · ${region} region` : "Market · no market (in transit)";
    },
    /** statsRows(): last prices on the tabs, the selected good's line. */
    setStats(rows) {
      for (const b of goods.children) {
        const r = rows.find((x) => x.good === b.dataset.good);
        b.lastChild.textContent = r && r.last !== null ? fmt(r.last) : "";
      }
      const r = rows.find((x) => x.good === good);
      stats.textContent = r ? `last ${fmt(r.last)} · bid ${fmt(r.bid)} · ask ${fmt(r.ask)} · 24 h: ${fmt(r.volume_24h)} u in ${fmt(r.trades_24h)} trades` : "";
    },
    /** bookModel() */
    setBook(model) {
      ladder(bids, model.bids, "bid");
      ladder(asks, model.asks, "ask");
      spread.textContent = model.spread === null ? "" : `spread ${fmt(model.spread)} · mid ${model.mid.toFixed(1)}`;
    },
    /** tradesModel() */
    setTrades(list) {
      trades.replaceChildren(...list.map((t) => el("li", { class: "trade" }, el("span", { text: `${fmt(t.quantity)} u @ ${fmt(t.price)}` }), el("span", { class: "muted", text: fmtGameTime(t.time) }))));
      if (!list.length) trades.append(el("li", { class: "muted", text: "no trades yet" }));
    },
    /** parseCandles() */
    setCandles(candles) {
      const m = chartModel(candles, CHART_W, CHART_H);
      const parts = [];
      for (const c of m.candles) {
        parts.push(svg("line", { x1: c.x, x2: c.x, y1: c.yHigh, y2: c.yLow, class: c.up ? "wick up" : "wick down" }));
        parts.push(svg("rect", { x: c.x - c.w / 2, width: c.w, y: Math.min(c.yOpen, c.yClose), height: Math.max(1, Math.abs(c.yOpen - c.yClose)), class: c.up ? "body up" : "body down" }));
      }
      if (m.points) parts.push(svg("polyline", { points: m.points, class: "close-line" }));
      chart.replaceChildren(...parts);
      chartNote.textContent = m.candles.length ? `${fmt(m.min)} – ${fmt(m.max)} cr over ${m.candles.length} candles` : "no trades in this period";
    },
    /** /api/me orders: open ones first (with Cancel), then finished ones. */
    setOrders(list) {
      const sorted = [...list].sort((a, b) => Number(isOpen(b)) - Number(isOpen(a)));
      orders.replaceChildren(
        ...sorted.slice(0, 30).map((o) => {
          const open = isOpen(o);
          const done = Number.isSafeInteger(o.remaining) && Number.isSafeInteger(o.quantity) ? ` (${o.quantity - o.remaining}/${o.quantity} filled)` : "";
          const status = o.cancelling && open ? "cancelling" : orderStatus(o);
          return el(
            "li",
            { class: `my-order ${open ? "open" : "done"}`, "data-order": String(o.id) },
            el("span", { text: `${o.side} ${o.quantity} ${o.good} @ ${o.price == null ? "any" : fmt(o.price)} ${o.kind || ""} · ${status}${done}` }),
            open && !o.cancelling ? el("button", { type: "button", "data-cancel": String(o.id), text: "Cancel" }) : null,
          );
        }),
      );
      if (!list.length) orders.append(el("li", { class: "muted", text: "no orders" }));
    },
    setError(text) {
      chartNote.textContent = text || "";
    },
    recheck: () => check(),
  };
}

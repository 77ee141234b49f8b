// Run with `npm test`: the place-order form's rules, the order book's depth ladder, trades,
// candles, the chart's geometry, statistics, and the economy HTTP API against a fake fetch.
import assert from "node:assert/strict";
import { test } from "node:test";

import { initialEconomy } from "../src/economy.js";
import { createEconomyApi, EconomyApiError } from "../src/economyApi.js";
import { bookModel, chartModel, fmt, parseCandles, statsRows, tradesModel } from "../src/marketModel.js";
import { isOpen, parseWhole, validateOrder } from "../src/orderForm.js";

const rich = { ...initialEconomy(), region: "core", credits: 5000, capacity: 100, cargo: { ferrite: 20 }, reserved: 10 };
const form = (extra = {}) => ({ good: "ferrite", side: "buy", kind: "limit", price: "10", quantity: "5", ttl: "", ...extra });

test("parseWhole takes digits only", () => {
  assert.equal(parseWhole(" 42 "), 42);
  assert.equal(parseWhole(7), 7);
  assert.equal(parseWhole(""), null);
  assert.equal(parseWhole(undefined), null);
  for (const bad of ["1.5", "1e3", "-2", "abc", "0x10", 2.5, "99999999999999999999"]) assert.ok(Number.isNaN(parseWhole(bad)), String(bad));
});

test("a good limit buy becomes the POST body", () => {
  const r = validateOrder(form({ ttl: "3600" }), rich);
  assert.equal(r.ok, true);
  assert.deepEqual(r.order, { market: "core", good: "ferrite", side: "buy", kind: "limit", price: 10, quantity: 5, ttl: 3600 });
  assert.equal(validateOrder(form(), rich).order.ttl, undefined); // the server's 7-day default
});

test("prices and quantities: positive integers within the market's bounds", () => {
  const err = (f, s = rich) => validateOrder(f, s).errors;
  assert.match(err(form({ price: "0" })).price, /at least 1/);
  assert.match(err(form({ price: "2.5" })).price, /whole number/);
  assert.match(err(form({ price: "1000001" })).price, /1,000,000/);
  assert.equal(err(form({ price: "1000000", quantity: "1" }), { ...rich, credits: 10 ** 7 }).price, undefined);
  assert.match(err(form({ price: "" })).price, /Enter a price/);
  assert.match(err(form({ quantity: "10001" })).quantity, /10,000/);
  assert.match(err(form({ quantity: "-1" })).quantity, /whole number/);
  assert.match(err(form({ quantity: "" })).quantity, /Enter a quantity/);
  assert.match(err(form({ ttl: "59" })).ttl, /60 s to 30 days/);
  assert.match(err(form({ ttl: String(30 * 86400 + 1) })).ttl, /30 days/);
  assert.match(err(form({ good: "gold" })).good, /good/);
  assert.match(err(form({ side: "hold" })).side, /Buy or sell/);
});

test("a buy needs the credits (price x quantity) and free hold space", () => {
  assert.match(validateOrder(form({ price: "1000", quantity: "6" }), rich).errors.quantity, /Costs up to 6,000 credits; you have 5,000/);
  // 100 capacity - 20 cargo - 10 reserved = 70 free
  assert.equal(validateOrder(form({ price: "1", quantity: "70" }), rich).ok, true);
  assert.match(validateOrder(form({ price: "1", quantity: "71" }), rich).errors.quantity, /70 free/);
});

test("a sell needs the goods; a market sell without a price goes at any price", () => {
  assert.equal(validateOrder(form({ side: "sell", quantity: "20" }), rich).ok, true);
  assert.match(validateOrder(form({ side: "sell", quantity: "21" }), rich).errors.quantity, /You have 20 ferrite/);
  assert.match(validateOrder(form({ side: "sell", good: "ice", quantity: "1" }), rich).errors.quantity, /You have 0 ice/);
  const m = validateOrder(form({ side: "sell", kind: "market", price: "", ttl: "99" }), rich);
  assert.equal(m.ok, true);
  assert.deepEqual(m.order, { market: "core", good: "ferrite", side: "sell", kind: "market", quantity: 5 }); // no floor, no ttl on a market order
  assert.equal(validateOrder(form({ side: "sell", kind: "market", price: "9" }), rich).order.price, 9);
  assert.match(validateOrder(form({ kind: "market", price: "" }), rich).errors.price, /market buy needs/);
});

test("no market in transit; at most 50 open orders", () => {
  assert.match(validateOrder(form(), { ...rich, region: null }).errors.market, /not in a system/);
  const orders = Array.from({ length: 50 }, (_, i) => ({ id: i, state: "open" }));
  assert.match(validateOrder(form(), { ...rich, orders }).errors.market, /At most 50/);
  orders[0].state = "filled";
  assert.equal(validateOrder(form(), { ...rich, orders }).ok, true);
  assert.equal(isOpen({ state: "cancelled" }), false);
  assert.equal(isOpen({ status: "expired" }), false);
  assert.equal(isOpen({ status: "open", cancelling: true }), true);
  assert.equal(isOpen({}), true);
});

test("bookModel: sorted sides, cumulative depth, widths against the deeper side, spread", () => {
  const m = bookModel({ bids: [[95, 10], [99, 5], [0, 3], [97, "x"]], asks: [[103, 2], [101, 4], [110, 30]] }, 2);
  assert.deepEqual(m.bids.map((l) => [l.price, l.units, l.cum]), [[99, 5, 5], [95, 10, 15]]);
  assert.deepEqual(m.asks.map((l) => [l.price, l.units, l.cum]), [[101, 4, 4], [103, 2, 6]]);
  assert.equal(m.maxCum, 15);
  assert.equal(m.bids[1].width, 1);
  assert.equal(m.asks[1].width, 6 / 15);
  assert.deepEqual([m.bestBid, m.bestAsk, m.spread, m.mid], [99, 101, 2, 100]);
  const empty = bookModel({ bids: [], asks: [[5, 1]] });
  assert.deepEqual([empty.spread, empty.mid, empty.asks[0].width], [null, null, 1]);
  assert.deepEqual(bookModel(null).bids, []);
});

test("trades newest first; candles oldest first; chart geometry in the box", () => {
  const t = tradesModel({ trades: [{ trade: 1, price: 10, quantity: 2, time: 5 }, { trade: 2, price: 11, quantity: 1, time: 9 }, { price: 0, quantity: 1 }] });
  assert.deepEqual(t.map((x) => x.trade), [2, 1]);
  assert.equal(parseCandles({ good: "ice", interval: 60, buckets: [{ t: 60, open: 1, high: 1, low: 1, close: 1, volume: 2, trades: 1 }] })[0].volume, 2);
  const c = parseCandles({ candles: [{ t: 120, open: 10, high: 14, low: 9, close: 12, volume: 3 }, { t: 60, open: 8, high: 10, low: 8, close: 10 }, { t: 0, open: "x" }] });
  assert.deepEqual(c.map((x) => x.t), [60, 120]);
  assert.equal(c[0].volume, 0);
  const g = chartModel(c, 100, 50, 0);
  assert.deepEqual([g.min, g.max], [8, 14]);
  assert.deepEqual([g.candles[0].x, g.candles[1].x], [25, 75]);
  assert.equal(g.candles[1].yHigh, 0);
  assert.equal(g.candles[0].yLow, 50);
  assert.equal(g.candles[1].up, true);
  assert.equal(g.points, "25.0,33.3 75.0,16.7");
  const flat = chartModel([{ t: 0, open: 5, high: 5, low: 5, close: 5 }], 10, 10);
  assert.deepEqual([flat.min, flat.max], [4, 6]);
  assert.deepEqual(chartModel([], 10, 10).candles, []);
});

test("statsRows: every good in order, either answer shape; fmt", () => {
  const rows = statsRows({ ice: { last: 12, bid: 11, ask: 13, volume_24h: 40, trades_24h: 3 } });
  assert.deepEqual(rows.map((r) => r.good), ["ferrite", "silicates", "ice", "platinum", "helium3", "exotics"]);
  assert.deepEqual(rows[2], { good: "ice", last: 12, bid: 11, ask: 13, volume_24h: 40, trades_24h: 3 });
  assert.deepEqual(rows[0], { good: "ferrite", last: null, bid: null, ask: null, volume_24h: 0, trades_24h: 0 });
  assert.equal(statsRows({ region: "core", goods: { ice: { last: 7 } } })[2].last, 7);
  assert.equal(fmt(1234567), "1,234,567");
  assert.equal(fmt(null), "—");
});

function fakeFetch(answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, ...init, headers: { ...init.headers } });
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return { ok: a.status >= 200 && a.status < 300, status: a.status, statusText: "", json: async () => (a.body === undefined ? Promise.reject(new Error("no body")) : a.body) };
  };
  return { f, calls };
}

test("economy API: paths, methods, bearer token, JSON bodies", async () => {
  const { f, calls } = fakeFetch([
    { status: 200, body: { credits: 1 } },
    { status: 201, body: { order: { id: "o1" } } },
    { status: 202 },
    { status: 200, body: {} },
    { status: 200, body: { bids: [] } },
    { status: 200, body: [] },
    { status: 200, body: { fragments: [], count: 0 } },
  ]);
  const api = createEconomyApi({ fetch: f, getToken: async () => "tok" });
  assert.deepEqual(await api.me(), { credits: 1 });
  const order = { market: "core", good: "ice", side: "buy", kind: "limit", price: 5, quantity: 2 };
  assert.deepEqual(await api.placeOrder(order), { order: { id: "o1" } });
  assert.equal(await api.cancelOrder("o 1"), null); // 202 without a body
  await api.market("core");
  await api.book("core", "helium3");
  await api.history("mid", "ice", 60, 10);
  await api.graph();
  assert.deepEqual(
    calls.map((c) => [c.method, c.url]),
    [
      ["GET", "/api/me"],
      ["POST", "/api/me/orders"],
      ["DELETE", "/api/me/orders/o%201"],
      ["GET", "/api/market/core"],
      ["GET", "/api/market/core/helium3"],
      ["GET", "/api/market/mid/ice/history?interval=60&limit=10"],
      ["GET", "/api/me/graph"],
    ],
  );
  assert.ok(calls.every((c) => c.headers.Authorization === "Bearer tok"));
  assert.deepEqual(JSON.parse(calls[1].body), order);
  assert.equal(calls[1].headers["Content-Type"], "application/json");
  await assert.rejects(api.book("core", "gold"), EconomyApiError);
  await assert.rejects(api.history("core", "ice", 5), /interval/);
  assert.equal(calls.length, 7); // refused before any request
});

test("economy API: the server's error and code, network failures, no token", async () => {
  const { f, calls } = fakeFetch([{ status: 400, body: { error: "not enough credits", code: "insufficient_credits" } }, new Error("offline"), { status: 500 }]);
  const api = createEconomyApi({ fetch: f });
  await assert.rejects(api.placeOrder({}), (e) => e instanceof EconomyApiError && e.status === 400 && e.code === "insufficient_credits" && e.message === "not enough credits");
  await assert.rejects(api.me(), (e) => e.status === 0 && /offline/.test(e.message));
  await assert.rejects(api.me(), (e) => e.status === 500 && e.code === null);
  assert.equal(calls[1].headers.Authorization, undefined);
});

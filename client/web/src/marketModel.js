// What the market panel draws, computed from the HTTP answers (pure): the order book's depth
// ladder, the recent trades, the price chart's geometry and the region's statistics.
// Answers are read leniently: levels that are not [price, units] with positive integers, trades
// without a price, candles without numbers are dropped.
import { GAME_EPOCH, GOODS } from "./economy_protocol.js";

const posInt = (v) => Number.isSafeInteger(v) && v > 0;

function levels(list, order) {
  const out = (Array.isArray(list) ? list : []).filter((l) => Array.isArray(l) && posInt(l[0]) && posInt(l[1])).map(([price, units]) => ({ price, units }));
  out.sort((a, b) => order * (a.price - b.price));
  return out;
}

/**
 * The depth ladder of a book answer `{bids: [[price, units]], asks: [[price, units]]}`, at most
 * `depth` levels a side: bids highest first, asks lowest first, each `{price, units, cum,
 * width}` (cum: units up to and including this level from the top of its side; width:
 * cum / the larger side's total, in [0, 1], for the depth bar). `spread` = best ask - best bid,
 * `mid` their mean (null when a side is empty).
 */
export function bookModel(book, depth = 10) {
  const bids = levels(book && book.bids, -1).slice(0, depth);
  const asks = levels(book && book.asks, 1).slice(0, depth);
  for (const side of [bids, asks]) {
    let cum = 0;
    for (const l of side) {
      cum += l.units;
      l.cum = cum;
    }
  }
  const maxCum = Math.max(bids.length ? bids.at(-1).cum : 0, asks.length ? asks.at(-1).cum : 0);
  for (const l of [...bids, ...asks]) l.width = maxCum > 0 ? l.cum / maxCum : 0;
  const bestBid = bids.length ? bids[0].price : null;
  const bestAsk = asks.length ? asks[0].price : null;
  const both = bestBid !== null && bestAsk !== null;
  return { bids, asks, bestBid, bestAsk, spread: both ? bestAsk - bestBid : null, mid: both ? (bestAsk + bestBid) / 2 : null, maxCum };
}

/** The book answer's trades, newest first, at most `limit`: [{trade, price, quantity, time}]. */
export function tradesModel(book, limit = 12) {
  const list = (book && Array.isArray(book.trades) ? book.trades : []).filter((t) => t && posInt(t.price) && posInt(t.quantity));
  const out = list.map((t) => ({ trade: t.trade ?? null, price: t.price, quantity: t.quantity, time: Number.isFinite(t.time) ? t.time : null }));
  out.sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
  return out.slice(0, limit);
}

/** Candles from a history answer (`{buckets: [...]}`, or a list, or `{candles: [...]}`), oldest first. */
export function parseCandles(answer) {
  const wrapped = answer && (Array.isArray(answer.buckets) ? answer.buckets : Array.isArray(answer.candles) ? answer.candles : null);
  const list = Array.isArray(answer) ? answer : wrapped || [];
  return list
    .filter((c) => c && ["t", "open", "high", "low", "close"].every((k) => Number.isFinite(c[k])))
    .map((c) => ({ t: c.t, open: c.open, high: c.high, low: c.low, close: c.close, volume: Number.isFinite(c.volume) ? c.volume : 0 }))
    .sort((a, b) => a.t - b.t);
}

/**
 * The chart's geometry for candles in a `width` x `height` box (y grows downward): one candle
 * per slot, `{x, w, up, yOpen, yClose, yHigh, yLow}` in pixels, plus `min`/`max` prices and
 * the close line `points` ("x,y x,y ..."). Empty candles: {candles: [], points: ""}.
 */
export function chartModel(candles, width, height, pad = 4) {
  if (!candles.length) return { candles: [], points: "", min: null, max: null };
  let min = Math.min(...candles.map((c) => c.low));
  let max = Math.max(...candles.map((c) => c.high));
  if (max === min) {
    max += 1;
    min = Math.max(0, min - 1);
  }
  const slot = (width - 2 * pad) / candles.length;
  const y = (v) => pad + ((max - v) / (max - min)) * (height - 2 * pad);
  const out = candles.map((c, i) => ({
    x: pad + slot * (i + 0.5),
    w: Math.max(1, slot * 0.6),
    up: c.close >= c.open,
    yOpen: y(c.open),
    yClose: y(c.close),
    yHigh: y(c.high),
    yLow: y(c.low),
  }));
  const points = out.map((c) => `${c.x.toFixed(1)},${c.yClose.toFixed(1)}`).join(" ");
  return { candles: out, points, min, max };
}

/**
 * The region's statistics per good from `GET /api/market/{region}` (`{good: stats}`, or
 * `{goods: {good: stats}}`): [{good, last, bid, ask, volume_24h, trades_24h}] in GOODS order,
 * null for what is missing.
 */
export function statsRows(answer) {
  const src = answer && answer.goods && typeof answer.goods === "object" ? answer.goods : answer || {};
  const num = (v) => (Number.isFinite(v) ? v : null);
  return GOODS.map((good) => {
    const s = src[good] && typeof src[good] === "object" ? src[good] : {};
    return { good, last: num(s.last), bid: num(s.bid), ask: num(s.ask), volume_24h: num(s.volume_24h) ?? 0, trades_24h: num(s.trades_24h) ?? 0 };
  });
}

/** A game time (seconds since GAME_EPOCH) as a local clock time "13:05:12", "" when unknown. */
export function fmtGameTime(t) {
  return Number.isFinite(t) ? new Date((GAME_EPOCH + t) * 1000).toLocaleTimeString() : "";
}

/** A price or count for people: "1,250", or "—" when unknown. */
export function fmt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en") : "—";
}

// The economy's HTTP API (docs/protocol.md §10 "Market and pilot HTTP"), with the page's
// bearer token: the pilot's ledger and orders (`/api/me`), the regional markets, the
// pilot's Knowledge Graph and the galaxy's discoveries. `fetch` and `getToken` are injected
// (tests use fakes); every answer is JSON, every error `{error, code?}`.
import { GOODS, HISTORY_INTERVALS } from "./economy_protocol.js";

export class EconomyApiError extends Error {
  /** `status`: the HTTP status (0: no answer); `code`: the server's error code, if any. */
  constructor(status, message, code = null, body = null) {
    super(message);
    this.name = "EconomyApiError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

const enc = encodeURIComponent;

/**
 * `createEconomyApi({fetch, getToken})`: `getToken()` resolves to the bearer token (or null:
 * no Authorization header). Each method resolves to the parsed answer or rejects with an
 * `EconomyApiError` (a network failure, an unknown good or interval: status 0, no request).
 */
export function createEconomyApi({ fetch = globalThis.fetch?.bind(globalThis), getToken = async () => null, base = "" } = {}) {
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = await getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new EconomyApiError(0, `network error: ${err && err.message ? err.message : err}`);
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      /* no JSON body (202 may have none) */
    }
    if (!res.ok) {
      const message = (data && typeof data.error === "string" && data.error) || `${res.status} ${res.statusText || ""}`.trim();
      throw new EconomyApiError(res.status, message, data && data.code != null ? data.code : null, data);
    }
    return data;
  }

  const good = (g) => {
    if (!GOODS.includes(g)) throw new EconomyApiError(0, `unknown good: ${g}`);
    return enc(g);
  };

  return {
    /** GET /api/me: {player, name, credits, cargo, capacity, reserved, free, region, system, orders, totals}. */
    me: () => call("GET", "/api/me"),
    /** POST /api/me/orders {market, good, side, kind, price, quantity, ttl?, ref?} -> {order}. */
    placeOrder: (order) => call("POST", "/api/me/orders", order),
    /** DELETE /api/me/orders/{id} (202: the cancel is on its way; the order ends `cancelled`). */
    cancelOrder: (id) => call("DELETE", `/api/me/orders/${enc(String(id))}`),
    /** GET /api/market/{region}: statistics per good. */
    market: (region) => call("GET", `/api/market/${enc(region)}`),
    /** GET /api/market/{region}/{good}: {good, bids, asks, trades}. */
    book: async (region, g) => call("GET", `/api/market/${enc(region)}/${good(g)}`),
    /** GET /api/market/{region}/{good}/history?interval=&limit=: [{t, open, high, low, close, volume}]. */
    history: async (region, g, interval = 3600, limit = 48) => {
      if (!HISTORY_INTERVALS.includes(interval)) throw new EconomyApiError(0, `interval must be one of ${HISTORY_INTERVALS.join(", ")}`);
      return call("GET", `/api/market/${enc(region)}/${good(g)}/history?interval=${interval}&limit=${limit | 0}`);
    },
    /** GET /api/me/graph: {fragments: [{subject, predicate, object, time, scan}], count}. */
    graph: () => call("GET", "/api/me/graph"),
    /** GET /api/discoveries: the galaxy's first discoverers. */
    discoveries: () => call("GET", "/api/discoveries"),
  };
}

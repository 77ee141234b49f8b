// The place-order form's rules (pure), mirroring the market's and the pilot ledger's
// (docs/economy.md §6): the server decides; this only keeps the client from sending an order
// it would refuse, and says why in words.
import { DEFAULT_TTL, GOODS, KINDS, MAX_OPEN_ORDERS, MAX_PRICE, MAX_QUANTITY, MAX_TTL, MIN_TTL, SIDES } from "./economy_protocol.js";
import { holdModel } from "./economy.js";

/**
 * A whole number from a form field: a JS integer, or a string of digits (surrounding spaces
 * allowed). Returns the number, null for an empty field, NaN for anything else ("1.5", "1e3",
 * "-2", "abc").
 */
export function parseWhole(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isSafeInteger(v) ? v : NaN;
  const s = String(v).trim();
  if (!s) return null;
  if (!/^\d+$/.test(s)) return NaN;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Order states that are over (docs/economy.md §5 `closed` reasons, and filled). */
export const FINISHED_STATES = new Set(["filled", "cancelled", "expired", "unfilled", "rejected", "closed"]);

/** An /api/me order's status (`status`, or `state` as older answers may call it), "open" if absent. */
export function orderStatus(order) {
  return String(order.status ?? order.state ?? "open");
}

/** Whether an /api/me order is still open (any status but a finished one). */
export function isOpen(order) {
  return !FINISHED_STATES.has(orderStatus(order));
}

function openOrders(orders) {
  return (orders || []).filter(isOpen).length;
}

/**
 * Check a form `{good, side, kind, price, quantity, ttl}` (price, quantity, ttl as typed)
 * against `state` (economy.js: credits, cargo, capacity, reserved, region, orders).
 * Returns `{ok, errors: {field: message}, order}`; `order` is the body of `POST
 * /api/me/orders` ({market, good, side, kind, price, quantity, ttl?}) when ok, else null.
 * A market sell with no price is sent without one (no floor: sell at whatever the bids pay);
 * ttl is only sent for limit orders, and only when typed (the server's default is 7 days).
 */
export function validateOrder(form, state) {
  const errors = {};
  const good = form.good;
  const side = form.side;
  const kind = form.kind || "limit";
  if (!GOODS.includes(good)) errors.good = "Pick a good.";
  if (!SIDES.includes(side)) errors.side = "Buy or sell?";
  if (!KINDS.includes(kind)) errors.kind = "Limit or market?";

  const price = parseWhole(form.price);
  const noFloor = price === null && kind === "market" && side === "sell";
  if (noFloor) {
    /* a market sell's lowest price is optional */
  } else if (price === null) errors.price = kind === "market" ? "A market buy needs the most you pay per unit." : "Enter a price.";
  else if (Number.isNaN(price) || price < 1) errors.price = "The price is a whole number of credits, at least 1.";
  else if (price > MAX_PRICE) errors.price = `At most ${MAX_PRICE.toLocaleString("en")} credits per unit.`;

  const quantity = parseWhole(form.quantity);
  if (quantity === null) errors.quantity = "Enter a quantity.";
  else if (Number.isNaN(quantity) || quantity < 1) errors.quantity = "The quantity is a whole number of units, at least 1.";
  else if (quantity > MAX_QUANTITY) errors.quantity = `At most ${MAX_QUANTITY.toLocaleString("en")} units.`;

  const ttl = kind === "limit" ? parseWhole(form.ttl) : null;
  if (ttl !== null && (Number.isNaN(ttl) || ttl < MIN_TTL || ttl > MAX_TTL)) {
    errors.ttl = `Lifetime: ${MIN_TTL} s to ${MAX_TTL / 86400} days (default ${DEFAULT_TTL / 86400} days).`;
  }

  if (!state.region) errors.market = "No market here: the ship is not in a system.";
  if (openOrders(state.orders) >= MAX_OPEN_ORDERS) errors.market = `At most ${MAX_OPEN_ORDERS} open orders: cancel one first.`;

  const numbersOk = !errors.price && !errors.quantity && !errors.side && !errors.good;
  if (numbersOk && side === "buy") {
    // a buy always has a price here (required above)
    const cost = price * quantity;
    if (state.credits !== null && state.credits !== undefined && cost > state.credits) {
      errors.quantity = `Costs up to ${cost.toLocaleString("en")} credits; you have ${state.credits.toLocaleString("en")}.`;
    } else {
      const { free } = holdModel(state);
      if (quantity > free) errors.quantity = `Needs ${quantity} free hold units; ${free} free.`;
    }
  }
  if (numbersOk && side === "sell") {
    const have = (state.cargo && state.cargo[good]) || 0;
    if (quantity > have) errors.quantity = `You have ${have} ${good} in the hold.`;
  }

  const ok = Object.keys(errors).length === 0;
  if (!ok) return { ok, errors, order: null };
  const order = { market: state.region, good, side, kind, price, quantity };
  if (noFloor) delete order.price;
  if (ttl !== null) order.ttl = ttl;
  if (form.ref) order.ref = String(form.ref);
  return { ok, errors, order };
}

// The economy's part of the protocol (docs/economy.md, issue 16): the message types, ship
// flags, error codes and ranges generated from rooms/protocol.py (re-exported here), and the
// client's own: goods, regions, the market's limits, the error texts.
// Rules below mirror the server's (rooms/market, rooms/pilot/ledger.py): the server decides;
// these only keep the client from sending what it would refuse.

import { ERR_EMPTY, ERR_HOLD_FULL, ERR_TOO_FAR, ERR_UNKNOWN_OBJECT } from "./protocol.generated.js";

export {
  SCAN, // client -> system {target: "planet:<id>" | "field:<index>" | "anomaly:<index>"}
  MINE, // client -> system {target: same | null (stop)}
  LOOT, // client -> system {wreck: int}
  CARGO, // system -> client {credits, cargo: {good: units}, capacity, reserved, free}
  WRECKS, // system -> client {wrecks: [{id, x, y, goods, expires}]} (a bare list is read too)
  ERR_TOO_FAR,
  ERR_UNKNOWN_OBJECT,
  ERR_HOLD_FULL,
  ERR_EMPTY,
  SHIP_SCANNING,
  SHIP_MINING,
  SCAN_SECONDS,
  SCAN_RANGE,
  MINE_RANGE,
  LOOT_RANGE,
} from "./protocol.generated.js";

// SCAN, MINE and LOOT also answer their orders (system -> client):
//   scan {target, state: "started", ends} then {target, state: "done", kind, region, resources, lore,
//     fragments, ...} or {target, state: "cancelled", reason}
//   mine {target, state: "started"}, {target, state: "mined", goods}, {target, state: "stopped", reason}
//   loot {wreck, goods}: what was taken

// error codes of scan/mine/loot (22, 24, 25 also come with seq 0 when mining stops)
export const ECONOMY_ERROR_TEXT = {
  [ERR_TOO_FAR]: "Too far: fly closer.",
  [ERR_UNKNOWN_OBJECT]: "No such target here (planets must be scanned before mining).",
  [ERR_HOLD_FULL]: "The hold is full.",
  [ERR_EMPTY]: "Nothing left there.",
};

/** Game time (frames' `time`, market and ledger times) counts seconds from this unix time. */
export const GAME_EPOCH = Date.UTC(2026, 0, 1) / 1000;


// goods, in the order of rooms/economy/resources.py RESOURCES
export const GOODS = ["ferrite", "silicates", "ice", "platinum", "helium3", "exotics"];
export const GOOD_NAMES = {
  ferrite: "Ferrite",
  silicates: "Silicates",
  ice: "Ice",
  platinum: "Platinum",
  helium3: "Helium-3",
  exotics: "Exotics",
};
export const REGIONS = ["core", "mid", "outer"];

// hold size (units): the corvette's
export const HOLD_CAPACITY = 100;

// the market's rules (docs/economy.md §6)
export const SIDES = ["buy", "sell"];
export const KINDS = ["limit", "market"];
export const MAX_PRICE = 1_000_000; // credits per unit
export const MAX_QUANTITY = 10_000; // units
export const MIN_TTL = 60; // seconds
export const MAX_TTL = 30 * 86400;
export const DEFAULT_TTL = 7 * 86400;
export const MAX_OPEN_ORDERS = 50;
export const FEE_RATE = 0.02; // of each fill's notional, rounded up, paid by the seller
export const HISTORY_INTERVALS = [60, 3600, 86400]; // seconds per OHLC candle

/** The seller's fee on a fill of `quantity` at `price`: 2 %, rounded up to a whole credit. */
export function fee(price, quantity) {
  return Math.ceil((price * quantity * 2) / 100);
}

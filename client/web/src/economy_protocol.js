// The economy's part of the protocol (docs/economy.md, issue 16), kept by hand in this module
// until the `systemeco` work adds the message types, ship flags and error codes to
// rooms/protocol.py and the generated protocol.generated.js: then these re-export the
// generated constants (the values here are the contract's) and the local copies go away.
// Rules below mirror the server's (rooms/market, rooms/pilot/ledger.py): the server decides;
// these only keep the client from sending what it would refuse.

// client -> system
export const SCAN = "scan"; // {target: "planet:<id>" | "field:<index>" | "anomaly:<index>"}
export const MINE = "mine"; // {target: same | null (stop)}
export const LOOT = "loot"; // {wreck: int}
// system -> client; SCAN, MINE and LOOT also answer their orders:
//   scan {target, state: "started", ends} then {target, state: "done", kind, region, resources, lore,
//     fragments, ...} or {target, state: "cancelled", reason}
//   mine {target, state: "started"}, {target, state: "mined", goods}, {target, state: "stopped", reason}
//   loot {wreck, goods}: what was taken
export const CARGO = "cargo"; // {credits, cargo: {good: units}, capacity, reserved, free}
export const WRECKS = "wrecks"; // {wrecks: [{id, x, y, goods, expires}]} (a bare list is read too)

// error codes of scan/mine/loot (22, 24, 25 also come with seq 0 when mining stops)
export const ERR_TOO_FAR = 22;
export const ERR_UNKNOWN_OBJECT = 23;
export const ERR_HOLD_FULL = 24;
export const ERR_EMPTY = 25;
export const ECONOMY_ERROR_TEXT = {
  [ERR_TOO_FAR]: "Too far: fly closer.",
  [ERR_UNKNOWN_OBJECT]: "No such target here (planets must be scanned before mining).",
  [ERR_HOLD_FULL]: "The hold is full.",
  [ERR_EMPTY]: "Nothing left there.",
};

/** Game time (frames' `time`, market and ledger times) counts seconds from this unix time. */
export const GAME_EPOCH = Date.UTC(2026, 0, 1) / 1000;

// ship row flags (frame `ships` rows [id, x, y, flags])
export const SHIP_SCANNING = 64;
export const SHIP_MINING = 128;

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

// exploration and mining (docs/economy.md §3-4), world units and seconds
export const SCAN_SECONDS = 3;
export const SCAN_RANGE = 250;
export const MINE_RANGE = 150;
export const LOOT_RANGE = 100;
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

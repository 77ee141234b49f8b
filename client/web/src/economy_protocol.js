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
// system -> client (SCAN is also the scan's answer: started, progress, result)
export const CARGO = "cargo"; // {credits, cargo: {good: units}, capacity, reserved}
export const WRECKS = "wrecks"; // [{id, x, y, goods, expires}] (or {wrecks: [...]})

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

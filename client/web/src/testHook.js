// window.starhold: plain data about the client's state, read by end-to-end tests (and handy
// in the console). Views update it; nothing in the client reads it back.
const hook = {};

function systemDefaults(view, systemId) {
  return {
    view, // "galaxy" | "system"
    status: "closed", // socket state: connecting | open | joined | reconnecting | closed
    connection: "offline", // for people: connected | connecting | reconnecting | offline
    statusText: "",
    retryAt: 0, // Date.now() of the next reconnection attempt while reconnecting
    lastClose: null, // {code, reason} of the last socket close
    closes: [], // {code, reason} of the socket closes so far (the last 10), oldest first
    systemId, // system id of the current view (canonical id once welcomed)
    systemName: null,
    player: null, // player id (the token's subject)
    playerName: null, // name of the player's ship
    shipId: null,
    seat: null, // seat token of the last welcome
    resumed: false, // whether the last welcome resumed the seat
    welcomes: 0,
    reconnects: 0, // welcomes after the first (successful reconnections)
    tick: 0, // tick of the latest frame applied
    time: 0, // its game time, seconds
    frames: 0, // frames applied (keyframes + deltas) since the system view opened
    keyframes: 0,
    gaps: 0, // deltas ignored (base was not our tick)
    resyncs: 0, // resync messages sent
    ack: 0, // latest frame's ack
    seq: 0, // last input seq sent
    queued: 0, // commands waiting to be sent (offline queue)
    pending: 0, // commands sent and not acknowledged yet
    shipCount: 0,
    ships: {}, // id -> {x, y, flags, name, hp?, maxHp?}, latest frame (the room's state, not predicted)
    asteroids: 0, // asteroid discs drawn (welcome.system.asteroids)
    exclusionRadius: null, // the star's exclusion zone drawn (welcome.system.exclusion_radius)
    predicted: null, // {x, y} of the own ship as drawn (prediction), or null
    lastError: null, // latest error frame payload {code, message, seq}
    moveTo: () => null, // (x, y) -> seq sent, or null when queued / not in a system
    attack: () => null, // (ship id) -> seq sent, or null when queued / not in a system
    resync: () => null, // ask for a keyframe
    // issue 14 (systemGame.js)
    lanes: [], // welcome.system.lanes drawn as jump points [{id, name, parsecs, x, y}]
    station: null, // welcome.system.station {x, y, radius}
    presence: [], // latest presence [{player, name, ship, status, combat}]
    chat: [], // latest chat messages seen (system and DMs, last 50), oldest first
    route: null, // the autopilot's confirmation {systems, parsecs}
    elsewhere: null, // payload of the latest `elsewhere` message
    shots: 0, // combat events drawn since the view opened: shots (kind 0)
    explosions: 0, // and ships destroyed (kind 1)
    say: () => null, // (text) -> seq, or an error text (rate limited, not connected)
    tell: () => null, // (player id, text) -> seq, or an error text
    jump: () => null, // (system id) -> seq (queued like move_to)
    engageRoute: () => null, // (system id) -> seq: autopilot from the current system
    // issue 16, per system view (economyGame.js)
    credits: null, // the ledger's credits (`cargo` messages, /api/me)
    cargo: {}, // {good: units} in the hold
    capacity: 0, // hold size, units
    reserved: 0, // hold units reserved for open orders (a buy's unfilled units, a sell's goods)
    free: 0, // capacity - cargo - reserved
    cargoUpdates: 0, // `cargo` messages applied
    region: null, // "core" | "mid" | "outer": the market the ship trades on
    wrecks: [], // [{id, x, y, goods, expires}] in this system
    lastScan: null, // the last scan result {target, kind, region, resources, lore, fragments}
    scanState: null, // {target, state: scanning|done|failed, started, progress, seq, error}
    scanProgress: 0, // the scanner's progress bar, 0..1
    scanning: false, // own ship flagged SHIP_SCANNING (64)
    miningFlag: false, // own ship flagged SHIP_MINING (128)
    mining: null, // target being mined (ordered here, confirmed by `mine` messages), or null
    mined: {}, // {good: units} mined since the view opened (`mine` "mined" messages)
    mineStopped: null, // the last `mine` "stopped" {target, reason}
    lastLoot: null, // the last `loot` answer {wreck, goods}
    scanPulses: 0, // ships drawn scanning (flag 64: expanding pulses) in the last render
    miningBeams: 0, // ships drawn mining (flag 128: a beam to the field) in the last render
    targets: [], // [{target, type, name, distance, inScanRange, inMineRange}], nearest first
    orders: [], // /api/me orders
    lastOrder: null, // the last order POST /api/me/orders answered
    market: null, // {region, good, interval, stats, book (bookModel), trades, candles}
    graphCount: 0, // fragments in the last /api/me/graph
    economyError: null, // {where, status, message} of the last failed /api/me
    scan: () => null, // (target) -> seq (queued like jump)
    mine: () => null, // (target) -> seq
    stopMining: () => null, // -> seq of `mine {target: null}`
    loot: () => null, // (wreck id) -> seq
    placeOrder: () => Promise.reject(new Error("not in a system")), // ({good, side, kind?, price, quantity, ttl?}) -> answer
    cancelOrder: () => Promise.resolve(), // (order id)
    openEconomyTab: () => null, // ("cargo" | "scanner" | "market" | "knowledge")
    refreshEconomy: () => null, // /api/me (and the open tab's data) again
    // galaxy view (galaxyRoute.js)
    selected: null, // star whose info card is shown
    plotted: null, // route drawn on the map {systems, parsecs}
  };
}

Object.assign(hook, systemDefaults(null, null));
window.starhold = hook;

export default hook;

/** Reset the per-system fields (entering a view). */
export function resetSystemState(view, systemId = null) {
  Object.assign(hook, systemDefaults(view, systemId));
}

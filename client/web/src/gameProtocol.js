// Issue 14 protocol additions (SPEC14: jumps, autopilot, chat, presence, following the ship).
// Hand-written until the lead folds them into protocol.generated.js (generated from
// rooms/protocol.py); the names and values match the spec exactly.

// client -> system room
export const JUMP = "jump"; // {to: system id}: fly to that lane's jump point and jump
export const ROUTE = "route"; // {to: system id}: autopilot over the lanes (also the server's confirmation)
export const SAY = "say"; // {text}: system channel
export const TELL = "tell"; // {to: player id, text}: direct message

// server -> client
export const CHAT = "chat";
export const PRESENCE = "presence";
export const ELSEWHERE = "elsewhere";

export const ERR_NO_LANE = 17;
export const ERR_SHIP_BUSY = 18;
export const ERR_NO_ROUTE = 19;
export const ERR_ELSEWHERE = 20;
export const ERR_UNKNOWN_PLAYER = 21;

export const CLOSE_ELSEWHERE = 4110; // join refused: the ship is in another system
export const CLOSE_JUMPED = 4111; // the ship jumped out of this system

// rules (SPEC14 "Rules"; client-side mirrors, the server decides)
export const CHAT_MAX_LENGTH = 280;
export const CHAT_BURST = 5;
export const CHAT_RATE = 0.5; // messages per second (1 per 2 s), shared by say and tell
export const JUMP_RADIUS = 850; // world units from the star to a jump point
export const JUMP_RANGE = 40; // a ship this close to a jump point jumps
export const MIN_TRANSIT = 4; // seconds: wait = max(4, 2 * parsecs)
export const TRANSIT_PER_PARSEC = 2;

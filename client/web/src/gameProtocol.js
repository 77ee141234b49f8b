// The travel and chat part of the protocol (docs/protocol.md §10): the message types and codes
// (generated from rooms/protocol.py into protocol.generated.js, re-exported here), and the
// client's mirrors of the server's rules (rooms/system/travel.py, rooms/social/text.py and
// limiter.py: the server decides; these only keep the client from sending what it refuses).

export {
  JUMP,
  ROUTE,
  SAY,
  TELL,
  CHAT,
  PRESENCE,
  ELSEWHERE,
  ERR_NO_LANE,
  ERR_SHIP_BUSY,
  ERR_NO_ROUTE,
  ERR_ELSEWHERE,
  ERR_UNKNOWN_PLAYER,
  CLOSE_ELSEWHERE,
  CLOSE_JUMPED,
} from "./protocol.generated.js";

// rules (mirrors of the server's)
export const CHAT_MAX_LENGTH = 280;
export const CHAT_BURST = 5;
export const CHAT_RATE = 0.5; // messages per second (1 per 2 s), shared by say and tell
export const JUMP_RADIUS = 850; // world units from the star to a jump point
export const JUMP_RANGE = 40; // a ship this close to a jump point jumps
export const MIN_TRANSIT = 4; // seconds: wait = max(4, 2 * parsecs)
export const TRANSIT_PER_PARSEC = 2;

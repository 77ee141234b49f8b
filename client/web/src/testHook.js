// window.starhold: plain data about the client's state, read by end-to-end tests (and handy
// in the console). Views update it; nothing in the client reads it back.
const hook = {
  view: null, // "galaxy" | "system"
  status: "closed", // connection state: connecting | open | joined | reconnecting | closed
  statusText: "",
  systemId: null, // system id of the current view (canonical id once welcomed)
  systemName: null,
  shipId: null,
  playerKey: null,
  tick: 0, // tick of the latest frame
  time: 0, // game time of the latest frame, seconds
  frames: 0, // frames received since the system view opened
  ack: 0, // latest frame's ack
  seq: 0, // last input seq sent
  ships: {}, // id -> {x, y, flags, name}, latest frame positions
  lastError: null, // latest error frame payload {code, message}
  moveTo: () => null, // (x, y) -> seq sent, or null when queued / not in a system
};

window.starhold = hook;

export default hook;

/** Reset the per-system fields (entering a view). */
export function resetSystemState(view, systemId = null) {
  Object.assign(hook, {
    view,
    status: "closed",
    statusText: "",
    systemId,
    systemName: null,
    shipId: null,
    playerKey: null,
    tick: 0,
    time: 0,
    frames: 0,
    ack: 0,
    seq: 0,
    ships: {},
    lastError: null,
    moveTo: () => null,
  });
}

// The chat messages the page has seen (pure): system channel (cleared when the page changes
// system: the room sends its last 20 again on join) and direct messages (kept for the page:
// the server delivers each one once). Messages are deduplicated by id.
export const MAX_SYSTEM_MESSAGES = 100;
export const MAX_DM_MESSAGES = 100;

/** A chat payload in the documented shape, normalised, or null. */
export function parseChat(p) {
  if (!p || typeof p !== "object") return null;
  const channel = p.channel === "dm" ? "dm" : p.channel === "system" ? "system" : null;
  if (!channel || typeof p.text !== "string") return null;
  return {
    id: Number.isFinite(+p.id) ? +p.id : null,
    channel,
    from: typeof p.from === "string" ? p.from : "",
    name: typeof p.name === "string" ? p.name : "",
    to: typeof p.to === "string" ? p.to : null,
    text: p.text,
    time: Number.isFinite(+p.time) ? +p.time : 0,
    history: p.history === true,
  };
}

export class ChatLog {
  constructor() {
    this.system = [];
    this.dm = [];
    this.seen = new Set(); // "channel:id"
    this.count = 0; // messages added (arrival order)
  }

  /** Add a parsed message; false if it is a duplicate or malformed. */
  add(msg) {
    if (!msg) return false;
    if (msg.id !== null) {
      const key = `${msg.channel}:${msg.id}`;
      if (this.seen.has(key)) return false;
      this.seen.add(key);
    }
    const list = msg.channel === "dm" ? this.dm : this.system;
    msg.order = ++this.count;
    list.push(msg);
    const max = msg.channel === "dm" ? MAX_DM_MESSAGES : MAX_SYSTEM_MESSAGES;
    while (list.length > max) list.shift();
    return true;
  }

  /** Another system: its channel starts again (its history comes with the join). */
  clearSystem() {
    for (const m of this.system) if (m.id !== null) this.seen.delete(`system:${m.id}`);
    this.system = [];
  }

  /** Every message in arrival order (game times of different rooms do not compare). */
  all() {
    return [...this.system, ...this.dm].sort((a, b) => a.order - b.order);
  }
}

/** The pilots of a presence payload, normalised (status online | held | docked). */
export function parsePresence(p) {
  const pilots = p && Array.isArray(p.pilots) ? p.pilots : [];
  return pilots
    .filter((x) => x && typeof x.player === "string")
    .map((x) => ({
      player: x.player,
      name: typeof x.name === "string" && x.name ? x.name : x.player,
      ship: Number.isFinite(+x.ship) && x.ship !== null ? +x.ship : null,
      status: ["online", "held", "docked"].includes(x.status) ? x.status : "online",
      combat: x.combat === true,
    }));
}

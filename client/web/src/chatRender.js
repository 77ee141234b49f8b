// Chat DOM nodes, built with textContent only (never innerHTML): a player's text or name
// containing markup shows as text. `doc` is injectable (unit tests use a fake document).
import { displayText } from "./chat.js";

function make(doc, tag, cls, text) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * One chat line: `[DM from Bob] text` / `[DM to Bob] text` / `Bob: text`. `msg`: chatLog.js
 * message; `self`: own player id; `names(id)`: a name for a player id (DM recipients).
 */
export function chatLine(doc, msg, self, names = () => null) {
  const li = make(doc, "li", `chat-line ${msg.channel}${msg.history ? " history" : ""}`);
  li.dataset.channel = msg.channel;
  if (msg.id !== null) li.dataset.id = String(msg.id);
  const who = displayText(msg.name || msg.from, 32);
  let head;
  if (msg.channel === "dm") {
    const mine = msg.from === self;
    const other = mine ? displayText(names(msg.to) || msg.to || "?", 32) : who;
    head = make(doc, "span", "chat-who dm", mine ? `[DM to ${other}] ` : `[DM from ${other}] `);
  } else {
    head = make(doc, "span", `chat-who${msg.from === self ? " self" : ""}`, `${who}: `);
  }
  head.dataset.player = msg.channel === "dm" && msg.from === self ? msg.to || "" : msg.from;
  li.append(head, make(doc, "span", "chat-text", displayText(msg.text)));
  return li;
}

const STATUS_TEXT = { online: "online", held: "held", docked: "docked" };

/** One who's-here entry (a button: click to start a DM), with status and combat marker. */
export function pilotEntry(doc, pilot, self) {
  const li = make(doc, "li", `pilot ${pilot.status}${pilot.player === self ? " self" : ""}`);
  const b = make(doc, "button", "pilot-name", displayText(pilot.name, 32) + (pilot.player === self ? " (you)" : ""));
  b.type = "button";
  b.dataset.player = pilot.player;
  b.title = pilot.player === self ? "you" : "Send a direct message";
  li.append(b, make(doc, "span", "pilot-status", STATUS_TEXT[pilot.status] || pilot.status));
  if (pilot.combat) li.append(make(doc, "span", "pilot-combat", "⚔"));
  return li;
}

// The chat panel (#chat): who's here (presence: click a name to start a direct message), the
// log (system channel and DMs) and the input with its 280-character counter. Every text goes
// through textContent (chatRender.js).
import { el } from "./hud.js";
import { prepareChatText, stripControl, textLength } from "./chat.js";
import { CHAT_MAX_LENGTH } from "./gameProtocol.js";
import { chatLine, pilotEntry } from "./chatRender.js";

/** `onSend({to: player id | null, text})` returns an error text or null (sent). */
export function createChatPanel({ onSend }) {
  const pilots = el("ul", { class: "pilots", id: "presence" });
  const log = el("ul", { class: "chat-log", id: "chatLog", "aria-live": "polite" });
  const target = el("span", { class: "chat-target", id: "chatTarget", text: "System" });
  const clear = el("button", { type: "button", class: "chat-clear", hidden: true, text: "✕", title: "Back to the system channel" });
  const input = el("input", { type: "text", id: "chatInput", placeholder: "Say something…", autocomplete: "off", "aria-label": "Message" });
  const count = el("span", { class: "chat-count", id: "chatCount", text: `0/${CHAT_MAX_LENGTH}` });
  const send = el("button", { type: "submit", id: "chatSend", text: "Send" });
  const error = el("div", { class: "chat-error error", id: "chatError" });
  const form = el("form", { class: "chat-form" }, target, clear, input, send);
  const node = el(
    "section",
    { class: "panel chat-panel", id: "chat" },
    el("h3", { text: "Here" }),
    pilots,
    el("h3", { text: "Comms" }),
    log,
    form,
    el("div", { class: "chat-foot" }, error, count),
  );

  let dm = null; // {player, name} or null (system channel)
  const names = new Map(); // player id -> name (presence, chat)

  function setTarget(t) {
    dm = t;
    target.textContent = t ? `DM → ${t.name}` : "System";
    target.classList.toggle("dm", !!t);
    clear.hidden = !t;
    input.placeholder = t ? `Message ${t.name}…` : "Say something…";
  }
  clear.addEventListener("click", () => setTarget(null));

  function updateCount() {
    const n = textLength(stripControl(input.value));
    count.textContent = `${n}/${CHAT_MAX_LENGTH}`;
    count.classList.toggle("over", n > CHAT_MAX_LENGTH);
  }
  input.addEventListener("input", updateCount);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const prepared = prepareChatText(input.value);
    if (prepared.error) {
      error.textContent = prepared.error === "empty" ? "" : `Message ${prepared.error}.`;
      return;
    }
    const problem = onSend({ to: dm ? dm.player : null, text: prepared.text });
    error.textContent = problem || "";
    if (!problem) {
      input.value = "";
      updateCount();
    }
  });

  let self = null;
  pilots.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-player]");
    if (!b || b.dataset.player === self) return;
    setTarget({ player: b.dataset.player, name: names.get(b.dataset.player) || b.dataset.player });
    input.focus();
  });
  log.addEventListener("click", (ev) => {
    const w = ev.target.closest(".chat-who[data-player]");
    if (!w || !w.dataset.player || w.dataset.player === self) return;
    setTarget({ player: w.dataset.player, name: names.get(w.dataset.player) || w.dataset.player });
  });

  return {
    node,
    setSelf(player) {
      self = player;
    },
    /** pilots: chatLog.parsePresence() */
    setPresence(list) {
      for (const p of list) names.set(p.player, p.name);
      pilots.replaceChildren(...list.map((p) => pilotEntry(document, p, self)));
    },
    /** messages: chatLog.all() */
    setMessages(messages) {
      for (const m of messages) if (m.from && m.name) names.set(m.from, m.name);
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.replaceChildren(...messages.map((m) => chatLine(document, m, self, (id) => names.get(id))));
      if (stick) log.scrollTop = log.scrollHeight;
    },
    setError(text) {
      error.textContent = text || "";
    },
    dmTo(player, name) {
      setTarget({ player, name: name || names.get(player) || player });
    },
  };
}

// Issue 14 additions to the system view, kept out of systemView.js: the station and jump
// points (click one to jump), shots and explosions, chat and presence, and following the ship
// (`jump`, `elsewhere`, closes 4110/4111, the autopilot's `route`).
import { showToast } from "./hud.js";
import { ChatLimiter } from "./chat.js";
import { ChatLog, parseChat, parsePresence } from "./chatLog.js";
import { createChatPanel } from "./chatPanel.js";
import { CombatFx } from "./combatFx.js";
import {
  CHAT,
  ELSEWHERE,
  ERR_ELSEWHERE,
  ERR_NO_LANE,
  ERR_NO_ROUTE,
  ERR_SHIP_BUSY,
  ERR_UNKNOWN_PLAYER,
  JUMP,
  PRESENCE,
  ROUTE,
  SAY,
  TELL,
} from "./gameProtocol.js";
import { ERR_OUT_OF_RANGE, ERR_RATE_LIMITED } from "./protocol.generated.js";
import * as pilot from "./pilot.js";
import { routeSummary, parseRoute } from "./routePlan.js";
import { StationLanes } from "./stationLanes.js";
import hook from "./testHook.js";

export const GAME_ERROR_TEXT = {
  [ERR_NO_LANE]: "No lane leads there from this system.",
  [ERR_SHIP_BUSY]: "Your ship is busy (fighting, destroyed or jumping).",
  [ERR_NO_ROUTE]: "No route leads to that star.",
  [ERR_UNKNOWN_PLAYER]: "No such pilot.",
};
const CHAT_HOOK_KEEP = 50;

// Page level: DMs survive system changes (each is delivered once); the limiter is per player.
const chatLog = new ChatLog();
let chatSystem = null;
const limiter = new ChatLimiter({ now: Date.now() / 1000 });

function plainMessage(m) {
  const { id, channel, from, name, to, text, time, history } = m;
  return { id, channel, from, name, to, text, time, history };
}

export class SystemGame {
  constructor(view) {
    this.view = view;
    this.extras = new StationLanes(view.scene);
    this.fx = new CombatFx(view.scene);
    this.moved = false; // a jump or elsewhere message said where the ship went
    this.chat = createChatPanel({ onSend: (m) => this.send(m) });
    (document.getElementById("hud") || document.body).append(this.chat.node);
    Object.assign(hook, {
      say: (text) => this.say(text),
      tell: (to, text) => this.tell(to, text),
      jump: (to) => this.jump(to),
      engageRoute: (to) => this.route(to),
    });
    this._showChat();
  }

  get conn() {
    return this.view.conn;
  }

  // ---- commands ----

  jump(to) {
    const seq = this.conn.send(JUMP, { to });
    const lane = this.extras.lanes.find((l) => l.id === to);
    showToast(`Jump to ${lane ? lane.name : to}: flying to the jump point.`, 2500);
    return seq;
  }

  route(to) {
    return this.conn.send(ROUTE, { to });
  }

  say(text) {
    return this._chat(SAY, { text });
  }

  tell(to, text) {
    return this._chat(TELL, { to, text });
  }

  /** Panel's send: an error text, or null when sent. */
  send({ to, text }) {
    const r = to ? this.tell(to, text) : this.say(text);
    return typeof r === "number" ? null : r;
  }

  _chat(type, payload) {
    if (!this.conn.joined) return "Not connected.";
    const now = Date.now() / 1000;
    if (!limiter.take(now)) return `Slow down: next message in ${Math.ceil(limiter.wait(now))} s.`;
    const seq = this.conn.sendNow(type, payload);
    return seq === null ? "Not sent (connection busy): try again." : seq;
  }

  // ---- from the connection ----

  onWelcome(w) {
    const sys = w.system || {};
    const id = sys.id || this.view.systemId;
    this.extras.build(sys);
    hook.lanes = this.extras.lanes.map((l) => ({ ...l }));
    hook.station = this.extras.station ? { ...this.extras.station } : null;
    if (this.extras.lanes.length) {
      // the room's jump points (else the list from /api/systems stays)
      this.view.panel.setLanes(this.extras.lanes.map((l) => ({ id: l.id, name: l.name, distance: l.parsecs })));
    }
    this.chat.setSelf(w.player ?? null);
    if (chatSystem !== id) {
      chatLog.clearSystem();
      chatSystem = id;
      this._showChat();
    }
    pilot.shipJoined(id);
    const to = pilot.takeRouteRequest(id);
    if (to) this.route(to);
  }

  /** The room's own message types; true when handled. */
  onMessage(type, seq, p) {
    switch (type) {
      case JUMP:
        this.moved = true;
        hook.lastJump = { ...p };
        pilot.jumped(p);
        return true;
      case ELSEWHERE:
        this.moved = true;
        hook.elsewhere = { ...p };
        if (!pilot.follow(p)) {
          showToast("Your ship is not here, and nobody knows where it is: pick a system.", 5000);
          location.hash = "#/";
        } else if (!p.transit && p.system) {
          showToast(`Your ship is in ${p.system}: going there.`, 3000);
        }
        return true;
      case ROUTE: {
        const r = parseRoute(p);
        hook.route = r;
        if (r) showToast(`Autopilot engaged: ${routeSummary(r)} to ${r.systems.at(-1)}.`, 4000);
        return true;
      }
      case CHAT:
        if (chatLog.add(parseChat(p))) this._showChat();
        return true;
      case PRESENCE: {
        const list = parsePresence(p);
        hook.presence = list;
        this.chat.setPresence(list);
        return true;
      }
      default:
        return false;
    }
  }

  /** Closed with 4110/4111. Without the message that says where: ask /api/player. */
  onMoved() {
    if (!this.moved) pilot.relocate();
  }

  /** An error frame; true when handled here (shown, or nothing to show). */
  onError(e) {
    if (e.code === ERR_ELSEWHERE) return true; // `elsewhere` said it all
    if (GAME_ERROR_TEXT[e.code]) {
      showToast(`Error ${e.code}: ${GAME_ERROR_TEXT[e.code]}`);
      return true;
    }
    if (e.code === ERR_RATE_LIMITED || e.code === ERR_OUT_OF_RANGE) this.chat.setError(e.message || "");
    return false;
  }

  onFrame(events) {
    this.fx.addEvents(events, performance.now() / 1000);
    const c = this.fx.counts;
    hook.shots = c.shots;
    hook.explosions = c.explosions;
  }

  // ---- drawing and input ----

  render(states, nowMs) {
    this.extras.render(nowMs);
    this.fx.render(nowMs / 1000, states);
  }

  placeLabels(labels) {
    this.extras.placeLabels(labels, this.view.canvas);
  }

  /** A click at canvas (x, y): a jump point sends `jump`; true when handled. */
  click(x, y) {
    const lane = this.extras.pick(this.view.canvas, x, y);
    if (!lane) return false;
    this.jump(lane.id);
    return true;
  }

  _showChat() {
    const all = chatLog.all();
    this.chat.setMessages(all);
    hook.chat = all.slice(-CHAT_HOOK_KEEP).map(plainMessage);
  }

  dispose() {
    this.chat.node.remove();
  }
}

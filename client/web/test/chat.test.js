// Run with `npm test`: chat text rules, the chat limiter, the chat log and safe rendering.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ChatLimiter, displayText, prepareChatText, stripControl } from "../src/chat.js";
import { ChatLog, parseChat, parsePresence } from "../src/chatLog.js";
import { chatLine, pilotEntry } from "../src/chatRender.js";

test("prepareChatText strips control characters and whitespace, 1..280 code points", () => {
  assert.deepEqual(prepareChatText("  hello\u0007 world\n "), { text: "hello world" });
  assert.equal(stripControl("a\u0000b\u001bc\u007fd\u0085e"), "abcde");
  assert.equal(prepareChatText(" \t\n").error, "empty");
  assert.equal(prepareChatText("").error, "empty");
  assert.equal(prepareChatText(null).error, "empty");
  assert.deepEqual(prepareChatText("x".repeat(280)), { text: "x".repeat(280) });
  assert.match(prepareChatText("x".repeat(281)).error, /too long/);
  // code points, not UTF-16 units: 280 emoji are fine
  assert.equal(prepareChatText("🚀".repeat(280)).text.length, 560);
  assert.match(prepareChatText("🚀".repeat(281)).error, /281/);
});

test("displayText keeps markup as text but drops control characters and caps the length", () => {
  assert.equal(displayText("<b>hi</b>\u0000"), "<b>hi</b>");
  assert.equal(displayText(42), "");
  assert.equal(displayText("abcdef", 3), "abc…");
});

test("ChatLimiter: burst of 5, then one per 2 s", () => {
  const l = new ChatLimiter({ now: 100 });
  for (let i = 0; i < 5; i++) assert.equal(l.take(100), true, `message ${i}`);
  assert.equal(l.take(100), false);
  assert.equal(l.wait(100), 2);
  assert.equal(l.take(101), false);
  assert.ok(Math.abs(l.wait(101) - 1) < 1e-9);
  assert.equal(l.take(102), true);
  assert.equal(l.take(102.5), false);
  // a long pause refills to the burst, no more
  for (let i = 0; i < 5; i++) assert.equal(l.take(1000), true);
  assert.equal(l.take(1000), false);
});

const msg = (id, channel = "system", extra = {}) => ({ id, channel, from: "u-1", name: "Ada", to: null, text: `m${id}`, time: id, history: false, ...extra });

test("ChatLog dedups by id, keeps DMs across systems, clears the system channel", () => {
  const log = new ChatLog();
  assert.equal(log.add(parseChat(msg(1))), true);
  assert.equal(log.add(parseChat(msg(1))), false); // the same message again (a rejoin's history)
  assert.equal(log.add(parseChat(msg(1, "dm", { to: "u-2" }))), true); // ids are per channel
  assert.equal(log.add(parseChat({ ...msg(3), channel: "bogus" })), false);
  assert.equal(log.add(parseChat({ ...msg(4), text: 5 })), false);
  assert.deepEqual(log.all().map((m) => [m.channel, m.id]), [["system", 1], ["dm", 1]]);
  log.clearSystem();
  assert.deepEqual(log.all().map((m) => m.channel), ["dm"]);
  assert.equal(log.add(parseChat(msg(1))), true); // the next system's history may reuse ids
  for (let i = 10; i < 300; i++) log.add(parseChat(msg(i)));
  assert.equal(log.system.length, 100);
});

test("parsePresence normalises pilots", () => {
  const list = parsePresence({
    system: "sol",
    pilots: [
      { player: "u-1", name: "Ada", ship: 3, status: "docked", combat: true },
      { player: "g-2", name: "", ship: null, status: "weird" },
      { name: "no id" },
    ],
  });
  assert.deepEqual(list, [
    { player: "u-1", name: "Ada", ship: 3, status: "docked", combat: true },
    { player: "g-2", name: "g-2", ship: null, status: "online", combat: false },
  ]);
  assert.deepEqual(parsePresence(null), []);
});

// A fake document: elements record textContent and refuse innerHTML.
class FakeEl {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.dataset = {};
    this.className = "";
    this._text = "";
  }
  set textContent(v) {
    this._text = String(v);
  }
  get textContent() {
    return this._text + this.children.map((c) => c.textContent).join("");
  }
  set innerHTML(v) {
    throw new Error("innerHTML used");
  }
  append(...c) {
    this.children.push(...c);
  }
}
const doc = { createElement: (tag) => new FakeEl(tag) };

test("chat lines and pilot entries are built with textContent", () => {
  const evil = "<img src=x onerror=alert(1)>";
  const line = chatLine(doc, parseChat(msg(7, "system", { name: evil, text: `${evil}\u0000` })), "u-9");
  assert.equal(line.textContent, `${evil}: ${evil}`);
  assert.equal(line.dataset.channel, "system");
  const dmOut = chatLine(doc, parseChat(msg(8, "dm", { from: "u-9", name: "Me", to: "u-2" })), "u-9", () => "Bob");
  assert.equal(dmOut.textContent, "[DM to Bob] m8");
  const dmIn = chatLine(doc, parseChat(msg(9, "dm", { to: "u-9" })), "u-9");
  assert.equal(dmIn.textContent, "[DM from Ada] m9");
  const p = pilotEntry(doc, { player: "u-2", name: evil, status: "held", combat: true }, "u-9");
  assert.equal(p.textContent, `${evil}held⚔`);
  assert.match(p.className, /held/);
});

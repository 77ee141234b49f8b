// The galaxy view's side list: search box, callsign and one link per system
// (`data-system-id`), sorted by distance, with players online.
import { el, fmtPc } from "./hud.js";
import { isValidName } from "./net.js";
import { callsignChosen, getCallsign, setCallsign } from "./callsign.js";

export function createGalaxyList({ onHover, onRetry }) {
  const search = el("input", {
    type: "search",
    id: "systemSearch",
    placeholder: "Search systems…",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "Search systems",
  });
  const callsign = el("input", {
    type: "text",
    id: "callsign",
    value: getCallsign(),
    maxlength: 32,
    "aria-label": "Callsign",
    title: "Your name, shown to other players",
  });
  const callsignLabel = el("label", { class: "callsign" }, "Callsign ", callsign);
  const ask = el("div", { class: "callsign-hint", text: "Welcome, pilot! Pick the callsign others will see, then a system." });
  const firstVisit = !callsignChosen();
  callsignLabel.classList.toggle("ask", firstVisit);
  ask.hidden = !firstVisit;
  callsign.addEventListener("change", () => {
    if (isValidName(callsign.value)) {
      setCallsign(callsign.value.trim(), true);
      callsign.value = callsign.value.trim();
      callsignLabel.classList.remove("ask");
      ask.hidden = true;
    } else {
      callsign.value = getCallsign();
    }
  });
  const count = el("div", { class: "count muted", text: "loading galaxy…" });
  const list = el("ul", { class: "systems", id: "systemList" });
  const node = el(
    "aside",
    { class: "panel galaxy-panel" },
    callsignLabel,
    ask,
    search,
    count,
    list,
  );

  const rows = new Map(); // id -> {li, players, haystack}
  let total = 0;

  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows.values()) {
      const hit = !q || row.haystack.includes(q);
      row.li.hidden = !hit;
      if (hit) shown++;
    }
    count.textContent = q ? `${shown} of ${total} systems` : `${total} systems`;
  }
  search.addEventListener("input", applyFilter);
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    const first = [...rows.values()].find((r) => !r.li.hidden);
    if (first) first.link.click();
  });

  list.addEventListener("pointerover", (ev) => {
    const a = ev.target.closest("[data-system-id]");
    onHover(a ? a.dataset.systemId : null);
  });
  list.addEventListener("pointerleave", () => onHover(null));

  return {
    node,
    setSystems(systems) {
      total = systems.length;
      const sorted = [...systems].sort((a, b) => a.distance - b.distance);
      const fresh = rows.size === 0;
      for (const s of sorted) {
        let row = rows.get(s.id);
        if (!row) {
          const players = el("span", { class: "players" });
          const link = el(
            "a",
            { href: `#/system/${encodeURIComponent(s.id)}`, "data-system-id": s.id, class: "system", role: "button" },
            el("span", { class: "dot", style: `background:${s.color || "#fff"}` }),
            el("span", { class: "name", text: s.name }),
            el("span", { class: "dist", text: fmtPc(s.distance) }),
            players,
          );
          const li = el("li", {}, link);
          row = { li, link, players, haystack: `${s.name} ${s.id}`.toLowerCase() };
          rows.set(s.id, row);
          if (!fresh) list.append(li);
        }
        const n = s.players | 0;
        const text = n ? `${n} online` : "";
        if (row.players.textContent !== text) row.players.textContent = text;
        row.link.classList.toggle("busy", n > 0);
      }
      if (fresh) list.append(...sorted.map((s) => rows.get(s.id).li));
      applyFilter();
    },
    setError(message) {
      count.replaceChildren(
        el("span", { class: "error", text: `Galaxy unavailable: ${message} ` }),
        el("button", { type: "button", text: "Retry", onclick: () => onRetry() }),
      );
    },
  };
}

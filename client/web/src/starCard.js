// The galaxy map's star card (#starCard): a clicked star's name, distance from Sol, colour,
// planets (/api/systems/{id}), players there (/api/galaxy), and the route plotter: "Plot
// route" from the ship's system (/api/route), the path's legs, "Engage autopilot".
import { el, fmtPc } from "./hud.js";

export function createStarCard({ onPlot, onEngage, onView, onClose }) {
  const name = el("h2", { class: "card-name", id: "starName" });
  const facts = el("div", { class: "card-facts", id: "starFacts" });
  const planets = el("div", { class: "card-planets", id: "starPlanets" });
  const players = el("div", { class: "card-players", id: "starPlayers" });
  const route = el("div", { class: "card-route", id: "routeInfo" });
  const plot = el("button", { type: "button", id: "plotRoute", text: "Plot route", onclick: () => onPlot() });
  const engage = el("button", { type: "button", id: "engageRoute", text: "Engage autopilot", disabled: true, onclick: () => onEngage() });
  const view = el("button", { type: "button", id: "viewSystem", text: "View system", onclick: () => onView() });
  const close = el("button", { type: "button", class: "card-close", title: "Close", text: "✕", onclick: () => onClose() });
  const node = el(
    "section",
    { class: "panel star-card", id: "starCard", hidden: true },
    close,
    name,
    facts,
    players,
    planets,
    el("div", { class: "card-buttons" }, plot, engage, view),
    route,
  );
  (document.getElementById("hud") || document.body).append(node);

  return {
    node,
    /** s: a /api/galaxy system */
    show(s) {
      node.hidden = false;
      name.textContent = s.name;
      name.style.setProperty("--star", s.color || "#fff");
      const bv = Number.isFinite(+s.bv) && s.bv !== null ? ` · B-V ${(+s.bv).toFixed(2)}` : "";
      facts.textContent = `${s.id === "sol" ? "home" : `${fmtPc(s.distance)} from Sol`} · colour ${s.color || "?"}${bv}`;
      players.textContent = s.players ? `${s.players} pilot${s.players === 1 ? "" : "s"} here` : "no pilots here";
      planets.textContent = "planets: loading…";
      route.replaceChildren();
      engage.disabled = true;
    },
    setPlanets(list, error) {
      if (error) planets.textContent = `planets: ${error}`;
      else if (!list.length) planets.textContent = "no planets";
      else planets.textContent = `${list.length} planet${list.length === 1 ? "" : "s"}: ${list.map((p) => p.name).join(", ")}`;
    },
    /** text: summary line; legs: [{name, parsecs}] ; canEngage: the autopilot can fly it */
    setRoute(text, legs = [], canEngage = false, error = false) {
      const head = el("div", { class: error ? "route-summary error" : "route-summary", text });
      const list = el(
        "ol",
        { class: "route-legs", id: "routeLegs" },
        ...legs.map((l) => el("li", { text: `${l.name}${l.parsecs == null ? "" : ` · ${l.parsecs.toFixed(2)} pc`}` })),
      );
      route.replaceChildren(head, list);
      engage.disabled = !canEngage;
    },
    hide() {
      node.hidden = true;
    },
    dispose() {
      node.remove();
    },
  };
}

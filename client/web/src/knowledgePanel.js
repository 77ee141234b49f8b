// The Knowledge tab: the pilot's Knowledge Graph (`GET /api/me/graph`). The graph drawing is
// the `knowledge` work's `graph.js` (`renderGraph(element, fragments)`); it is plugged in with
// `setKnowledgeRenderer(renderGraph)` (main.js, at merge). Until a renderer is set, the tab
// lists the fragments as text: subject —predicate→ object, newest first.
import { el } from "./hud.js";

let renderer = null;

/**
 * Draw the Knowledge Graph with `fn(element, fragments)` from now on (`fragments`: the
 * `/api/me/graph` list [{subject, predicate, object, time, scan}]); null: back to the list.
 */
export function setKnowledgeRenderer(fn) {
  renderer = typeof fn === "function" ? fn : null;
}

/** `onRefresh()` asks for the graph again. */
export function createKnowledgePanel({ onRefresh }) {
  const count = el("span", { class: "muted", id: "graphCount", text: "" });
  const refresh = el("button", { type: "button", text: "Refresh", onclick: () => onRefresh() });
  const mount = el("div", { class: "graph-mount", id: "knowledgeGraph" });
  const node = el("div", { class: "eco-body knowledge-tab" }, el("div", { class: "eco-row" }, count, refresh), mount);
  return {
    node,
    /** `answer`: {fragments, count} from /api/me/graph, or an error text. */
    set(answer) {
      if (typeof answer === "string") {
        count.textContent = answer;
        return;
      }
      const fragments = Array.isArray(answer && answer.fragments) ? answer.fragments : [];
      const n = Number.isSafeInteger(answer && answer.count) ? answer.count : fragments.length;
      count.textContent = `${n} fragment${n === 1 ? "" : "s"} discovered`;
      if (renderer) {
        mount.replaceChildren();
        renderer(mount, fragments);
        return;
      }
      const sorted = [...fragments].sort((a, b) => (b.time || 0) - (a.time || 0));
      mount.replaceChildren(
        el("ul", { class: "fragments" }, ...sorted.slice(0, 200).map((f) => el("li", { class: "fragment", text: `${f.subject} —${f.predicate}→ ${f.object}` }))),
      );
      if (!fragments.length) mount.append(el("p", { class: "muted", text: "Scan planets, fields and anomalies to grow your graph." }));
    },
  };
}

// A pilot's Knowledge Graph, drawn (docs/protocol.md "Knowledge Graph HTTP"; the fragments are
// what GET /api/me/graph answers). Exports:
//
// layoutGraph(fragments) -> {nodes: [{id, type, label, x, y}], edges: [{from, to, predicate}]}
//   A pure, deterministic radial layout. `fragments`: items {subject, predicate, object} (the
//   API's shape; extra keys ignored) or [subject, predicate, object] arrays; subject and object
//   are "type:id" strings. Items that are not three strings, with an empty predicate, or with a
//   node lacking a non-empty "type:" prefix are skipped; a fragment given twice gives one edge.
//   Nodes: `id` the node string, `type` the part before the first ":", `label` the part after
//   it. Layout: one ring per type, centred on (0, 0), the types with the fewest nodes innermost
//   (ties by type name; a lone node on the innermost ring sits at the centre). A ring's radius
//   is RING_GAP units more than the ring inside it, or more if needed to leave NODE_SPACING
//   units between its nodes. Around its ring, nodes go by increasing mean angle (0 to 2 pi) of
//   their neighbours on the nearest inner ring holding any (so planets sit next to their star,
//   and stars are grouped by spectral class); nodes without such neighbours come last; ties go
//   by id. The same fragments in any order give the same nodes and positions. Nodes come out
//   ring by ring (innermost first), edges in first-seen order. Coordinates are abstract units,
//   x right and y down; renderGraph fits them to its element.
//
// renderGraph(element, fragments, {labels} = {}) -> the layout
//   Replaces the content of DOM `element` by one <svg> (width and height 100%, a viewBox around
//   the layout with a margin, a <title> with the counts): a <g class="edges"> of <line>s, each
//   coloured by predicate (predicateColor) with a data-predicate attribute, then a
//   <g class="nodes"> with one <g data-id="<node id>"> per node: a <circle> coloured by type
//   (typeColor; larger for types with fewer than 20 nodes) holding a <title> tooltip
//   ("type: label"), and a <text> label if labelled. `labels`: true, false, or "auto" (the
//   default): every node when there are at most LABEL_LIMIT nodes, else only the nodes of types
//   with fewer than 20 nodes. Dots, strokes and text grow with the layout so that they keep
//   their size on screen. Uses only createElementNS, setAttribute, appendChild,
//   replaceChildren and textContent of the DOM (element.ownerDocument).
//
// typeColor(type), predicateColor(predicate) -> CSS colour strings (fixed for the game's types
// and predicates, a stable pick from a palette for others); NODE_SPACING, RING_GAP, LABEL_LIMIT.

export const NODE_SPACING = 28;
export const RING_GAP = 90;
export const LABEL_LIMIT = 150;
const SVG = "http://www.w3.org/2000/svg";
const TYPE_COLORS = { star: "#ffd36b", planet: "#6bb7ff", resource: "#7dffb0", kind: "#c58bff", class: "#ff8b8b" };
const PREDICATE_COLORS = { orbits: "#56607a", holds: "#3f8f66", is: "#7a5aa8", has_class: "#a85a5a" };
const FALLBACK = ["#e0a458", "#58c4e0", "#e058b8", "#a4e058", "#e05858", "#5878e0"];

function hashIndex(text, n) {
  let h = 2166136261; // FNV-1a: stable colours for types and predicates the table lacks
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h % n;
}

/** The colour of nodes of `type` (a CSS colour string). */
export function typeColor(type) {
  return TYPE_COLORS[type] ?? FALLBACK[hashIndex(type, FALLBACK.length)];
}

/** The colour of edges of `predicate` (a CSS colour string). */
export function predicateColor(predicate) {
  return PREDICATE_COLORS[predicate] ?? FALLBACK[hashIndex(predicate, FALLBACK.length)];
}

function triple(item) {
  const t = Array.isArray(item) ? item : item && [item.subject, item.predicate, item.object];
  if (!t || t.length !== 3 || !t.every((x) => typeof x === "string")) return null;
  if (t[0].indexOf(":") < 1 || t[2].indexOf(":") < 1 || !t[1]) return null;
  return t;
}

const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

export function layoutGraph(fragments) {
  const edges = [];
  const seen = new Set();
  const neighbours = new Map(); // node id -> Set of node ids
  for (const item of fragments ?? []) {
    const t = triple(item);
    if (!t) continue;
    const [from, predicate, to] = t;
    const key = `${from}|${predicate}|${to}`;
    if (seen.has(key)) continue;
    seen.add(key);
    edges.push({ from, to, predicate });
    for (const [a, b] of [[from, to], [to, from]]) {
      if (!neighbours.has(a)) neighbours.set(a, new Set());
      neighbours.get(a).add(b);
    }
  }
  const byType = new Map();
  for (const id of [...neighbours.keys()].sort(byText)) {
    const type = id.slice(0, id.indexOf(":"));
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(id);
  }
  const rings = [...byType.entries()].sort((a, b) => a[1].length - b[1].length || byText(a[0], b[0]));
  const angle = new Map(); // placed node id -> angle (radians)
  const ringOf = new Map(); // placed node id -> ring index
  const nodes = [];
  let radius = 0;
  rings.forEach(([type, ids], ring) => {
    const mean = (id) => {
      // The mean angle of the neighbours on the nearest inner ring that holds any of them.
      let best = -1, sx = 0, sy = 0;
      for (const other of neighbours.get(id)) {
        const r = ringOf.get(other);
        if (r === undefined || !angle.has(other) || r < best) continue;
        if (r > best) { best = r; sx = 0; sy = 0; }
        sx += Math.cos(angle.get(other));
        sy += Math.sin(angle.get(other));
      }
      if (best < 0 || (Math.abs(sx) < 1e-9 && Math.abs(sy) < 1e-9)) return Infinity; // no direction
      const a = Math.atan2(sy, sx);
      return a < 0 ? a + 2 * Math.PI : a;
    };
    const order = ids.map((id) => [mean(id), id]).sort((a, b) => a[0] - b[0] || byText(a[1], b[1]));
    const centre = ring === 0 && ids.length === 1;
    if (!centre) radius = Math.max(radius + RING_GAP, (ids.length * NODE_SPACING) / (2 * Math.PI));
    order.forEach(([, id], i) => {
      const a = (2 * Math.PI * i) / ids.length;
      ringOf.set(id, ring);
      if (!centre) angle.set(id, a); // the centre gives its neighbours no direction
      const x = centre ? 0 : radius * Math.cos(a);
      const y = centre ? 0 : radius * Math.sin(a);
      nodes.push({ id, type, label: id.slice(type.length + 1), x: round(x), y: round(y) });
    });
  });
  return { nodes, edges };
}

function round(v) {
  return Math.round(v * 1000) / 1000 + 0; // + 0: no -0
}

function el(doc, name, attrs, text) {
  const node = doc.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function renderGraph(element, fragments, { labels = "auto" } = {}) {
  const layout = layoutGraph(fragments);
  const doc = element.ownerDocument;
  const at = new Map(layout.nodes.map((n) => [n.id, n]));
  const extent = Math.max(RING_GAP, ...layout.nodes.map((n) => Math.max(Math.abs(n.x), Math.abs(n.y)))) + 60;
  const svg = el(doc, "svg", { viewBox: `${-extent} ${-extent} ${2 * extent} ${2 * extent}`, width: "100%",
    height: "100%", class: "knowledge-graph", role: "img" });
  svg.appendChild(el(doc, "title", {}, `Knowledge Graph: ${layout.nodes.length} nodes, ${layout.edges.length} facts`));
  const edgeLayer = el(doc, "g", { class: "edges", "stroke-width": 1.2 * Math.max(1, extent / 500) });
  for (const e of layout.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    edgeLayer.appendChild(el(doc, "line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, stroke: predicateColor(e.predicate),
      "data-predicate": e.predicate }));
  }
  svg.appendChild(edgeLayer);
  const scale = Math.max(1, extent / 500); // text and dots keep their size on screen in big graphs
  const counts = new Map();
  for (const n of layout.nodes) counts.set(n.type, (counts.get(n.type) ?? 0) + 1);
  const labelled = (n) => labels === true || (labels === "auto" && (layout.nodes.length <= LABEL_LIMIT || counts.get(n.type) < 20));
  const nodeLayer = el(doc, "g", { class: "nodes" });
  for (const n of layout.nodes) {
    const group = el(doc, "g", { "data-id": n.id });
    const circle = el(doc, "circle", { cx: n.x, cy: n.y, r: (counts.get(n.type) < 20 ? 9 : 6) * scale, fill: typeColor(n.type) });
    circle.appendChild(el(doc, "title", {}, `${n.type}: ${n.label}`));
    group.appendChild(circle);
    if (labelled(n)) {
      group.appendChild(el(doc, "text", { x: n.x + 11 * scale, y: n.y + 4 * scale, "font-size": 11 * scale, fill: "#d8dcea" }, n.label));
    }
    nodeLayer.appendChild(group);
  }
  svg.appendChild(nodeLayer);
  element.replaceChildren(svg);
  return layout;
}

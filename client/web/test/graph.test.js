// Run with `npm test`: the Knowledge Graph's layout and its SVG renderer (src/graph.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { layoutGraph, NODE_SPACING, predicateColor, RING_GAP, renderGraph, typeColor } from "../src/graph.js";

// What GET /api/me/graph answers for two scans of Sol's planets.
const SOL = [
  { subject: "planet:sol/3", predicate: "orbits", object: "star:sol", time: 1, scan: "planet:sol/3" },
  { subject: "planet:sol/3", predicate: "is", object: "kind:temperate", time: 1, scan: "planet:sol/3" },
  { subject: "star:sol", predicate: "has_class", object: "class:G", time: 1, scan: "planet:sol/3" },
  { subject: "planet:sol/3", predicate: "holds", object: "resource:ice", time: 1, scan: "planet:sol/3" },
  { subject: "planet:sol/5", predicate: "orbits", object: "star:sol", time: 2, scan: "planet:sol/5" },
  { subject: "planet:sol/5", predicate: "is", object: "kind:gas giant", time: 2, scan: "planet:sol/5" },
  { subject: "planet:sol/5", predicate: "holds", object: "resource:helium3", time: 2, scan: "planet:sol/5" },
  { subject: "planet:sol/5", predicate: "holds", object: "resource:ice", time: 2, scan: "planet:sol/5" },
];

const dist = (n) => Math.hypot(n.x, n.y);

test("nodes by type, edges by predicate", () => {
  const { nodes, edges } = layoutGraph(SOL);
  assert.equal(edges.length, 8);
  assert.deepEqual(edges[0], { from: "planet:sol/3", to: "star:sol", predicate: "orbits" });
  const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
  assert.deepEqual(Object.keys(byId).sort(), ["class:G", "kind:gas giant", "kind:temperate", "planet:sol/3",
    "planet:sol/5", "resource:helium3", "resource:ice", "star:sol"]);
  assert.deepEqual({ type: byId["kind:gas giant"].type, label: byId["kind:gas giant"].label }, { type: "kind", label: "gas giant" });
  assert.equal(byId["planet:sol/3"].label, "sol/3");
  // Rings: the fewest nodes innermost (class then star: one node each, by name: class at the centre).
  assert.deepEqual([byId["class:G"].x, byId["class:G"].y], [0, 0]);
  assert.equal(dist(byId["star:sol"]), RING_GAP);
  const ring = (type) => new Set(nodes.filter((n) => n.type === type).map((n) => Math.round(dist(n))));
  for (const type of ["kind", "planet", "resource"]) assert.equal(ring(type).size, 1, type); // one radius per type
  assert.ok([...ring("kind")][0] > RING_GAP && [...ring("planet")][0] > [...ring("kind")][0]);
  assert.ok([...ring("resource")][0] > [...ring("planet")][0]);
});

test("deterministic: the same fragments in any order, as objects or arrays, give the same positions", () => {
  const a = layoutGraph(SOL);
  const arrays = [...SOL].reverse().map((f) => [f.subject, f.predicate, f.object]);
  const b = layoutGraph([...arrays, arrays[0]]); // a duplicate adds no edge
  assert.deepEqual(a.nodes, b.nodes);
  assert.equal(b.edges.length, a.edges.length);
  assert.deepEqual(layoutGraph(SOL), a);
});

test("bad items are skipped; empty input gives an empty graph", () => {
  assert.deepEqual(layoutGraph([]), { nodes: [], edges: [] });
  assert.deepEqual(layoutGraph(undefined), { nodes: [], edges: [] });
  const { nodes, edges } = layoutGraph([null, 7, ["a:1", "p"], ["a:1", "p", 3], ["nocolon", "p", "b:2"],
    [":x", "p", "b:2"], { subject: "a:1", predicate: "", object: "b:2" }, ["a:1", "p", "b:2"]]);
  assert.deepEqual(edges, [{ from: "a:1", to: "b:2", predicate: "p" }]);
  assert.deepEqual(nodes.map((n) => n.id), ["a:1", "b:2"]);
});

test("a large graph: neighbours stay spaced and planets sit near their star", () => {
  const fragments = [];
  for (let s = 0; s < 40; s++) {
    for (let p = 1; p <= 5; p++) {
      fragments.push([`planet:s${s}/${p}`, "orbits", `star:s${s}`], [`planet:s${s}/${p}`, "holds", `resource:r${(s + p) % 6}`]);
    }
  }
  const { nodes } = layoutGraph(fragments);
  assert.equal(nodes.length, 40 + 200 + 6);
  const planets = nodes.filter((n) => n.type === "planet");
  const r = dist(planets[0]);
  assert.ok(r >= (200 * NODE_SPACING) / (2 * Math.PI) - 1e-6);
  const angle = (n) => Math.atan2(n.y, n.x);
  const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
  let near = 0;
  for (const planet of planets) {
    const star = byId[planet.id.replace("planet:", "star:").replace(/\/\d+$/, "")];
    let d = Math.abs(angle(planet) - angle(star));
    d = Math.min(d, 2 * Math.PI - d);
    if (d < Math.PI / 4) near++;
  }
  assert.ok(near / planets.length > 0.9, `${near} of ${planets.length} planets within 45 degrees of their star`);
  for (const n of nodes) assert.ok(Number.isFinite(n.x) && Number.isFinite(n.y));
});

test("colours: known types and predicates, stable fallbacks", () => {
  assert.equal(typeColor("star"), "#ffd36b");
  assert.equal(predicateColor("holds"), "#3f8f66");
  assert.equal(typeColor("wormhole"), typeColor("wormhole"));
  assert.match(predicateColor("links"), /^#[0-9a-f]{6}$/);
});

// A minimal DOM: what renderGraph uses (createElementNS, setAttribute, appendChild,
// replaceChildren, textContent).
class FakeNode {
  constructor(ns, name, doc) {
    Object.assign(this, { ns, name, ownerDocument: doc, attributes: {}, children: [], textContent: "" });
  }
  setAttribute(k, v) { this.attributes[k] = v; }
  appendChild(c) { this.children.push(c); return c; }
  replaceChildren(...c) { this.children = c; }
  all(name) {
    return this.children.flatMap((c) => [...(c.name === name ? [c] : []), ...c.all(name)]);
  }
}
const fakeDocument = () => {
  const doc = { createElementNS: (ns, name) => new FakeNode(ns, name, doc) };
  return doc;
};

test("renderGraph draws an svg of the layout into the element", () => {
  const doc = fakeDocument();
  const panel = new FakeNode(null, "div", doc);
  panel.appendChild(new FakeNode(null, "p", doc)); // replaced
  const layout = renderGraph(panel, SOL);
  assert.equal(panel.children.length, 1);
  const svg = panel.children[0];
  assert.equal(svg.name, "svg");
  assert.equal(svg.ns, "http://www.w3.org/2000/svg");
  const [x, y, w, h] = svg.attributes.viewBox.split(" ").map(Number);
  for (const n of layout.nodes) assert.ok(n.x > x && n.x < x + w && n.y > y && n.y < y + h);
  const circles = svg.all("circle");
  assert.equal(circles.length, layout.nodes.length);
  assert.equal(svg.all("line").length, layout.edges.length);
  const star = layout.nodes.find((n) => n.id === "star:sol");
  const circle = circles.find((c) => c.attributes.cx === String(star.x) && c.attributes.cy === String(star.y));
  assert.equal(circle.attributes.fill, typeColor("star"));
  assert.equal(circle.children[0].textContent, "star: sol");
  assert.deepEqual(svg.all("text").map((t) => t.textContent).sort(),
    layout.nodes.map((n) => n.label).sort()); // small graph: every node labelled
  assert.equal(svg.all("line").filter((l) => l.attributes["data-predicate"] === "holds").length, 3);
  renderGraph(panel, SOL, { labels: false });
  assert.equal(panel.children[0].all("text").length, 0);
});

test("renderGraph of nothing draws an empty svg", () => {
  const doc = fakeDocument();
  const panel = new FakeNode(null, "div", doc);
  assert.deepEqual(renderGraph(panel, []), { nodes: [], edges: [] });
  assert.equal(panel.children[0].all("circle").length, 0);
});

// Label decluttering (pure): given candidate labels with their screen boxes, keep the most
// important ones that do not overlap a label already kept. Used by the galaxy map, where the
// named stars around Sol pile up on top of each other.

/** Rough box of a label: width from its text length (CSS px at ~11-12 px font). */
export function labelBox(x, y, text, { charWidth = 6.6, pad = 8, height = 15, lift = 18 } = {}) {
  const w = text.length * charWidth + pad;
  // labels are centred horizontally above their anchor (style.css .label)
  return { x: x - w / 2, y: y - lift, w, h: height };
}

export function overlaps(a, b, margin = 2) {
  return a.x < b.x + b.w + margin && b.x < a.x + a.w + margin && a.y < b.y + b.h + margin && b.y < a.y + a.h + margin;
}

/**
 * `items`: [{key, box: {x, y, w, h}, priority}] (higher priority wins; ties: earlier in the
 * list). Returns the Set of keys to show: greedy, in priority order, a label is kept when it
 * overlaps none kept before it. Items with `force` are always kept (and block others).
 */
export function declutter(items, margin = 2) {
  const order = items
    .map((it, i) => ({ it, i }))
    .sort((a, b) => (b.it.force ? 1 : 0) - (a.it.force ? 1 : 0) || b.it.priority - a.it.priority || a.i - b.i);
  const kept = [];
  const keys = new Set();
  for (const { it } of order) {
    if (!it.force && kept.some((k) => overlaps(k, it.box, margin))) continue;
    kept.push(it.box);
    keys.add(it.key);
  }
  return keys;
}

/**
 * Priority of a star's label: Sol first, then brighter (lower apparent magnitude) and closer
 * stars. `s`: a /api/galaxy system.
 */
export function starPriority(s) {
  if (s.id === "sol") return 1e6;
  const mag = Number.isFinite(+s.magnitude) && s.magnitude !== null ? +s.magnitude : 12;
  const dist = Number.isFinite(+s.distance) ? +s.distance : 100;
  return 100 - mag * 4 - dist;
}

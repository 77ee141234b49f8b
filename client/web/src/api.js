// Same-origin HTTP API: GET /api/galaxy and GET /api/systems/{id}.
const GALAXY_TTL_MS = 10000;
let galaxy = null; // {data, at}
let galaxyPending = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJson(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

/** The galaxy (cached for a few seconds; `force` refetches). */
export async function fetchGalaxy({ force = false } = {}) {
  if (!force && galaxy && performance.now() - galaxy.at < GALAXY_TTL_MS) return galaxy.data;
  if (!galaxyPending) {
    galaxyPending = getJson("/api/galaxy")
      .then((data) => {
        galaxy = { data, at: performance.now() };
        return data;
      })
      .finally(() => {
        galaxyPending = null;
      });
  }
  return galaxyPending;
}

/** Last galaxy fetched, or null (no request). */
export function cachedGalaxy() {
  return galaxy ? galaxy.data : null;
}

export function fetchSystem(id) {
  return getJson(`/api/systems/${encodeURIComponent(id)}`);
}

/** GET /api/route?from=&to= -> {systems, parsecs} (docs/protocol.md §1). */
export function fetchRoute(from, to) {
  return getJson(`/api/route?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
}

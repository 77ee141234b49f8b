// Where the player's ship is: GET /api/auth/me (player id), then GET /api/player/{id}
// (docs/protocol.md §10: {player, name, system, transit, hull, hp, max_hp, online}; 404 for a pilot who
// never flew). Both with the token (it wakes a sleeping pilot).

/** Resolves the player's record, null for a pilot who never flew (404); throws otherwise. */
export async function locateShip(token, { fetch = globalThis.fetch?.bind(globalThis) } = {}) {
  if (!token) return null;
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  const me = await getJson(fetch, "/api/auth/me", headers);
  if (!me || typeof me.player !== "string" || !me.player) throw new Error("malformed /api/auth/me answer");
  const res = await fetch(`/api/player/${encodeURIComponent(me.player)}`, { headers });
  if (res.status === 404) return null;
  const body = await readJson(res);
  if (!res.ok) throw new Error((body && body.error) || `player: ${res.status}`);
  return {
    player: me.player,
    system: body && typeof body.system === "string" ? body.system : null,
    transit: body && body.transit && typeof body.transit === "object" ? body.transit : null,
    hp: body ? body.hp : null,
    maxHp: body ? body.max_hp : null,
  };
}

async function readJson(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

async function getJson(fetch, url, headers) {
  const res = await fetch(url, { headers });
  const body = await readJson(res);
  if (!res.ok) {
    const err = new Error((body && body.error) || `${url}: ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

// The page's login, shared by every view: a guest token (auth.js) until the player logs in
// to an account (accounts.js); the name its ships join with.
import { GuestAuth } from "./auth.js";
import { getCallsign } from "./callsign.js";

export const auth = new GuestAuth({ getName: getCallsign });

/** The current token answer without logging in ({token, player, name, kind}), or null. */
export function currentSession() {
  return auth.current();
}

/** The name to join with: an account's display name, else the callsign. */
export function displayName() {
  const s = auth.current();
  return s && s.kind === "user" && s.name ? s.name : getCallsign();
}

// The player's display name, kept in localStorage ("starhold.name"). It names the guest
// login (POST /api/auth/guest) and is sent in every join. A first visit gets a generated
// "Pilot-NNNN" until the player picks one in the galaxy panel's callsign field.
const KEY = "starhold.name";
const CHOSEN = "starhold.nameChosen";

/** Whether the player has picked a callsign (else the galaxy panel asks for one). */
export function callsignChosen() {
  try {
    return localStorage.getItem(CHOSEN) === "1";
  } catch {
    return true; // storage disabled: do not nag
  }
}

export function getCallsign() {
  let name = null;
  try {
    name = localStorage.getItem(KEY);
  } catch {
    /* storage disabled */
  }
  if (!name) {
    name = `Pilot-${Math.floor(1000 + Math.random() * 9000)}`;
    setCallsign(name);
  }
  return name;
}

/** Store `name`; `chosen`: the player typed it (not the generated default). */
export function setCallsign(name, chosen = false) {
  try {
    localStorage.setItem(KEY, name);
    if (chosen) localStorage.setItem(CHOSEN, "1");
  } catch {
    /* storage disabled */
  }
}

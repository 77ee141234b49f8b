// The player's display name, kept in localStorage ("starhold.name").
const KEY = "starhold.name";

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

export function setCallsign(name) {
  try {
    localStorage.setItem(KEY, name);
  } catch {
    /* storage disabled */
  }
}

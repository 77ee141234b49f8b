// The account widget in the top bar (#account): who is playing (a guest callsign or an
// account), "Log in" opening a form (#loginForm: log in or register), "Log out" (back to a
// guest). `onChange()` runs after every login or logout (the pilot changed).
import { submitAccount } from "./accounts.js";
import { getCallsign } from "./callsign.js";
import { el, mountTopbar } from "./hud.js";
import { auth } from "./session.js";
import hook from "./testHook.js";

export function createAccountPanel({ onChange }) {
  const who = el("span", { class: "account-name", id: "accountName" });
  const open = el("button", { type: "button", id: "loginOpen", text: "Log in" });
  const logout = el("button", { type: "button", id: "logout", text: "Log out", hidden: true });
  const widget = el("span", { class: "account", id: "account" }, who, open, logout);

  const username = el("input", { type: "text", id: "loginUsername", autocomplete: "username", maxlength: 32, "aria-label": "Username" });
  const password = el("input", { type: "password", id: "loginPassword", autocomplete: "current-password", "aria-label": "Password" });
  const name = el("input", { type: "text", id: "loginName", maxlength: 32, placeholder: "optional", "aria-label": "Display name" });
  const error = el("div", { class: "error login-error", id: "loginError", role: "alert" });
  const login = el("button", { type: "submit", id: "loginSubmit", text: "Log in" });
  const register = el("button", { type: "button", id: "registerSubmit", text: "Register" });
  const cancel = el("button", { type: "button", class: "login-cancel", text: "Cancel" });
  const form = el(
    "form",
    { class: "panel login-form", id: "loginForm", hidden: true },
    el("h2", { text: "Pilot account" }),
    el("label", {}, "Username ", username),
    el("label", {}, "Password ", password),
    el("label", {}, "Display name (register) ", name),
    error,
    el("div", { class: "login-buttons" }, login, register, cancel),
    el("p", { class: "hint", text: "An account keeps your ship between visits and devices. Guests get a new ship per login." }),
  );

  function paint() {
    const s = auth.current();
    const user = s && s.kind === "user";
    who.textContent = user ? s.name : `Guest · ${s && s.name ? s.name : getCallsign()}`;
    who.classList.toggle("user", !!user);
    open.hidden = !!user;
    logout.hidden = !user;
    hook.account = s ? { kind: s.kind, player: s.player, name: s.name } : null;
  }

  function show(on) {
    form.hidden = !on;
    error.textContent = "";
    if (on) username.focus();
  }

  let busy = false;
  async function submit(kind) {
    if (busy) return;
    busy = true;
    login.disabled = register.disabled = true;
    error.textContent = kind === "register" ? "Registering…" : "Logging in…";
    const fields = { username: username.value.trim(), password: password.value, name: name.value };
    const result = await submitAccount(kind, fields);
    busy = false;
    login.disabled = register.disabled = false;
    if (result.error) {
      error.textContent = result.error;
      hook.loginError = { status: result.status, message: result.error };
      return;
    }
    hook.loginError = null;
    auth.adopt(result.session);
    password.value = "";
    show(false);
    paint();
    onChange();
  }

  open.addEventListener("click", () => show(form.hidden));
  cancel.addEventListener("click", () => show(false));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit("login");
  });
  register.addEventListener("click", () => submit("register"));
  logout.addEventListener("click", () => {
    auth.logout();
    paint();
    onChange();
  });
  window.addEventListener("storage", (ev) => ev.key === "starhold.auth" && paint()); // another tab

  mountTopbar(widget);
  (document.getElementById("hud") || document.body).append(form);
  hook.loginError = null;
  paint();
  return { paint };
}

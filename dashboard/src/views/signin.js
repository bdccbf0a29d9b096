// Signing in with an API key of the org: its id and secret stay in this browser, which signs
// short-lived tokens with them. The key is tried on `GET /machines` before it is kept: a key
// the server refuses is refused here with the server's words; a key that is valid but may not
// list machines (a production key) is kept, and each page says what it cannot do.

import { Api } from "../api.js";
import { card, field, h, replace } from "../dom.js";
import { DEFAULT_ACT, Session, cryptoMissing } from "../session.js";
import { errorBox } from "../ui.js";

export function signIn({ base, onSignedIn }) {
  const missing = cryptoMissing();
  if (missing) return card("Sign in", errorBox({ message: missing }));
  const keyId = h("input", { name: "keyId", autocomplete: "username", placeholder: "sbk_…", required: true, spellcheck: false });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "current-password", placeholder: "sbsec_…", required: true });
  const act = h("textarea", { name: "act", rows: 2, spellcheck: false, class: "code" });
  act.value = JSON.stringify(DEFAULT_ACT);
  const remember = h("input", { type: "checkbox", name: "remember" });
  const out = h("div", { class: "outcome", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");

  async function onsubmit(e) {
    e.preventDefault();
    let parsedAct;
    try {
      parsedAct = JSON.parse(act.value.trim() || "{}");
      if (!parsedAct || typeof parsedAct !== "object" || Array.isArray(parsedAct)) throw new Error("it must be a JSON object");
    } catch (err) {
      replace(out, errorBox({ message: `The auth context is not a JSON object: ${err.message}` }));
      return;
    }
    const made = new Session({ keyId: keyId.value.trim(), secret: secret.value.trim(), act: parsedAct, remember: remember.checked });
    submit.disabled = true;
    replace(out, h("span", { class: "muted", role: "status" }, "Checking the key…"));
    try {
      await new Api(made, base).get("machines");
    } catch (err) {
      if (err.code !== "missing-scope") {
        replace(out, errorBox(err, "The server refused this key"));
        submit.disabled = false;
        return;
      }
    }
    made.save();
    onSignedIn(made);
  }

  return h("div", { class: "signin" },
    card("Sign in with an API key",
      h("form", { onsubmit, class: "stack" },
        field("Key id", keyId),
        field("Secret", secret, "Used in this browser to sign short-lived tokens; only the tokens are sent, and only to this server."),
        field("Act as", act, "The auth context (the token's act claim) that the machines' allowRead and allowWrite see."),
        h("label", { class: "check" }, remember, " Remember on this device (keeps the secret in this browser's localStorage; otherwise it is forgotten when the tab closes)"),
        h("div", { class: "row" }, submit), out)),
    h("p", { class: "muted small" }, "Make a key with ", h("code", null, "backstate keys create --org org_… --name web --use admin"),
      " (or --use ci to deploy, --use production for events and reads)."));
}

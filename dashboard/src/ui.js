// Pieces the pages share: error boxes in words, confirmations, JSON inputs, small tables.

import { h, replace } from "./dom.js";

// Machine and instance names, as an <input pattern> (the `v` flag wants the dash escaped).
export const SLUG_PATTERN = "[A-Za-z0-9_\\-]{1,128}";

// The server's own words, and what we were doing: "Could not list machines: this key lacks
// the machines.read scope (403 missing-scope)".
export function errorBox(err, doing) {
  const words = err && err.words ? err.words : String(err && err.message ? err.message : err);
  return h("div", { class: "error", role: "alert" }, doing ? h("strong", null, `${doing}: `) : null, words);
}

export function note(text) {
  return h("p", { class: "note" }, text);
}

// Runs `work` for a button, disabling it meanwhile and showing the outcome in `out`.
export async function act(button, out, doing, work) {
  button.disabled = true;
  replace(out, h("span", { class: "muted", role: "status" }, `${doing}…`));
  try {
    const done = await work();
    replace(out, done ? h("span", { class: "ok", role: "status" }, done) : "");
    return true;
  } catch (err) {
    replace(out, errorBox(err, `Could not ${doing.toLowerCase()}`));
    return false;
  } finally {
    button.disabled = false;
  }
}

// "Delete…" -> type the name -> "Delete forever", as smply asks for the name again.
export function dangerZone({ what, name, onConfirm }) {
  const out = h("div", { class: "outcome" });
  const input = h("input", { type: "text", autocomplete: "off", spellcheck: false, "aria-label": `type ${name} to confirm` });
  const confirm = h("button", { class: "danger", disabled: true }, "Delete forever");
  input.addEventListener("input", () => { confirm.disabled = input.value !== name; });
  confirm.addEventListener("click", () => act(confirm, out, `Delete ${what}`, onConfirm));
  const form = h("div", { class: "danger-form", hidden: true },
    h("p", null, `This deletes ${what} `, h("code", null, name), " and everything in it, forever. Type its name to confirm:"),
    h("div", { class: "row" }, input, confirm), out);
  const open = h("button", { class: "danger subtle", onclick: () => { form.hidden = false; open.hidden = true; input.focus(); } }, `Delete ${what}…`);
  return h("div", { class: "danger-zone" }, open, form);
}

// A textarea whose value must be JSON (or empty, when `optional`).
export function jsonInput({ value = "", rows = 4, placeholder = "", label }) {
  const area = h("textarea", { rows, spellcheck: false, placeholder, class: "code" });
  area.value = value;
  area.readJson = (optional = true) => {
    const text = area.value.trim();
    if (!text) {
      if (optional) return undefined;
      throw new Error(`${label || "the field"} is empty`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`${label || "the field"} is not valid JSON: ${err.message}`);
    }
  };
  return area;
}

export function table(headers, rows, { empty = "Nothing yet.", className = "" } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", { class: className },
    h("thead", null, h("tr", null, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", null, rows)));
}

export function pre(value, className = "") {
  return h("pre", { class: `code ${className}`.trim() }, value);
}

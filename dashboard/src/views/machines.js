// The org's machines: the list (page by page), a new machine, and opening an instance by name
// (which a production key, that may not list machines, can still do).

import { card, field, h, replace, spinner } from "../dom.js";
import { ago, shortId, when } from "../format.js";
import { SLUG_PATTERN, act, errorBox, table } from "../ui.js";

export async function machinesPage(view, { api }) {
  const list = h("div", null, spinner());
  const more = h("div", { class: "row" });
  replace(view, h("div", { class: "grid two" },
    card("Machines", list, more),
    h("div", { class: "stack" }, newMachine(api), openInstance())));

  const rows = [];
  async function load(cursor) {
    let page;
    try {
      page = await api.get("machines", { cursor });
    } catch (err) {
      replace(list, errorBox(err, "Could not list the machines"));
      return;
    }
    rows.push(...page.machines.map((m) => h("tr", { dataset: { machine: m.slug } },
      h("td", null, h("a", { href: `#/m/${m.slug}` }, m.slug)),
      h("td", null, m.currentVersion
        ? h("span", { title: m.currentVersion.id }, m.currentVersion.clientInfo || shortId(m.currentVersion.id))
        : h("span", { class: "muted" }, "no current version")),
      h("td", { title: when(m.createdAt) }, ago(m.createdAt)))));
    replace(list, table(["Machine", "Current version", "Created"], rows, { empty: "No machines yet: create one." }));
    replace(more, page.cursor ? h("button", { onclick: () => load(page.cursor) }, "Load more") : null);
  }
  await load();
}

function newMachine(api) {
  const slug = h("input", { name: "slug", required: true, pattern: SLUG_PATTERN, placeholder: "e.g. toggler", spellcheck: false });
  const out = h("div", { class: "outcome" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create machine");
  return card("New machine",
    h("form", {
      class: "stack",
      onsubmit: (e) => {
        e.preventDefault();
        const name = slug.value.trim();
        return act(submit, out, "Create the machine", async () => {
          await api.post("machines", { slug: name });
          location.hash = `#/m/${name}`;
        });
      },
    }, field("Name", slug, "Letters, digits, - and _; then deploy a version on its page."), h("div", { class: "row" }, submit), out));
}

function openInstance() {
  const machine = h("input", { name: "machine", required: true, pattern: SLUG_PATTERN, spellcheck: false });
  const instance = h("input", { name: "instance", required: true, pattern: SLUG_PATTERN, spellcheck: false });
  return card("Open an instance",
    h("form", {
      class: "stack",
      onsubmit: (e) => {
        e.preventDefault();
        location.hash = `#/m/${machine.value.trim()}/i/${instance.value.trim()}`;
      },
    }, h("div", { class: "row wrap" }, field("Machine", machine), field("Instance", instance)),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Open"))));
}

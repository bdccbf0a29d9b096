// One machine: its current version's chart, its versions (with "make current"), its instances
// (search, pages, a new one), deploying a version, its logs, and deleting it.

import { allPages } from "../api.js";
import { badge, card, field, h, replace, spinner } from "../dom.js";
import { ago, shortId, when } from "../format.js";
import { deletionHmac } from "../session.js";
import { SLUG_PATTERN, act, dangerZone, errorBox, jsonInput, table } from "../ui.js";
import { drawChart } from "./chartPanel.js";
import { deployPanel } from "./deploy.js";
import { logsPanel } from "./logsPanel.js";

const SLUG = /^[A-Za-z0-9_-]{1,128}$/;

export async function machinePage(view, { api, config, params }) {
  const { machine } = params;
  const state = { current: null, versions: [], shown: null };
  const header = h("div", { class: "page-head" }, h("h1", null, machine));
  const chartTitle = h("h2", null, "Chart");
  const chartBox = h("div", null, spinner());
  const versionsBox = h("div", null, spinner());
  const instances = instancesPanel(api, machine, state);
  const logs = logsPanel(api, config, { machine });
  const deploy = deployPanel(api, machine, { onDeployed: () => refresh() });
  const danger = dangerZone({
    what: "machine", name: machine,
    onConfirm: async () => {
      await api.del(`machines/${machine}`, {
        dangerDataWillBeDeletedForever: true,
        hmacSha256OfMachineNameWithMachineNameKey: await deletionHmac(machine, machine),
      });
      location.hash = "#/";
    },
  });
  replace(view, header,
    h("div", { class: "grid two" },
      h("section", { class: "card chart-card" }, chartTitle, chartBox),
      h("div", { class: "stack" }, card("Versions", versionsBox), card("Deploy a version", deploy))),
    card("Instances", instances.el),
    card("Logs", logs.el),
    card("Danger zone", danger));

  async function showChart(versionId) {
    state.shown = versionId;
    const version = state.versions.find((v) => v.id === versionId);
    replace(chartTitle, "Chart ", h("span", { class: "muted" }, `· ${version && version.clientInfo ? version.clientInfo : shortId(versionId)}`),
      versionId === state.current ? badge("current", "ok") : null);
    renderVersions();
    const chart = await drawChart(chartBox, api, machine, versionId);
    if (chart) chart.setState(undefined);
  }

  function renderVersions() {
    const rows = [...state.versions].reverse().map((v) => {
      const out = h("span", { class: "outcome" });
      const make = h("button", { class: "small", onclick: () => act(make, out, "Make it current", async () => {
        await api.put(`machines/${machine}/current-version`, { machineVersionId: v.id });
        state.current = v.id;
        renderVersions();
        instances.setVersions(state);
        await showChart(v.id);
      }) }, "Make current");
      return h("tr", { dataset: { version: v.id }, class: v.id === state.shown ? "selected" : "" },
        h("td", null, v.clientInfo || h("span", { class: "muted" }, "—")),
        h("td", null, h("code", { title: v.id }, shortId(v.id))),
        h("td", { title: when(v.createdAt) }, ago(v.createdAt)),
        h("td", { class: "actions" }, v.id === state.current ? badge("current", "ok") : make,
          h("button", { class: "small", onclick: () => showChart(v.id), "aria-label": `chart of ${v.id}` }, "Chart"), out));
    });
    replace(versionsBox, table(["Reference", "Id", "Created", ""], rows, { empty: "No versions yet: deploy one." }));
  }

  async function refresh() {
    try {
      const [got, versions] = await Promise.all([
        api.get(`machines/${machine}`), allPages(api, `machines/${machine}/v`, "versions"),
      ]);
      state.current = got.machine.currentVersion ? got.machine.currentVersion.id : null;
      state.versions = versions.items;
    } catch (err) {
      replace(versionsBox, errorBox(err, "Could not read the machine's versions"));
      replace(chartBox, errorBox(err, "Could not read the machine"));
      return;
    }
    renderVersions();
    instances.setVersions(state);
    const latest = state.versions.length ? state.versions[state.versions.length - 1].id : null;
    const show = state.current || latest;
    if (show) await showChart(show);
    else replace(chartBox, h("p", { class: "muted empty" }, "No versions yet: deploy one to see its chart."));
  }

  await Promise.all([refresh(), instances.load()]);
  return () => logs.stop();
}

function instancesPanel(api, machine, state) {
  const search = h("input", { type: "search", placeholder: "search by name", "aria-label": "search instances by name", spellcheck: false });
  const list = h("div", null, spinner());
  const more = h("div", { class: "row wrap" });
  const loaded = [];
  let cursor = null;
  let failed = null;

  const name = h("input", { name: "instance", required: true, pattern: SLUG_PATTERN, spellcheck: false });
  const context = jsonInput({ label: "initial context", rows: 3, placeholder: '{"count": 0} (optional: merged over the machine\'s own context)' });
  const version = h("select", { name: "version", "aria-label": "version" });
  const out = h("div", { class: "outcome" });
  const create = h("button", { type: "submit", class: "primary" }, "Create instance");
  const form = h("form", {
    class: "stack new-instance",
    onsubmit: (e) => {
      e.preventDefault();
      const slug = name.value.trim();
      return act(create, out, "Create the instance", async () => {
        const body = { slug, context: context.readJson() };
        if (version.value) body.machineVersionId = version.value;
        await api.post(`machines/${machine}`, body);
        location.hash = `#/m/${machine}/i/${slug}`;
      });
    },
  }, h("h3", null, "New instance"), h("div", { class: "row wrap" }, field("Name", name), field("Version", version)),
  field("Initial context", context), h("div", { class: "row" }, create), out);

  function render() {
    if (failed) {
      replace(list, errorBox(failed, "Could not list the instances"));
      return;
    }
    const text = search.value.trim();
    const shown = loaded.filter((i) => i.slug.toLowerCase().includes(text.toLowerCase()));
    const rows = shown.map((i) => h("tr", { dataset: { instance: i.slug } },
      h("td", null, h("a", { href: `#/m/${machine}/i/${i.slug}` }, i.slug)),
      h("td", null, badge(i.status, i.status === "paused" ? "warn" : "ok")),
      h("td", null, h("span", { title: i.machineVersion.id }, i.machineVersion.clientInfo || shortId(i.machineVersion.id))),
      h("td", { title: when(i.createdAt) }, ago(i.createdAt))));
    replace(list, table(["Instance", "Status", "Version", "Created"], rows,
      { empty: text ? `No loaded instance matches "${text}".` : "No instances yet." }));
    replace(more,
      h("span", { class: "muted small" }, `${loaded.length} loaded${cursor ? ", more on the server" : ""}`),
      cursor ? h("button", { class: "small", onclick: () => load(cursor) }, "Load more") : null,
      text && SLUG.test(text) && !loaded.some((i) => i.slug === text)
        ? h("a", { class: "button small", href: `#/m/${machine}/i/${text}` }, `Open "${text}"`) : null);
  }

  async function load(from) {
    try {
      const page = await api.get(`machines/${machine}/i`, { cursor: from });
      loaded.push(...page.instances);
      cursor = page.cursor || null;
      failed = null;
    } catch (err) {
      failed = err;
    }
    render();
  }

  search.addEventListener("input", render);
  return {
    el: h("div", { class: "grid two" }, h("div", null, h("div", { class: "row wrap tools" }, search), list, more), form),
    load: () => load(null),
    setVersions({ versions, current }) {
      replace(version, [...versions].reverse().map((v) => h("option", { value: v.id === current ? "" : v.id },
        `${v.clientInfo || shortId(v.id)}${v.id === current ? " (current)" : ""}`)));
      if (!versions.length) version.append(h("option", { value: "" }, "no versions yet"));
      version.value = "";   // the current version, unless the person picks another
    },
  };
}

// One instance: its version's chart with the current state highlighted, its state and context,
// the events it accepts now (one click each) and any event as JSON, pause/resume, the desired
// version, its transitions, pending timers and logs, and deleting it. The page follows the
// instance through /rt, whoever changes it.

import { allPages } from "../api.js";
import { acceptedEvents } from "../chart/model.js";
import { badge, card, field, h, replace, spinner } from "../dom.js";
import { ago, eventText, json, shortId, stateText, when } from "../format.js";
import { follow } from "../realtime.js";
import { deletionHmac } from "../session.js";
import { act, dangerZone, errorBox, jsonInput, note, pre, table } from "../ui.js";
import { drawChart, loadDefinition } from "./chartPanel.js";
import { logsPanel } from "./logsPanel.js";

export async function instancePage(view, { api, session, base, config, params }) {
  const { machine, instance } = params;
  const path = `machines/${machine}/i/${instance}`;
  const page = { state: null, admin: null, adminError: null, definition: null, chart: null, lastTs: 0, versions: [] };
  const stops = [];

  const badges = h("span", { class: "badges" });
  const live = h("span", { class: "live", role: "status" });
  const refreshButton = h("button", { class: "small", onclick: () => reload() }, "Refresh");
  const chartBox = h("div", null, spinner());
  const stateBox = h("div", null, spinner());
  const eventsBox = h("div");
  const eventOut = h("div", { class: "outcome", "aria-live": "polite" });
  const freeEvent = jsonInput({ label: "event", rows: 3, placeholder: '{"type": "toggle"} or "toggle"' });
  const adminBox = h("div", null, spinner());
  const historyBox = h("div", null, spinner());
  const timersBox = h("div", null, spinner());
  const logs = logsPanel(api, config, { machine, instance });
  stops.push(logs.stop);
  const sendFree = h("button", { type: "submit" }, "Send");

  replace(view,
    h("div", { class: "page-head" }, h("h1", null, instance), badges, h("span", { class: "spacer" }), live, refreshButton),
    h("div", { class: "grid two" },
      h("section", { class: "card chart-card" }, h("h2", null, "Chart"), chartBox),
      h("div", { class: "stack" },
        card("State", stateBox),
        card("Send an event", eventsBox,
          h("form", { class: "stack", onsubmit: (e) => { e.preventDefault(); return sendJson(); } },
            field("Any event (JSON)", freeEvent), h("div", { class: "row" }, sendFree)),
          eventOut),
        card("Administration", adminBox))),
    card("Transitions", historyBox),
    card("Pending timers", timersBox),
    card("Logs", logs.el),
    card("Danger zone", dangerZone({
      what: "instance", name: instance,
      onConfirm: async () => {
        await api.del(path, {
          dangerDataWillBeDeletedForever: true,
          hmacSha256OfMachineInstanceNameWithMachineNameKey: await deletionHmac(machine, instance),
        });
        location.hash = `#/m/${machine}`;
      },
    })));

  // --- the state, from any source (a reply, /rt, a read) ------------------------------------
  function applyState(st) {
    if (typeof st.ts === "number") {
      if (st.ts < page.lastTs) return;   // an older state arriving late
      page.lastTs = st.ts;
    }
    page.state = st;
    renderState();
    renderEvents();
    if (page.chart) page.chart.setState(st.state, { clickable: !st.done && running() });
  }

  function running() {
    return !page.admin || page.admin.status === "running";
  }

  function renderState() {
    const st = page.state;
    replace(badges,
      page.admin ? badge(page.admin.status, page.admin.status === "paused" ? "warn" : "ok") : null,
      st.done ? badge("done", "final") : null);
    replace(stateBox,
      h("dl", { class: "facts" },
        h("dt", null, "State"), h("dd", { class: "state-value", dataset: { state: JSON.stringify(st.state) } }, h("code", null, stateText(st.state))),
        h("dt", null, "Tags"), h("dd", { class: "tags" }, st.tags && st.tags.length ? st.tags.map((t) => badge(t)) : h("span", { class: "muted" }, "none")),
        h("dt", null, "Done"), h("dd", null, st.done ? "yes" : "no"),
        st.ts ? [h("dt", null, "Since"), h("dd", { title: new Date(st.ts).toISOString() }, when(new Date(st.ts).toISOString()))] : null),
      h("h3", null, "Public context"), pre(json(st.publicContext)),
      page.admin
        ? [h("h3", null, "Full context"), pre(json(page.admin.context), "full-context")]
        : page.adminError ? note(`The full context needs an admin key: ${page.adminError.words}`) : null);
  }

  function renderEvents() {
    const st = page.state;
    if (st.done) {
      replace(eventsBox, note("The instance is in its final state: it accepts no more events."));
      return;
    }
    if (!page.definition || page.definition.unavailable) {
      replace(eventsBox, note("Without its version's chart, the events it accepts are not known here; send one as JSON."));
      return;
    }
    const { events, wildcard } = acceptedEvents(page.definition.root, st.state);
    const buttons = events.map((e) => h("button", {
      class: "event", dataset: { event: e.type }, disabled: !running(),
      title: e.guarded ? "a guard decides whether this event is taken" : `send ${e.type}`,
      onclick: () => send(e.type),
    }, e.type, e.guarded ? h("span", { class: "muted" }, " [guarded]") : null));
    replace(eventsBox,
      buttons.length ? h("div", { class: "row wrap event-buttons", role: "group", "aria-label": "events the current state accepts" }, buttons)
        : note("The current state has no event transitions."),
      wildcard ? note("The current state also accepts any event (*): send it as JSON.") : null,
      running() ? null : note("The instance is paused: it rejects every event until it is resumed."));
  }

  async function send(event) {
    replace(eventOut, h("span", { class: "muted", role: "status" }, `Sending ${eventText(event)}…`));
    try {
      const st = await api.post(`${path}/events`, { event });
      replace(eventOut, h("span", { class: "ok", role: "status" }, `Sent ${eventText(event)}.`));
      applyState(st);
      refreshDetails();
    } catch (err) {
      replace(eventOut, errorBox(err, `Could not send ${eventText(event)}`));
    }
  }

  async function sendJson() {
    let event;
    try {
      event = freeEvent.readJson(false);
    } catch (err) {
      replace(eventOut, errorBox(err));
      return;
    }
    sendFree.disabled = true;
    await send(event);
    sendFree.disabled = false;
  }

  // --- administration: status, version, desired version ---------------------------------------
  function renderAdmin() {
    if (!page.admin) {
      replace(adminBox, page.adminError ? errorBox(page.adminError, "Not available to this key") : spinner());
      return;
    }
    const a = page.admin;
    const out = h("div", { class: "outcome" });
    const paused = a.status === "paused";
    const toggle = h("button", { class: paused ? "primary" : "", onclick: () => act(toggle, out, paused ? "Resume" : "Pause", async () => {
      await api.put(`${path}/status`, { status: paused ? "running" : "paused" });
      await refreshDetails();
      return paused ? "Resumed." : "Paused.";
    }) }, paused ? "Resume" : "Pause");
    replace(adminBox,
      h("dl", { class: "facts" },
        h("dt", null, "Status"), h("dd", null, badge(a.status, paused ? "warn" : "ok")),
        h("dt", null, "Version"), h("dd", null, versionText(a.machineVersion)),
        h("dt", null, "Desired version"), h("dd", null, a.desiredMachineVersion ? versionText(a.desiredMachineVersion) : h("span", { class: "muted" }, "none")),
        h("dt", null, "Created"), h("dd", { title: a.createdAt }, when(a.createdAt))),
      h("div", { class: "row wrap" }, toggle), out, desiredVersion(a));
  }

  function desiredVersion(a) {
    if (!config.features || !config.features.desiredVersion) {
      return note("This server cannot upgrade instances to another version yet (PUT …/v).");
    }
    const choices = page.versions.filter((v) => v.id !== a.machineVersion.id);
    if (!choices.length) return note("There is no other version to upgrade to.");
    const select = h("select", { "aria-label": "desired version" },
      [...choices].reverse().map((v) => h("option", { value: v.id }, v.clientInfo ? `${v.clientInfo} (${shortId(v.id)})` : v.id)));
    const out = h("div", { class: "outcome" });
    const set = h("button", { onclick: () => act(set, out, "Set the desired version", async () => {
      await api.put(`${path}/v`, { targetMachineVersionId: select.value });
      await refreshDetails();
      return "It upgrades at its next event.";
    }) }, "Set desired version");
    return h("div", { class: "stack desired" }, field("Upgrade to", select), h("div", { class: "row" }, set), out);
  }

  // --- history and timers ----------------------------------------------------------------
  async function renderHistory() {
    let got;
    try {
      got = await allPages(api, `${path}/events`, "transitions");
    } catch (err) {
      replace(historyBox, errorBox(err, "Could not read the transitions"));
      return;
    }
    const rows = got.items.map((t, i) => ({ t, n: i + 1 })).reverse().map(({ t, n }) => h("tr", null,
      h("td", { class: "num" }, n),
      h("td", { title: t.createdAt }, when(t.createdAt)),
      h("td", { class: "event-cell" }, h("code", null, eventText(t.event))),
      h("td", null, h("code", null, stateText(t.state)))));
    replace(historyBox, table(["#", "When", "Event", "State after"], rows, { empty: "No transitions.", className: "history" }),
      got.more ? note("Only the first 1000 transitions are shown.") : null);
  }

  async function renderTimers() {
    let got;
    try {
      got = await api.get(`${path}/timers`);
    } catch (err) {
      replace(timersBox, errorBox(err, "Could not read the timers"));
      return;
    }
    const rows = got.timers.map((t) => h("tr", null,
      h("td", null, h("code", null, t.id)),
      h("td", null, h("code", null, eventText(t.event))),
      h("td", { title: t.dueAt }, `${when(t.dueAt)} (${ago(t.dueAt)})`),
      h("td", { class: "num" }, t.attempts)));
    replace(timersBox, table(["Timer", "Event", "Due", "Failed attempts"], rows, { empty: "No pending timers." }));
  }

  // --- loading ---------------------------------------------------------------------------
  // The admin view (or, for a key without instances.admin, the State its allowRead lets it
  // see), as a state without `ts`: it is the latest when read.
  async function readAdmin() {
    try {
      const a = await api.get(`${path}/admin`);
      page.admin = a;
      page.adminError = null;
      return { state: a.state, tags: a.tags, done: a.done,
        publicContext: a.context && typeof a.context === "object" ? a.context.public : undefined };
    } catch (err) {
      if (err.status !== 403) throw err;
      page.admin = null;
      page.adminError = err;
      return api.get(path);
    }
  }

  // After a change, the context, status, transitions and timers are read again; changes that
  // arrive while a read runs make one more read after it. The state itself comes from the
  // replies and updates that carry its `ts`, so a slow read never shows an older state.
  let reading = null;
  let dirty = false;
  function refreshDetails() {
    dirty = true;
    if (!reading) {
      reading = (async () => {
        while (dirty) {
          dirty = false;
          try {
            await readAdmin();
          } catch (err) {
            replace(adminBox, errorBox(err, "Could not read the instance"));
          }
          if (page.state) applyState(page.state);
          renderAdmin();
          await Promise.all([renderHistory(), renderTimers()]);
        }
        reading = null;
      })();
    }
    return reading;
  }

  async function reload() {
    let st;
    try {
      st = await readAdmin();
    } catch (err) {
      const box = errorBox(err, "Could not read the instance");
      replace(stateBox, box);
      replace(chartBox, errorBox(err, "Could not read the instance"));
      replace(adminBox);
      replace(eventsBox);
      return false;
    }
    if (page.admin && !page.versions.length) {
      page.versions = await allPages(api, `machines/${machine}/v`, "versions").then((r) => r.items, () => []);
    }
    if (page.admin && !page.definition) {
      const versionId = page.admin.machineVersion.id;
      try {
        page.definition = await loadDefinition(api, machine, versionId);
      } catch {
        page.definition = null;   // drawChart shows the error
      }
      page.chart = await drawChart(chartBox, api, machine, versionId, { onEvent: send });
    } else if (!page.admin) {
      replace(chartBox, note(`The chart needs the instance's version, which only admin keys may read: ${page.adminError.words}`));
    }
    page.lastTs = 0;
    applyState(st);
    renderAdmin();
    await Promise.all([renderHistory(), renderTimers()]);
    return true;
  }

  function followLive() {
    if (!config.features || !config.features.realtime) {
      replace(live, badge("not live", "muted"), h("span", { class: "muted small" }, " this server has no /rt yet: use Refresh"));
      return;
    }
    stops.push(follow(session, base, machine, instance, {
      onUpdate: (update) => {
        applyState(update);
        refreshDetails();
      },
      onError: (e) => replace(eventOut, errorBox({ words: `the live subscription was refused (${e.status} ${e.code || ""})`.trim() })),
      onStatus: (text, isLive) => replace(live, badge(isLive ? "live" : text, isLive ? "ok live-on" : "muted")),
    }));
  }

  if (await reload()) followLive();
  return () => stops.forEach((stop) => stop());
}

function versionText(v) {
  return h("span", { title: v.id }, v.clientInfo ? `${v.clientInfo} ` : "", h("code", null, shortId(v.id)));
}

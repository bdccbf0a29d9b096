// The dashboard's entry: the session, the server's features, and a hash router over the pages.
//
//   #/                         machines (and opening an instance by name)
//   #/m/<machine>              a machine: chart, versions, instances, deploy, logs
//   #/m/<machine>/i/<instance> an instance: chart with its state, events, history, timers, logs

import { Api } from "./api.js";
import { guarded, h, replace, reportUnexpected } from "./dom.js";
import { Session, forget } from "./session.js";
import { signIn } from "./views/signin.js";
import { machinesPage } from "./views/machines.js";
import { machinePage } from "./views/machine.js";
import { instancePage } from "./views/instance.js";

// The API is this server's root: the page is served at <root>/dashboard/.
const base = new URL("../", document.baseURI).href;
let session = Session.restore();
let cleanup = null;
let shown = 0;   // which call of show() the page on screen belongs to
let config = { features: {} };

const ROUTES = [
  [/^\/?$/, () => ({ page: machinesPage, crumbs: [] })],
  [/^\/m\/([A-Za-z0-9_-]+)\/?$/, ([m]) => ({ page: machinePage, params: { machine: m }, crumbs: [[m, `#/m/${m}`]] })],
  [/^\/m\/([A-Za-z0-9_-]+)\/i\/([A-Za-z0-9_-]+)\/?$/, ([m, i]) => ({ page: instancePage, params: { machine: m, instance: i },
    crumbs: [[m, `#/m/${m}`], [i, `#/m/${m}/i/${i}`]] })],
];

function route() {
  const path = decodeURIComponent(location.hash.replace(/^#/, "") || "/");
  for (const [pattern, make] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return make(match.slice(1));
  }
  return null;
}

function leave() {
  if (cleanup) {
    try { cleanup(); } catch (err) { reportUnexpected(err); }
    cleanup = null;
  }
}

async function show() {
  const mine = ++shown;
  leave();
  const main = document.getElementById("main");
  const crumbs = document.getElementById("crumbs");
  renderWho();
  if (!session) {
    replace(crumbs);
    replace(main, signIn({ base, onSignedIn }));
    return;
  }
  const target = route();
  if (!target) {
    replace(crumbs);
    replace(main, h("section", { class: "card" }, h("h2", null, "Not found"),
      h("p", null, "There is no such page. ", h("a", { href: "#/" }, "Back to the machines"), ".")));
    return;
  }
  replace(crumbs, h("a", { href: "#/" }, "Machines"),
    target.crumbs.map(([text, href]) => [h("span", { class: "sep", "aria-hidden": "true" }, "/"), h("a", { href }, text)]));
  const api = new Api(session, base);
  const view = h("div", { class: "page" });
  replace(main, view);
  document.title = target.crumbs.length ? `${target.crumbs.map(([t]) => t).join(" / ")} · backstate` : "backstate";
  const stop = await target.page(view, { api, session, base, config, params: target.params || {} });
  // A page still loading when the person moved on is stopped as soon as it is ready.
  if (mine === shown) cleanup = stop;
  else if (stop) stop();
}

function renderWho() {
  const who = document.getElementById("who");
  if (!session) {
    replace(who);
    return;
  }
  replace(who,
    h("span", { class: "key", title: "the API key this page signs its tokens with" }, session.keyId),
    h("span", { class: "act", title: "the auth context (act) in the tokens: what allowRead and allowWrite see" },
      `as ${JSON.stringify(session.act)}`),
    session.remember ? h("span", { class: "badge warn", title: "the secret is kept in this browser's localStorage" }, "remembered") : null,
    h("button", { class: "link", onclick: signOut }, "Sign out"));
}

function onSignedIn(made) {
  session = made;
  show().catch(reportUnexpected);
}

function signOut() {
  forget();
  session = null;
  show().catch(reportUnexpected);
}

async function loadConfig() {
  try {
    const response = await fetch(new URL("dashboard/config.json", base), { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch {
    // without it every optional feature is shown as missing, which is what it would say
  }
}

window.addEventListener("hashchange", guarded(show));
window.addEventListener("unhandledrejection", (e) => reportUnexpected(e.reason));
loadConfig().then(show).catch(reportUnexpected);

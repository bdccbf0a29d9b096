// A machine's or an instance's log lines (console output of its machine), filtered, following
// new lines as they come (GET /logs, polled as the official client's logs.watch does).

import { h, replace } from "../dom.js";
import { when } from "../format.js";
import { followLogs } from "../logs.js";
import { errorBox, note } from "../ui.js";

const SINCE = [["15 minutes", 15 * 60e3], ["1 hour", 3600e3], ["24 hours", 86400e3], ["7 days", 7 * 86400e3]];
const KEEP = 2000;

export function logsPanel(api, config, { machine, instance }) {
  const box = h("div", { class: "logs" });
  if (!config.features || !config.features.logs) {
    replace(box, note("This server does not serve /logs yet, so there are no log lines to show."));
    return { el: box, stop: () => {} };
  }
  const filter = h("input", { type: "search", placeholder: "filter lines", "aria-label": "filter log lines" });
  const stream = h("select", { "aria-label": "output" },
    h("option", { value: "" }, "stdout and stderr"), h("option", { value: "stdout" }, "stdout"), h("option", { value: "stderr" }, "stderr"));
  const since = h("select", { "aria-label": "since" }, SINCE.map(([label, ms], i) => h("option", { value: ms, selected: i === 1 }, `last ${label}`)));
  const status = h("span", { class: "muted small", role: "status" });
  const problem = h("div");
  const lines = h("div", { class: "log-lines", role: "log", "aria-live": "polite" });
  let kept = [];
  let stop = () => {};

  const visible = (entry) => {
    const text = filter.value.trim().toLowerCase();
    return (!stream.value || entry.outputType === stream.value)
      && (!text || entry.log.toLowerCase().includes(text) || (entry.instanceName || "").toLowerCase().includes(text));
  };
  const line = (entry) => h("div", { class: `log-line ${entry.outputType}` },
    h("time", { datetime: entry.timestamp, title: entry.timestamp }, when(entry.timestamp)),
    instance ? null : h("span", { class: "log-instance" }, entry.instanceName || ""),
    h("span", { class: "log-text" }, entry.log));
  const redraw = () => {
    const shown = kept.filter(visible);
    replace(lines, shown.length ? shown.map(line) : h("p", { class: "muted empty" }, "No log lines."));
  };

  function start() {
    stop();
    kept = [];
    redraw();
    stop = followLogs(api, {
      from: new Date(Date.now() - Number(since.value)), machine, instance,
      onLines: (entries) => {
        replace(problem);
        kept = kept.concat(entries).slice(-KEEP);
        redraw();
      },
      onError: (err) => replace(problem, errorBox(err, "Could not read the logs")),
      onStatus: (text) => { status.textContent = text; },
    });
  }

  filter.addEventListener("input", redraw);
  stream.addEventListener("change", redraw);
  since.addEventListener("change", start);
  replace(box, h("div", { class: "row wrap tools" }, filter, stream, since, status), problem, lines);
  start();
  return { el: box, stop: () => stop() };
}

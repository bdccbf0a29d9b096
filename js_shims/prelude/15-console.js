// The console object and reportError. Each line is recorded with the driver's clock for the
// driver to take (__bs.takeLogs), under per-event caps on lines and bytes; nothing a caller
// passes can make a console method throw.

// Each line is recorded as {ts, stream, text} for the driver to take (__bs.takeLogs). A VM
// serves one event, so the caps hold per event: at most 1000 lines, 64 KiB per line, 1 MiB in
// all; beyond that output is dropped and one marker line says so.
const LOG_MAX_LINES = 1000;
const LOG_MAX_LINE_BYTES = 64 * 1024;
const LOG_MAX_TOTAL_BYTES = 1024 * 1024;
const LOG_TRUNCATED = "[backstate] log output truncated";

let logs = [];
let loggedLines = 0;
let loggedBytes = 0;
let logTruncated = false;
let groupIndent = "";

const logFull = () => loggedLines >= LOG_MAX_LINES || loggedBytes >= LOG_MAX_TOTAL_BYTES;

function record(stream, text) {
  if (logFull()) return markLogTruncated();
  if (groupIndent) text = text.replace(/^/gm, groupIndent);
  const [clipped, bytes] = clipUtf8(text, LOG_MAX_LINE_BYTES);
  // Lone surrogates would make the driver's UTF-8 encoding of the line fail.
  const kept = clipped.toWellFormed();
  if (loggedBytes + bytes > LOG_MAX_TOTAL_BYTES) {
    loggedBytes = LOG_MAX_TOTAL_BYTES;   // drop everything after, not just this line
    return markLogTruncated();
  }
  loggedLines++;
  loggedBytes += bytes;
  logs.push({ ts: bs.now, stream, text: kept });
  if (clipped.length < text.length) markLogTruncated();
}

function markLogTruncated() {
  if (logTruncated) return;
  logTruncated = true;
  logs.push({ ts: bs.now, stream: "stderr", text: LOG_TRUNCATED });
}

// The longest prefix of text within maxBytes of UTF-8, and its size in bytes.
function clipUtf8(text, maxBytes) {
  if (text.length * 3 <= maxBytes) return [text, utf8Length(text)];
  // A code unit is at least one byte, so the scan never needs more than maxBytes units.
  const head = text.length > maxBytes ? text.slice(0, maxBytes) : text;
  const [units, bytes] = utf8Write(head, null, maxBytes);
  return [units === text.length ? text : text.slice(0, units), bytes];
}

const logTo = (stream) => (...args) => {
  if (logFull()) return markLogTruncated();
  record(stream, formatArgs(args));
};

// Logging must never throw into user code, whatever it is given (a valueOf that throws, a
// hostile proxy): a line that cannot be formatted is dropped.
const neverThrows = (method) => (...args) => {
  try {
    method(...args);
  } catch {
    /* nothing sensible to log */
  }
};

const counts = new Map();
const timeMarks = new Map();

const console = {
  log: logTo("stdout"),
  info: logTo("stdout"),
  debug: logTo("stdout"),
  warn: logTo("stderr"),
  error: logTo("stderr"),
  dir: (value) => record("stdout", inspect(value)),
  dirxml: logTo("stdout"),
  trace: (...args) => {
    const stack = (new Error().stack ?? "").split("\n").slice(1).join("\n").trimEnd();
    record("stderr", `Trace${args.length ? `: ${formatArgs(args)}` : ""}\n${stack}`);
  },
  assert: (condition, ...args) => {
    if (condition) return;
    record("stderr", `Assertion failed${args.length ? `: ${formatArgs(args)}` : ""}`);
  },
  table: (data, columns) => {
    if (data === null || typeof data !== "object") return console.log(data);
    record("stdout", renderTable(data, columns));
  },
  group: (...args) => {
    if (args.length) console.log(...args);
    groupIndent += "  ";
  },
  groupEnd: () => { groupIndent = groupIndent.slice(2); },
  count: (label = "default") => {
    const n = (counts.get(String(label)) ?? 0) + 1;
    counts.set(String(label), n);
    record("stdout", `${label}: ${n}`);
  },
  countReset: (label = "default") => { counts.delete(String(label)); },
  time: (label = "default") => { timeMarks.set(String(label), performance.now()); },
  timeLog: (label = "default", ...args) => logTime(String(label), args, false),
  timeEnd: (label = "default") => logTime(String(label), [], true),
  clear: () => {},
};
console.groupCollapsed = console.group;
for (const name of Object.keys(console)) console[name] = neverThrows(console[name]);

function logTime(label, args, end) {
  const start = timeMarks.get(label);
  if (start === undefined) return record("stderr", `Warning: No such label '${label}'`);
  if (end) timeMarks.delete(label);
  const ms = (performance.now() - start).toFixed(3);
  record("stdout", [`${label}: ${ms}ms`, ...args.map(asText)].join(" "));
}

// Node's box table; cells inspected one level deep.
function renderTable(data, columns) {
  const rows = data instanceof Map || data instanceof Set
    ? [...data.entries()].map(([k, v], i) => [data instanceof Map ? asText(k) : String(i), v])
    : Object.entries(data);
  const isRecord = (v) => v !== null && typeof v === "object";
  const keys = columns ? [...columns].map(String) : [];
  if (!columns) {
    for (const [, v] of rows) if (isRecord(v)) keys.push(...Object.keys(v));
  }
  const cols = [...new Set(keys)];
  const withValues = rows.some(([, v]) => !isRecord(v));
  const header = ["(index)", ...cols, ...(withValues ? ["Values"] : [])];
  const body = rows.map(([index, v]) => [
    index,
    ...cols.map((k) => (isRecord(v) && Object.hasOwn(v, k) ? inspect(v[k], 0) : "")),
    ...(withValues ? [isRecord(v) ? "" : inspect(v, 0)] : []),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)) + 2);
  const rule = (l, m, r) => l + widths.map((w) => "─".repeat(w)).join(m) + r;
  const line = (cells) => `│${cells.map((c, i) => ` ${c.padEnd(widths[i] - 1)}`).join("│")}│`;
  return [rule("┌", "┬", "┐"), line(header), rule("├", "┼", "┤"), ...body.map(line),
    rule("└", "┴", "┘")].join("\n");
}

// What a browser does with an exception nobody caught: report it, and carry on.
function reportError(error) {
  record("stderr", `Uncaught ${typeof error === "string" ? error : inspect(error)}`);
}

// The web-standard globals of backstate's sandbox.
//
// Evaluated once, as a plain script, into the VM that becomes the memory snapshot every event's
// VM is cloned from, so its size costs nothing per event. QuickJS-NG core has no qjs-libc: no
// console, timers, fetch, TextEncoder, URL... This file supplies them. It polyfills only what the
// engine lacks: quickjs-ng 0.17 already has queueMicrotask, atob/btoa, DOMException and
// performance, and the fallbacks below exist for an engine that does not.
//
// Everything that needs the outside world goes through the Python driver:
//  * synchronous requests (random bytes, digests, HMAC) through __host_call, which this file
//    captures and then deletes from globalThis so that user code cannot reach it;
//  * asynchronous work (timers, fetch) and console output through queues the driver drains via
//    globalThis.__bs, the protocol object installed at the end of this file.
(() => {
  "use strict";

  // ------------------------------------------------------------------------------ host bridge

  const rawHostCall = globalThis.__host_call;
  delete globalThis.__host_call;
  // Captured now: user code that replaces JSON must not see or forge bridge traffic.
  const { parse: jsonParse, stringify: jsonStringify } = JSON;

  // One synchronous round trip (~0.07 ms). The host answers {error} instead of throwing.
  function hostCall(request) {
    if (typeof rawHostCall !== "function") {
      throw new TypeError("backstate: the host bridge is not available in this VM");
    }
    const response = jsonParse(rawHostCall(jsonStringify(request)));
    if (response.error !== undefined) {
      throw new DOMException(String(response.error), "OperationError");
    }
    return response;
  }

  const hostBytes = (request) => fromBase64(hostCall(request).b64);

  const define = (name, value) =>
    Object.defineProperty(globalThis, name, {
      value, writable: true, configurable: true, enumerable: false,
    });

  const defineMissing = (name, make) => {
    if (typeof globalThis[name] !== "function") define(name, make());
  };

  // Guards constructors that web code may not call ("Illegal constructor").
  const INTERNAL = Symbol("backstate.internal");
  // Our classes implement this to show their state in console output, as Node does.
  const INSPECT = Symbol("backstate.inspect");

  // ------------------------------------------------------------------------------ bytes

  const isBuffer = (x) =>
    x instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer === "function" && x instanceof SharedArrayBuffer);

  // A BufferSource as a Uint8Array over the same memory (no copy).
  function viewBytes(data, what) {
    if (isBuffer(data)) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) {
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBuffer view`);
  }

  const copyToBuffer = (bytes) => bytes.slice().buffer;

  function concatBytes(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  }

  const nativeBase64 = typeof Uint8Array.prototype.toBase64 === "function";

  function toBase64(bytes) {
    if (nativeBase64) return bytes.toBase64();
    return btoa(binaryString(bytes));
  }

  function fromBase64(b64) {
    if (nativeBase64) return Uint8Array.fromBase64(b64);
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // Bytes as a string of U+0000..U+00FF, in chunks because apply() has an argument limit.
  function binaryString(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return s;
  }

  // ------------------------------------------------------------------------------ engine gaps

  const DOM_EXCEPTION_CODES = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4,
    InvalidCharacterError: 5, NoModificationAllowedError: 7, NotFoundError: 8,
    NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
    URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23,
    InvalidNodeTypeError: 24, DataCloneError: 25,
  };

  defineMissing("DOMException", () => class DOMException extends Error {
    #name;
    constructor(message = "", name = "Error") {
      super(String(message));
      this.#name = String(name);
    }
    get name() { return this.#name; }
    get code() { return DOM_EXCEPTION_CODES[this.#name] ?? 0; }
  });

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  const invalidCharacter = (message) => new DOMException(message, "InvalidCharacterError");

  defineMissing("btoa", () => function btoa(data) {
    const s = String(data);
    if (/[^\u0000-\u00ff]/.test(s)) throw invalidCharacter("String contains an invalid character");
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
      const chars = [18, 12, 6, 0].map((shift) => B64[(n >> shift) & 63]);
      out += chars.slice(0, Math.min(4, s.length - i + 1)).join("").padEnd(4, "=");
    }
    return out;
  });

  // The "forgiving-base64 decode" of the HTML standard.
  defineMissing("atob", () => function atob(data) {
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      throw invalidCharacter("The string to be decoded is not correctly encoded");
    }
    let out = "", bits = 0, acc = 0;
    for (const ch of s) {
      acc = (acc << 6) | B64.indexOf(ch);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((acc >> bits) & 0xff);
      }
    }
    return out;
  });

  // Only now() and timeOrigin: there is no performance timeline to observe here.
  if (typeof globalThis.performance !== "object" || globalThis.performance === null) {
    const timeOrigin = Date.now();
    define("performance", { timeOrigin, now: () => Date.now() - timeOrigin });
  }

  defineMissing("queueMicrotask", () => function queueMicrotask(callback) {
    if (typeof callback !== "function") {
      throw new TypeError("queueMicrotask: the callback must be a function");
    }
    Promise.resolve().then(() => {
      try { callback(); } catch (error) { reportError(error); }
    });
  });

  // ------------------------------------------------------------------------------ Math.random

  // QuickJS seeds Math.random when the context is created, and every VM is a clone of the same
  // snapshot, so every VM would draw the same sequence. xoshiro128** seeded by the driver
  // (__bs.reseed) replaces it; if the driver never reseeds, the first draw seeds from the host.
  // The state lives in four closure variables: typed-array access costs 3x as much here.
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let rngSeeded = false;

  function reseed(hex) {
    const s = String(hex);
    if (!/^[0-9a-fA-F]{64}$/.test(s)) {
      throw new TypeError("__bs.reseed expects 32 bytes written as 64 hex digits");
    }
    const word = (i) => parseInt(s.slice(i * 8, i * 8 + 8), 16);
    // Fold 256 bits into 128, the second half through MurmurHash3's mixer, so that seeds with
    // structure (repeated halves, runs of zeros) still give unrelated states.
    const state = (i) => word(i) ^ fmix32(word(i + 4) + Math.imul(i + 1, 0x9e3779b9));
    [s0, s1, s2, s3] = [state(0), state(1), state(2), state(3)];
    // The all-zero state is a fixed point of xoshiro: it would return 0 forever.
    if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
    rngSeeded = true;
  }

  const imul = Math.imul;

  // MurmurHash3's finalizer.
  function fmix32(h) {
    h ^= h >>> 16;
    h = imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  function nextUint32() {
    const x = imul(s1, 5);
    const result = imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result >>> 0;
  }

  Math.random = function random() {
    if (!rngSeeded) reseed(hexOf(hostBytes({ op: "random", n: 32 })));
    // 53 random bits, like V8, so every double in [0, 1) on the 2^-53 grid is reachable.
    const high = nextUint32() >>> 5;
    const low = nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  };

  const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  // ------------------------------------------------------------------------------ inspect

  // A small util.inspect: one line, Node's notation, depth 2, 100 items per list.
  const MAX_DEPTH = 2;
  const MAX_ITEMS = 100;
  const MAX_KEYS = 1000;
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
  const NODE_CUSTOM_INSPECT = Symbol.for("nodejs.util.inspect.custom");

  function inspect(value, depth = MAX_DEPTH) {
    try {
      return inspectAny(value, depth, []);
    } catch {
      return safeString(value);   // a throwing getter or proxy trap must not break logging
    }
  }

  function safeString(value) {
    try { return String(value); } catch { return Object.prototype.toString.call(value); }
  }

  function inspectAny(v, depth, seen) {
    switch (typeof v) {
      case "string": return quote(v);
      case "number": return Object.is(v, -0) ? "-0" : String(v);
      case "bigint": return `${v}n`;
      case "symbol": return v.toString();
      case "function": return functionLabel(v);
      case "undefined": return "undefined";
      case "boolean": return String(v);
    }
    if (v === null) return "null";
    if (seen.includes(v)) return "[Circular]";
    if (v instanceof Error) return seen.length ? `[${errorHead(v)}]` : errorText(v);
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (depth < 0) return `[${Array.isArray(v) ? "Array" : className(v) ?? "Object"}]`;
    seen.push(v);
    try {
      return inspectObject(v, depth, seen);
    } finally {
      seen.pop();
    }
  }

  function inspectObject(v, depth, seen) {
    const item = (x) => inspectAny(x, depth - 1, seen);
    if (typeof v[INSPECT] === "function") return v[INSPECT](item);
    if (typeof v[NODE_CUSTOM_INSPECT] === "function") {
      const custom = v[NODE_CUSTOM_INSPECT](depth, {}, inspect);
      return typeof custom === "string" ? custom : item(custom);
    }
    if (Array.isArray(v)) return braces("", "[", listItems(v, item), "]");
    if (v instanceof Map) {
      const entries = [...v].slice(0, MAX_ITEMS).map(([k, x]) => `${item(k)} => ${item(x)}`);
      return braces(`Map(${v.size}) `, "{", entries, "}");
    }
    if (v instanceof Set) {
      return braces(`Set(${v.size}) `, "{", [...v].slice(0, MAX_ITEMS).map(item), "}");
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      return braces(`${className(v)}(${v.length}) `, "[", listItems(v, item), "]");
    }
    if (isBuffer(v)) return `${className(v)} { byteLength: ${v.byteLength} }`;
    if (v instanceof Promise) return "Promise { <state unknown> }";
    if (v instanceof WeakMap || v instanceof WeakSet) return `${className(v)} { <items unknown> }`;
    const boxed = boxedPrimitive(v);
    if (boxed !== undefined) return `[${className(v)}: ${item(boxed)}]`;
    return braces(objectPrefix(v), "{", propertyItems(v, item), "}");
  }

  const braces = (prefix, open, items, close) =>
    items.length ? `${prefix}${open} ${items.join(", ")} ${close}` : `${prefix}${open}${close}`;

  function listItems(list, item) {
    const shown = Math.min(list.length, MAX_ITEMS);
    const out = [];
    for (let i = 0; i < shown; i++) out.push(i in list ? item(list[i]) : "<1 empty item>");
    if (list.length > shown) out.push(`... ${list.length - shown} more items`);
    return out;
  }

  function propertyItems(obj, item) {
    const keys = [...Object.keys(obj), ...Object.getOwnPropertySymbols(obj)]
      .filter((k) => Object.prototype.propertyIsEnumerable.call(obj, k));
    const out = keys.slice(0, MAX_KEYS).map((k) => `${keyLabel(k)}: ${propertyValue(obj, k, item)}`);
    if (keys.length > MAX_KEYS) out.push(`... ${keys.length - MAX_KEYS} more properties`);
    return out;
  }

  // Getters are shown, not called: calling them could have side effects.
  function propertyValue(obj, key, item) {
    const d = Object.getOwnPropertyDescriptor(obj, key);
    if (d.get && d.set) return "[Getter/Setter]";
    if (d.get) return "[Getter]";
    if (d.set) return "[Setter]";
    return item(d.value);
  }

  const keyLabel = (k) =>
    typeof k === "symbol" ? `[${k.toString()}]` : IDENTIFIER.test(k) ? k : quote(k);

  // Node's quoting: single quotes, unless the string has some and no double quotes.
  function quote(s) {
    const body = jsonStringify(s).slice(1, -1);
    if (s.includes("'") && !s.includes('"')) return `"${body}"`;
    return `'${body.replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
  }

  function className(v) {
    const proto = Object.getPrototypeOf(v);
    if (proto === null) return null;
    const ctor = proto.constructor;
    return typeof ctor === "function" && ctor.name ? ctor.name : "Object";
  }

  function objectPrefix(v) {
    const name = className(v);
    if (name === null) return "[Object: null prototype] ";
    return name === "Object" ? "" : `${name} `;
  }

  const BOXES = ["[object Number]", "[object String]", "[object Boolean]", "[object BigInt]",
    "[object Symbol]"];

  function boxedPrimitive(v) {
    if (!BOXES.includes(Object.prototype.toString.call(v))) return undefined;
    for (const Box of [Number, String, Boolean, BigInt, Symbol]) {
      try { return Box.prototype.valueOf.call(v); } catch { /* not this box */ }
    }
    return undefined;
  }

  function functionLabel(f) {
    const source = Function.prototype.toString.call(f);
    if (source.startsWith("class")) return `[class ${f.name || "(anonymous)"}]`;
    const kind = f.constructor?.name ?? "Function";
    return f.name ? `[${kind}: ${f.name}]` : `[${kind} (anonymous)]`;
  }

  function errorHead(e) {
    try { return Error.prototype.toString.call(e); } catch { return "Error"; }
  }

  // QuickJS's stack holds only the frames, V8's starts with "Name: message": show both alike.
  function errorText(e) {
    const head = errorHead(e);
    const stack = typeof e.stack === "string" ? e.stack.trimEnd() : "";
    if (!stack) return head;
    return stack.startsWith(head) ? stack : `${head}\n${stack}`;
  }

  // console.log's argument formatting: printf-style substitutions in a leading string, then
  // the other arguments separated by spaces; strings raw, everything else inspected.
  function formatArgs(args) {
    let out = "";
    let next = 0;
    if (typeof args[0] === "string" && args.length > 1 && args[0].includes("%")) {
      [out, next] = substitute(args[0], args);
    } else if (args.length) {
      out = asText(args[0]);
      next = 1;
    }
    for (; next < args.length; next++) out += ` ${asText(args[next])}`;
    return out;
  }

  const asText = (v) => (typeof v === "string" ? v : inspect(v));

  function substitute(format, args) {
    let next = 1;
    const out = format.replace(/%[sdifjoOc%]/g, (spec) => {
      if (spec === "%%") return "%";
      if (next >= args.length) return spec;
      return substitution(spec[1], args[next++]);
    });
    return [out, next];
  }

  function substitution(kind, arg) {
    const numeric = (convert) =>
      typeof arg === "bigint" ? `${arg}n` : typeof arg === "symbol" ? "NaN" : String(convert(arg));
    switch (kind) {
      case "s":
        if (typeof arg === "string") return arg;
        return typeof arg === "object" && arg !== null ? inspect(arg, 1) : asText(arg);
      case "d": return numeric(Number);
      case "i": return numeric(parseInt);
      case "f": return numeric(parseFloat);
      case "j": return safeJson(arg);
      case "c": return "";   // CSS has no meaning in a log line
      default: return inspect(arg);
    }
  }

  function safeJson(v) {
    try { return jsonStringify(v); } catch { return "[Circular]"; }
  }

  // ------------------------------------------------------------------------------ console

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

  // ------------------------------------------------------------------------------ timers

  // Timers run on the driver's clock (__bs.now): the driver advances it and calls
  // __bs.fireDueTimers(), so tests and replays need no real sleeping.
  const timers = new Map();   // id -> {id, due, callback, args, interval (ms) or null}
  let lastTimerId = 0;

  function addTimer(callback, delay, args, repeat) {
    if (typeof callback !== "function") {
      throw new TypeError("Timer callback must be a function (strings are not evaluated)");
    }
    // Whole milliseconds; NaN, negative, missing and infinite delays mean "now" (browsers wrap
    // huge delays around to 0 as well, but a finite one is kept: the driver's clock has room).
    let ms = Math.trunc(Number(delay));
    if (!(ms > 0) || ms === Infinity) ms = 0;
    // A zero interval would be due again at once, forever, without the clock moving.
    if (repeat) ms = Math.max(ms, 1);
    const id = ++lastTimerId;
    timers.set(id, { id, due: bs.now + ms, callback, args, interval: repeat ? ms : null });
    return id;
  }

  function setTimeout(callback, delay = 0, ...args) {
    return addTimer(callback, delay, args, false);
  }

  function setInterval(callback, delay = 0, ...args) {
    return addTimer(callback, delay, args, true);
  }

  // The two clear functions are interchangeable, as in browsers.
  function clearTimeout(id) {
    timers.delete(Number(id));
  }

  function clearInterval(id) {
    timers.delete(Number(id));
  }

  function nextTimerDue() {
    let due = null;
    for (const t of timers.values()) if (due === null || t.due < due) due = t.due;
    return due;
  }

  function fireDueTimers() {
    const now = bs.now;
    // Chosen before any callback runs: timers they add are left for the next call, so a
    // setTimeout(f, 0) chain cannot spin inside one call.
    const due = [...timers.values()].filter((t) => t.due <= now);
    due.sort((a, b) => a.due - b.due || a.id - b.id);
    let fired = 0;
    for (const t of due) {
      if (timers.get(t.id) !== t) continue;   // cleared by an earlier callback
      if (t.interval === null) timers.delete(t.id);
      else t.due = now + t.interval;
      fired++;
      try {
        t.callback.apply(undefined, t.args);
      } catch (error) {
        reportError(error);
      }
    }
    return fired;
  }

  // ------------------------------------------------------------------------------ events

  let setEventTarget;
  let isImmediatelyStopped;

  class Event {
    #type;
    #target = null;
    #bubbles;
    #cancelable;
    #composed;
    #canceled = false;
    #stopped = false;
    #timeStamp = performance.now();

    constructor(type, init = undefined) {
      if (arguments.length === 0) throw new TypeError("Event: the type argument is required");
      this.#type = String(type);
      this.#bubbles = Boolean(init?.bubbles);
      this.#cancelable = Boolean(init?.cancelable);
      this.#composed = Boolean(init?.composed);
    }

    get type() { return this.#type; }
    get target() { return this.#target; }
    get currentTarget() { return this.#target; }
    get srcElement() { return this.#target; }
    get bubbles() { return this.#bubbles; }
    get cancelable() { return this.#cancelable; }
    get composed() { return this.#composed; }
    get defaultPrevented() { return this.#canceled; }
    get timeStamp() { return this.#timeStamp; }
    get isTrusted() { return false; }
    get eventPhase() { return this.#target ? 2 : 0; }
    composedPath() { return this.#target ? [this.#target] : []; }
    preventDefault() { if (this.#cancelable) this.#canceled = true; }
    stopPropagation() {}
    stopImmediatePropagation() { this.#stopped = true; }

    static {
      setEventTarget = (event, target) => { event.#target = target; };
      isImmediatelyStopped = (event) => event.#stopped;
    }
  }

  const listenerOptions = (options) =>
    typeof options === "boolean"
      ? { capture: options, once: false, signal: undefined }
      : { capture: Boolean(options?.capture), once: Boolean(options?.once), signal: options?.signal };

  class EventTarget {
    #listeners = new Map();   // type -> [{callback, capture, once, removed}]

    addEventListener(type, callback, options = undefined) {
      if (callback === null || callback === undefined) return;
      const { capture, once, signal } = listenerOptions(options);
      if (signal !== undefined && !isAbortSignal(signal)) {
        throw new TypeError("addEventListener: options.signal must be an AbortSignal");
      }
      if (signal?.aborted) return;
      const list = this.#listeners.get(String(type)) ?? [];
      if (list.some((l) => l.callback === callback && l.capture === capture)) return;
      list.push({ callback, capture, once, removed: false });
      this.#listeners.set(String(type), list);
      if (signal) onAbort(signal, () => this.removeEventListener(type, callback, { capture }));
    }

    removeEventListener(type, callback, options = undefined) {
      const { capture } = listenerOptions(options);
      const list = this.#listeners.get(String(type)) ?? [];
      const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
      if (i < 0) return;
      list[i].removed = true;
      list.splice(i, 1);
    }

    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: expected an Event");
      setEventTarget(event, this);
      for (const l of [...(this.#listeners.get(event.type) ?? [])]) {
        if (l.removed) continue;
        if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
        invokeListener(this, l.callback, event);
        if (isImmediatelyStopped(event)) break;
      }
      return !event.defaultPrevented;
    }
  }

  // A throwing listener is reported, and the other listeners still run.
  function invokeListener(target, callback, event) {
    try {
      if (typeof callback === "function") callback.call(target, event);
      else if (typeof callback?.handleEvent === "function") callback.handleEvent(event);
    } catch (error) {
      reportError(error);
    }
  }

  // ------------------------------------------------------------------------------ abort

  let signalAbort;
  let onAbort;
  let isAbortSignal;

  const abortError = () => new DOMException("This operation was aborted", "AbortError");

  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason = undefined;
    #onabort = null;
    // Run before the abort event, and invisible to user code (fetch uses them).
    #algorithms = new Set();

    constructor(key) {
      if (key !== INTERNAL) throw new TypeError("Illegal constructor");
      super();
    }

    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    get onabort() { return this.#onabort; }
    set onabort(handler) { this.#onabort = typeof handler === "function" ? handler : null; }

    throwIfAborted() {
      if (this.#aborted) throw this.#reason;
    }

    static abort(reason = undefined) {
      const signal = new AbortSignal(INTERNAL);
      signalAbort(signal, reason);
      return signal;
    }

    static timeout(ms) {
      const signal = new AbortSignal(INTERNAL);
      const timedOut = () =>
        signalAbort(signal, new DOMException("The operation timed out.", "TimeoutError"));
      addTimer(timedOut, ms, [], false);
      return signal;
    }

    static any(signals) {
      const signal = new AbortSignal(INTERNAL);
      const list = [...signals];
      const done = list.find((s) => s.aborted);
      if (done) signalAbort(signal, done.reason);
      else for (const s of list) onAbort(s, () => signalAbort(signal, s.reason));
      return signal;
    }

    static {
      isAbortSignal = (x) => typeof x === "object" && x !== null && #aborted in x;
      onAbort = (signal, algorithm) => {
        signal.#algorithms.add(algorithm);
        return () => signal.#algorithms.delete(algorithm);
      };
      signalAbort = (signal, reason) => {
        if (signal.#aborted) return;
        signal.#aborted = true;
        signal.#reason = reason === undefined ? abortError() : reason;
        const algorithms = [...signal.#algorithms];
        signal.#algorithms.clear();
        for (const algorithm of algorithms) invokeListener(signal, algorithm, undefined);
        const event = new Event("abort");
        setEventTarget(event, signal);
        if (signal.#onabort) invokeListener(signal, signal.#onabort, event);
        signal.dispatchEvent(event);
      };
    }
  }

  class AbortController {
    #signal = new AbortSignal(INTERNAL);
    get signal() { return this.#signal; }
    abort(reason = undefined) { signalAbort(this.#signal, reason); }
  }

  // ------------------------------------------------------------------------------ encoding

  // Writes the UTF-8 of str into out (when given) from index 0, stopping before a character
  // that would pass maxBytes. Returns [code units read, bytes written]. Lone surrogates become
  // U+FFFD, as the USVString conversion of the standard does.
  function utf8Write(str, out, maxBytes) {
    let n = 0;
    let i = 0;
    for (; i < str.length; i++) {
      let c = str.charCodeAt(i);
      let units = 1;
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = str.charCodeAt(i + 1);
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          units = 2;
        } else {
          c = 0xfffd;
        }
      }
      const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (n + size > maxBytes) break;
      if (out) writeCodePoint(out, n, c, size);
      n += size;
      i += units - 1;
    }
    return [i, n];
  }

  function writeCodePoint(out, at, c, size) {
    if (size === 1) {
      out[at] = c;
      return;
    }
    const lead = size === 2 ? 0xc0 : size === 3 ? 0xe0 : 0xf0;
    out[at] = lead | (c >> (6 * (size - 1)));
    for (let k = 1; k < size; k++) out[at + k] = 0x80 | ((c >> (6 * (size - 1 - k))) & 63);
  }

  const isAscii = (s) => !/[^\u0000-\u007f]/.test(s);

  // Per-character loops cost ~0.4 us each in this interpreter, so whole-string work goes
  // through native functions: encodeURIComponent yields the UTF-8 bytes as %XX escapes,
  // unescape turns them into a byte string, and base64 turns that into a Uint8Array.
  const utf8ByteString = (s) => (isAscii(s) ? s : unescape(encodeURIComponent(s.toWellFormed())));

  const utf8Length = (s) => utf8ByteString(s).length;

  function utf8Encode(str) {
    if (nativeBase64) return Uint8Array.fromBase64(btoa(utf8ByteString(str)));
    const out = new Uint8Array(utf8Length(str));
    utf8Write(str, out, out.length);
    return out;
  }

  // The WHATWG UTF-8 decoder: each maximal invalid subsequence becomes one U+FFFD (or a
  // TypeError when fatal). With stream set, an incomplete sequence at the end is not an error:
  // decoding stops before it. Returns [text, index where decoding stopped].
  function utf8Decode(bytes, start, fatal, stream) {
    const fast = start === 0 && !stream ? utf8DecodeNative(bytes) : null;
    if (fast !== null) return [fast, bytes.length];
    const parts = [];
    let units = [];
    let needed = 0, seen = 0, cp = 0, lower = 0x80, upper = 0xbf, sequenceStart = 0;
    const invalid = () => {
      if (fatal) throw new TypeError("The encoded data was not valid utf-8");
      units.push(0xfffd);
    };
    for (let i = start; i < bytes.length; i++) {
      const b = bytes[i];
      if (needed === 0) {
        sequenceStart = i;
        if (b < 0x80) units.push(b);
        else if (b >= 0xc2 && b <= 0xdf) { needed = 1; cp = b & 0x1f; }
        else if (b >= 0xe0 && b <= 0xef) {
          needed = 2; cp = b & 0xf;
          if (b === 0xe0) lower = 0xa0; else if (b === 0xed) upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          needed = 3; cp = b & 7;
          if (b === 0xf0) lower = 0x90; else if (b === 0xf4) upper = 0x8f;
        } else invalid();
      } else if (b < lower || b > upper) {
        needed = seen = 0; lower = 0x80; upper = 0xbf;
        invalid();
        i--;   // this byte may start the next sequence
      } else {
        lower = 0x80; upper = 0xbf;
        cp = (cp << 6) | (b & 0x3f);
        if (++seen === needed) {
          if (cp < 0x10000) units.push(cp);
          else units.push(0xd7c0 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
          needed = seen = 0;
        }
      }
      if (units.length >= 8192) {
        parts.push(String.fromCharCode.apply(null, units));
        units = [];
      }
    }
    let end = bytes.length;
    if (needed && stream) end = sequenceStart;
    else if (needed) invalid();
    parts.push(String.fromCharCode.apply(null, units));
    return [parts.join(""), end];
  }

  // Native code is far faster than the loop above; it refuses every invalid input (overlongs
  // and surrogates included), which then takes the exact path above.
  function utf8DecodeNative(bytes) {
    try {
      return decodeURIComponent(escape(nativeBase64 ? atob(bytes.toBase64()) : binaryString(bytes)));
    } catch {
      return null;
    }
  }

  class TextEncoder {
    get encoding() { return "utf-8"; }

    encode(input = "") {
      return utf8Encode(String(input));
    }

    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) {
        throw new TypeError("TextEncoder.encodeInto: the destination must be a Uint8Array");
      }
      const [read, written] = utf8Write(String(source), destination, destination.length);
      return { read, written };
    }
  }

  const UTF8_LABELS = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8",
    "x-unicode20utf8"];

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    #pending = null;   // an incomplete sequence kept between stream calls
    #atStart = true;

    constructor(label = "utf-8", options = undefined) {
      if (!UTF8_LABELS.includes(String(label).trim().toLowerCase())) {
        throw new RangeError(`TextDecoder: the encoding "${label}" is not supported (utf-8 only)`);
      }
      this.#fatal = Boolean(options?.fatal);
      this.#ignoreBOM = Boolean(options?.ignoreBOM);
    }

    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }

    decode(input = undefined, options = undefined) {
      const stream = Boolean(options?.stream);
      let bytes = input === undefined ? new Uint8Array(0) : viewBytes(input, "TextDecoder input");
      if (this.#pending) bytes = concatBytes(this.#pending, bytes);
      this.#pending = null;
      const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
      const start = this.#atStart && bom && !this.#ignoreBOM ? 3 : 0;
      this.#atStart = !stream;
      const [text, end] = utf8Decode(bytes, start, this.#fatal, stream);
      if (end < bytes.length) this.#pending = bytes.slice(end);
      return text;
    }
  }

  // ------------------------------------------------------------------------------ URLSearchParams

  // application/x-www-form-urlencoded, as URLSearchParams and form bodies use it.
  const FORM_UNSAFE = /[^A-Za-z0-9*\-._ ]/gu;

  const percentEncodeChar = (ch) =>
    Array.from(utf8Encode(ch), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");

  const formEncode = (s) =>
    String(s).toWellFormed().replace(FORM_UNSAFE, percentEncodeChar).replace(/ /g, "+");

  // Percent-decoding works on bytes: "%C3%A9" is one character. Invalid escapes stay literal.
  function percentDecode(s) {
    if (!s.includes("%")) return s;
    const bytes = utf8Encode(s);
    const out = new Uint8Array(bytes.length);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      const hex = bytes[i] === 0x25 ? String.fromCharCode(bytes[i + 1], bytes[i + 2]) : "";
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[n++] = parseInt(hex, 16);
        i += 2;
      } else {
        out[n++] = bytes[i];
      }
    }
    return utf8Decode(out.subarray(0, n), 0, false, false)[0];
  }

  function parseForm(query) {
    const list = [];
    for (const pair of query.split("&")) {
      if (!pair) continue;
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? "" : pair.slice(eq + 1);
      list.push([percentDecode(name.replace(/\+/g, " ")), percentDecode(value.replace(/\+/g, " "))]);
    }
    return list;
  }

  let resetParams;
  let linkParams;

  class URLSearchParams {
    #list = [];
    #url = null;   // the URL whose query this object mirrors, if any

    constructor(init = "") {
      if (init instanceof URLSearchParams) this.#list = init.#list.map(([k, v]) => [k, v]);
      else if (init === null || init === undefined) this.#list = [];
      else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        this.#list = [...init].map(pairOf);
      } else if (typeof init === "object") {
        this.#list = Object.keys(init).map((k) => [k, String(init[k])]);
      } else {
        this.#list = parseForm(String(init).replace(/^\?/, ""));
      }
    }

    get size() { return this.#list.length; }

    append(name, value) {
      this.#list.push([String(name), String(value)]);
      this.#update();
    }

    delete(name, value = undefined) {
      const n = String(name);
      const v = value === undefined ? undefined : String(value);
      this.#list = this.#list.filter(([k, x]) => k !== n || (v !== undefined && x !== v));
      this.#update();
    }

    get(name) {
      const n = String(name);
      return this.#list.find(([k]) => k === n)?.[1] ?? null;
    }

    getAll(name) {
      const n = String(name);
      return this.#list.filter(([k]) => k === n).map(([, v]) => v);
    }

    has(name, value = undefined) {
      const n = String(name);
      const v = value === undefined ? undefined : String(value);
      return this.#list.some(([k, x]) => k === n && (v === undefined || x === v));
    }

    set(name, value) {
      const n = String(name);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, String(value)]);
      else {
        this.#list[i] = [n, String(value)];
        this.#list = this.#list.filter(([k], j) => k !== n || j === i);
      }
      this.#update();
    }

    sort() {
      // Array.prototype.sort is stable; names compare by UTF-16 code units, as specified.
      this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      this.#update();
    }

    forEach(callback, thisArg = undefined) {
      for (const [k, v] of this.#list) callback.call(thisArg, v, k, this);
    }

    *entries() { for (const [k, v] of this.#list) yield [k, v]; }
    *keys() { for (const [k] of this.#list) yield k; }
    *values() { for (const [, v] of this.#list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }

    toString() {
      return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&");
    }

    [INSPECT](item) {
      return braces("URLSearchParams ", "{", this.#list.map(([k, v]) => `${item(k)} => ${item(v)}`), "}");
    }

    #update() {
      if (this.#url) setUrlQuery(this.#url, this.toString());
    }

    static {
      resetParams = (params, query) => { params.#list = query ? parseForm(query) : []; };
      linkParams = (params, url) => { params.#url = url; };
    }
  }

  function pairOf(pair) {
    const items = typeof pair === "string" ? null : [...pair];
    if (!items || items.length !== 2) {
      throw new TypeError("URLSearchParams: each pair must have exactly two items");
    }
    return [String(items[0]), String(items[1])];
  }

  // ------------------------------------------------------------------------------ URL parsing

  // A compact WHATWG URL parser. The input is split into [pre]?query#fragment first (no
  // earlier part may contain an unencoded "?" or "#"), then pre is scheme, authority and path.
  // Not covered: Windows drive letters in file: URLs and the full UTS #46 mapping of domain
  // names (hosts are lowercased, NFC-normalized and Punycode-encoded).
  const SPECIAL_PORTS = { ftp: "21", file: "", http: "80", https: "443", ws: "80", wss: "443" };
  const isSpecial = (scheme) => Object.hasOwn(SPECIAL_PORTS, scheme);

  const C0 = "\\u0000-\\u001f\\u007f-\\u{10ffff}";
  const C0_SET = new RegExp(`[${C0}]`, "gu");
  const FRAGMENT_SET = new RegExp(`[${C0} "<>\`]`, "gu");
  const QUERY_SET = new RegExp(`[${C0} "#<>]`, "gu");
  const SPECIAL_QUERY_SET = new RegExp(`[${C0} "#<>']`, "gu");
  const PATH_SET = new RegExp(`[${C0} "#<>?\`{}]`, "gu");
  const USERINFO_SET = new RegExp(`[${C0} "#<>?\`{}/:;=@\\[\\\\\\]^|]`, "gu");
  const FORBIDDEN_HOST = /[\u0000\t\n\r #/:<>?@[\\\]^|]/;
  const FORBIDDEN_DOMAIN = /[\u0000-\u0020#%/:<>?@[\\\]^|\u007f]/;

  const pctEncode = (s, set) => s.replace(set, percentEncodeChar);

  // Thrown inside the parser only; parseURL turns it into null.
  const FAILURE = Symbol("invalid URL");
  const fail = () => { throw FAILURE; };

  function parseURL(input, base) {
    try {
      return parseURLOrThrow(input, base);
    } catch (error) {
      if (error === FAILURE) return null;
      throw error;
    }
  }

  function parseURLOrThrow(input, base) {
    let s = String(input).toWellFormed()
      .replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "")
      .replace(/[\t\n\r]/g, "");
    let fragment = null;
    let query = null;
    const hash = s.indexOf("#");
    if (hash >= 0) [s, fragment] = [s.slice(0, hash), s.slice(hash + 1)];
    const mark = s.indexOf("?");
    if (mark >= 0) [s, query] = [s.slice(0, mark), s.slice(mark + 1)];
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s);
    let url;
    if (scheme) url = parseWithScheme(scheme[1].toLowerCase(), s.slice(scheme[0].length), base, query);
    else if (base) url = parseRelative(s, base, query, fragment);
    else fail();
    if (query !== null) url.query = pctEncode(query, isSpecial(url.scheme) ? SPECIAL_QUERY_SET : QUERY_SET);
    url.fragment = fragment === null ? null : pctEncode(fragment, FRAGMENT_SET);
    return url;
  }

  function parseWithScheme(scheme, rest, base, query) {
    if (scheme === "file") return parseFile(rest, base);
    if (isSpecial(scheme)) {
      // "http:foo" and "http:/foo" against an http: base are relative, as in browsers.
      if (base?.scheme === scheme && !/^[/\\]{2}/.test(rest)) return parseRelative(rest, base, query, null);
      return parseAuthorityAndPath(scheme, rest.replace(/^[/\\]+/, ""));
    }
    if (rest.startsWith("//")) return parseAuthorityAndPath(scheme, rest.slice(2));
    if (rest.startsWith("/")) return urlRecord(scheme, {}, parsePath(rest, false, []));
    return urlRecord(scheme, {}, pctEncode(rest, C0_SET));   // an opaque path (mailto:, data:, urn:)
  }

  // A URL record; path is a list of segments, or a string for an opaque path.
  const urlRecord = (scheme, authority, path) => ({
    scheme,
    username: authority.username ?? "",
    password: authority.password ?? "",
    host: authority.host ?? null,
    port: authority.port ?? "",
    path,
    query: null,
    fragment: null,
  });

  const authorityOf = (url) =>
    ({ username: url.username, password: url.password, host: url.host, port: url.port });

  function parseAuthorityAndPath(scheme, rest) {
    const special = isSpecial(scheme);
    const end = rest.search(special ? /[/\\]/ : /\//);
    const authority = parseAuthority(end < 0 ? rest : rest.slice(0, end), scheme);
    if (special && authority.host === "") fail();
    const path = end < 0 ? (special ? [""] : []) : parsePath(rest.slice(end), special, []);
    return urlRecord(scheme, authority, path);
  }

  function parseAuthority(text, scheme) {
    const at = text.lastIndexOf("@");
    const out = { username: "", password: "" };
    if (at >= 0) {
      const userinfo = text.slice(0, at);
      const colon = userinfo.indexOf(":");
      out.username = pctEncode(colon < 0 ? userinfo : userinfo.slice(0, colon), USERINFO_SET);
      out.password = colon < 0 ? "" : pctEncode(userinfo.slice(colon + 1), USERINFO_SET);
    }
    const [host, port] = splitHostPort(text.slice(at + 1));
    if (at >= 0 && !host) fail();
    out.host = parseHost(host, isSpecial(scheme));
    out.port = parsePort(port, scheme);
    return out;
  }

  function splitHostPort(text) {
    const close = text.startsWith("[") ? text.indexOf("]") : -1;
    const colon = text.indexOf(":", close < 0 ? 0 : close);
    return colon < 0 ? [text, ""] : [text.slice(0, colon), text.slice(colon + 1)];
  }

  function parsePort(text, scheme) {
    if (text === "") return "";
    if (!/^\d+$/.test(text)) fail();
    const n = parseInt(text, 10);
    if (n > 65535) fail();
    return String(n) === SPECIAL_PORTS[scheme] ? "" : String(n);
  }

  // The path state: "." and ".." segments (also percent-encoded) are resolved against segs.
  function parsePath(text, special, segs) {
    const parts = (special ? text.replace(/\\/g, "/") : text).split("/");
    if (text.startsWith("/") || (special && text.startsWith("\\"))) parts.shift();
    parts.forEach((raw, i) => {
      const last = i === parts.length - 1;
      const seg = raw.toLowerCase();
      if (seg === ".." || seg === ".%2e" || seg === "%2e." || seg === "%2e%2e") {
        segs.pop();
        if (last) segs.push("");
      } else if (seg === "." || seg === "%2e") {
        if (last) segs.push("");
      } else {
        segs.push(pctEncode(raw, PATH_SET));
      }
    });
    return segs;
  }

  function parseRelative(pre, base, query, fragment) {
    if (typeof base.path === "string") {
      // Only a fragment can be resolved against an opaque path ("mailto:x" + "#y").
      if (pre !== "" || query !== null || fragment === null) fail();
      return { ...base, fragment: null };
    }
    const special = isSpecial(base.scheme);
    const slash = special ? /^[/\\]/ : /^\//;
    const twoSlashes = special ? /^[/\\]{2}/ : /^\/\//;
    if (twoSlashes.test(pre)) return parseAuthorityAndPath(base.scheme, pre.slice(2));
    const url = urlRecord(base.scheme, authorityOf(base), null);
    if (slash.test(pre)) url.path = parsePath(pre, special, []);
    else if (pre === "") {
      url.path = [...base.path];
      url.query = base.query;   // kept unless the input has its own query
    } else url.path = parsePath(pre, special, base.path.slice(0, -1));
    return url;
  }

  function parseFile(rest, base) {
    const text = rest.replace(/\\/g, "/");
    if (text.startsWith("//")) {
      const end = text.indexOf("/", 2);
      const hostText = end < 0 ? text.slice(2) : text.slice(2, end);
      const host = hostText === "" ? "" : parseHost(hostText, true);
      const path = parsePath(end < 0 ? "/" : text.slice(end), true, []);
      return urlRecord("file", { host: host === "localhost" ? "" : host }, path);
    }
    if (base?.scheme === "file" && !text.startsWith("/")) {
      return parseRelative(text, base, null, null);
    }
    return urlRecord("file", { host: "" }, parsePath(text || "/", true, []));
  }

  // ------------------------------------------------------------------------------ URL hosts

  function parseHost(text, special) {
    if (text.startsWith("[")) {
      if (!text.endsWith("]")) fail();
      return `[${serializeIPv6(parseIPv6(text.slice(1, -1)))}]`;
    }
    if (!special) {
      if (FORBIDDEN_HOST.test(text)) fail();
      return pctEncode(text, C0_SET);
    }
    const domain = domainToASCII(percentDecode(text));
    if (domain === "" || FORBIDDEN_DOMAIN.test(domain)) fail();
    return endsInNumber(domain) ? serializeIPv4(parseIPv4(domain)) : domain;
  }

  function domainToASCII(domain) {
    const labels = domain.normalize("NFC").toLowerCase().split(/[.\u3002\uff0e\uff61]/);
    return labels.map((l) => (isAscii(l) ? l : `xn--${punycode(l)}`)).join(".");
  }

  // RFC 3492 encoding of one label.
  function punycode(label) {
    const cps = Array.from(label, (c) => c.codePointAt(0));
    const basic = cps.filter((c) => c < 0x80);
    let out = String.fromCharCode(...basic) + (basic.length ? "-" : "");
    let n = 128, delta = 0, bias = 72, handled = basic.length;
    while (handled < cps.length) {
      const m = Math.min(...cps.filter((c) => c >= n));
      delta += (m - n) * (handled + 1);
      n = m;
      for (const c of cps) {
        if (c < n) delta++;
        if (c !== n) continue;
        let q = delta;
        for (let k = 36; ; k += 36) {
          const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
          if (q < t) break;
          out += punycodeDigit(t + ((q - t) % (36 - t)));
          q = Math.floor((q - t) / (36 - t));
        }
        out += punycodeDigit(q);
        bias = punycodeBias(delta, handled + 1, handled === basic.length);
        delta = 0;
        handled++;
      }
      delta++;
      n++;
    }
    return out;
  }

  const punycodeDigit = (d) => String.fromCharCode(d < 26 ? 97 + d : 22 + d);

  function punycodeBias(delta, points, first) {
    let d = first ? Math.floor(delta / 700) : delta >> 1;
    d += Math.floor(d / points);
    let k = 0;
    for (; d > 455; k += 36) d = Math.floor(d / 35);
    return k + Math.floor((36 * d) / (d + 38));
  }

  function endsInNumber(domain) {
    const labels = domain.split(".");
    if (labels.at(-1) === "" && labels.length > 1) labels.pop();
    const last = labels.at(-1);
    return /^\d+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
  }

  // IPv4 in the WHATWG forms: 1 to 4 parts, each decimal, octal (0...) or hex (0x...).
  function parseIPv4(text) {
    const parts = text.split(".");
    if (parts.at(-1) === "" && parts.length > 1) parts.pop();
    if (parts.length > 4) fail();
    const nums = parts.map(parseIPv4Number);
    const last = nums.pop();
    if (nums.some((x) => x > 255) || last >= 256 ** (4 - nums.length)) fail();
    return nums.reduce((acc, x, i) => acc + x * 256 ** (3 - i), last);
  }

  function parseIPv4Number(text) {
    let radix = 10;
    let digits = text;
    if (/^0x/i.test(text)) [radix, digits] = [16, text.slice(2)];
    else if (text.length > 1 && text.startsWith("0")) [radix, digits] = [8, text.slice(1)];
    if (digits === "") return text === "" ? fail() : 0;
    const valid = { 8: /^[0-7]+$/, 10: /^\d+$/, 16: /^[0-9a-f]+$/i }[radix];
    if (!valid.test(digits)) fail();
    return parseInt(digits, radix);
  }

  const serializeIPv4 = (n) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

  // The IPv6 parser of the URL standard, into eight 16-bit pieces.
  function parseIPv6(text) {
    const pieces = [0, 0, 0, 0, 0, 0, 0, 0];
    let piece = 0, compress = null, i = 0;
    const isHex = (c) => /^[0-9a-f]$/i.test(c ?? "");
    if (text[0] === ":") {
      if (text[1] !== ":") fail();
      i = 2;
      compress = ++piece;
    }
    while (i < text.length) {
      if (piece === 8) fail();
      if (text[i] === ":") {
        if (compress !== null) fail();
        i++;
        compress = ++piece;
        continue;
      }
      let value = 0, length = 0;
      while (length < 4 && isHex(text[i])) {
        value = value * 16 + parseInt(text[i], 16);
        i++;
        length++;
      }
      if (text[i] === ".") {
        if (length === 0 || piece > 6) fail();
        piece = parseEmbeddedIPv4(text.slice(i - length), pieces, piece);
        i = text.length;
        break;
      }
      if (text[i] === ":") {
        i++;
        if (i === text.length) fail();
      } else if (i < text.length) fail();
      pieces[piece++] = value;
    }
    return placeCompressed(pieces, piece, compress);
  }

  function parseEmbeddedIPv4(text, pieces, piece) {
    const parts = text.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || +p > 255)) fail();
    pieces[piece] = +parts[0] * 256 + +parts[1];
    pieces[piece + 1] = +parts[2] * 256 + +parts[3];
    return piece + 2;
  }

  function placeCompressed(pieces, count, compress) {
    if (compress === null) {
      if (count !== 8) fail();
      return pieces;
    }
    const tail = pieces.slice(compress, count);
    const out = [...pieces.slice(0, compress), ...new Array(8 - count).fill(0), ...tail];
    return out.slice(0, 8);
  }

  // Lowercase hex, the first longest run of two or more zero pieces written "::".
  function serializeIPv6(pieces) {
    let best = -1, bestLength = 1;
    for (let i = 0; i < 8; i++) {
      let j = i;
      while (j < 8 && pieces[j] === 0) j++;
      if (j - i > bestLength) [best, bestLength] = [i, j - i];
    }
    const hex = pieces.map((p) => p.toString(16));
    if (best < 0) return hex.join(":");
    return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
  }

  // ------------------------------------------------------------------------------ URL

  const pathnameOf = (u) => (typeof u.path === "string" ? u.path : u.path.map((s) => `/${s}`).join(""));

  function serializeURL(u, withFragment = true) {
    let out = `${u.scheme}:`;
    if (u.host !== null) {
      out += "//";
      if (u.username || u.password) out += `${u.username}${u.password ? `:${u.password}` : ""}@`;
      out += u.host + (u.port ? `:${u.port}` : "");
    } else if (typeof u.path !== "string" && u.path.length > 1 && u.path[0] === "") {
      out += "/.";   // keeps "web+x:/.//p" from reading as an authority
    }
    out += pathnameOf(u);
    if (u.query !== null) out += `?${u.query}`;
    if (withFragment && u.fragment !== null) out += `#${u.fragment}`;
    return out;
  }

  function originOf(u) {
    if (u.scheme === "blob") {
      const inner = parseURL(pathnameOf(u), null);
      return inner && /^https?$/.test(inner.scheme) ? originOf(inner) : "null";
    }
    if (!isSpecial(u.scheme) || u.scheme === "file") return "null";
    return `${u.scheme}://${u.host}${u.port ? `:${u.port}` : ""}`;
  }

  let setUrlQuery;

  class URL {
    #u;
    #params = new URLSearchParams();

    constructor(url, base = undefined) {
      this.#u = parseOrThrow(url, base);
      linkParams(this.#params, this);
      resetParams(this.#params, this.#u.query);
    }

    static canParse(url, base = undefined) {
      return URL.parse(url, base) !== null;
    }

    static parse(url, base = undefined) {
      try { return new URL(url, base); } catch { return null; }
    }

    get href() { return serializeURL(this.#u); }
    set href(value) {
      this.#u = parseOrThrow(value, undefined);
      resetParams(this.#params, this.#u.query);
    }

    get origin() { return originOf(this.#u); }
    get protocol() { return `${this.#u.scheme}:`; }
    set protocol(value) {
      const m = /^([A-Za-z][A-Za-z0-9+.-]*)/.exec(String(value));
      const scheme = m?.[1].toLowerCase();
      if (!scheme || isSpecial(scheme) !== isSpecial(this.#u.scheme)) return;
      if (scheme === "file" && (this.#u.username || this.#u.password || this.#u.port)) return;
      this.#u.scheme = scheme;
      if (this.#u.port === SPECIAL_PORTS[scheme]) this.#u.port = "";
    }

    get username() { return this.#u.username; }
    set username(value) {
      if (this.#hasCredentialsSlot()) this.#u.username = pctEncode(String(value), USERINFO_SET);
    }

    get password() { return this.#u.password; }
    set password(value) {
      if (this.#hasCredentialsSlot()) this.#u.password = pctEncode(String(value), USERINFO_SET);
    }

    get host() {
      const { host, port } = this.#u;
      return host === null ? "" : host + (port ? `:${port}` : "");
    }
    set host(value) { this.#setHost(String(value), true); }

    get hostname() { return this.#u.host ?? ""; }
    set hostname(value) { this.#setHost(String(value), false); }

    get port() { return this.#u.port; }
    set port(value) {
      if (!this.#hasCredentialsSlot()) return;
      const digits = /^\d*/.exec(String(value))[0];
      if (String(value) !== "" && digits === "") return;
      this.#tryUpdate(() => { this.#u.port = parsePort(digits, this.#u.scheme); });
    }

    get pathname() { return pathnameOf(this.#u); }
    set pathname(value) {
      if (typeof this.#u.path === "string") return;
      this.#u.path = parsePath(String(value), isSpecial(this.#u.scheme), []);
      if (isSpecial(this.#u.scheme) && this.#u.path.length === 0) this.#u.path = [""];
    }

    get search() { return this.#u.query ? `?${this.#u.query}` : ""; }
    set search(value) {
      const q = String(value).replace(/^\?/, "");
      const set = isSpecial(this.#u.scheme) ? SPECIAL_QUERY_SET : QUERY_SET;
      this.#u.query = String(value) === "" ? null : pctEncode(q, set);
      resetParams(this.#params, this.#u.query);
    }

    get searchParams() { return this.#params; }

    get hash() { return this.#u.fragment ? `#${this.#u.fragment}` : ""; }
    set hash(value) {
      const f = String(value).replace(/^#/, "");
      this.#u.fragment = String(value) === "" ? null : pctEncode(f, FRAGMENT_SET);
    }

    toString() { return this.href; }
    toJSON() { return this.href; }
    get [Symbol.toStringTag]() { return "URL"; }

    [INSPECT](item) {
      const fields = ["href", "origin", "protocol", "username", "password", "host", "hostname",
        "port", "pathname", "search", "searchParams", "hash"];
      return braces("URL ", "{", fields.map((f) => `${f}: ${item(this[f])}`), "}");
    }

    #hasCredentialsSlot() {
      return this.#u.host !== null && this.#u.host !== "" && this.#u.scheme !== "file";
    }

    // Setters fail silently on invalid input, as the standard says; parse into a copy.
    #tryUpdate(update) {
      const saved = { ...this.#u };
      try {
        update();
      } catch (error) {
        if (error !== FAILURE) throw error;
        this.#u = saved;
      }
    }

    #setHost(value, withPort) {
      if (typeof this.#u.path === "string") return;
      const [host, port] = withPort ? splitHostPort(value) : [value, null];
      if (host === "" && isSpecial(this.#u.scheme)) return;
      this.#tryUpdate(() => {
        this.#u.host = parseHost(host, isSpecial(this.#u.scheme));
        if (port) this.#u.port = parsePort(port, this.#u.scheme);
      });
    }

    static {
      setUrlQuery = (url, query) => { url.#u.query = query === "" ? null : query; };
    }
  }

  function parseOrThrow(url, base) {
    let baseRecord = null;
    if (base !== undefined) {
      baseRecord = parseURL(String(base), null);
      if (!baseRecord) throw new TypeError(`Invalid base URL: ${base}`);
    }
    const u = parseURL(String(url), baseRecord);
    if (!u) throw new TypeError(`Invalid URL: ${url}`);
    return u;
  }

  // ------------------------------------------------------------------------------ Headers

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  function headerName(name) {
    const n = String(name);
    if (!TOKEN.test(n)) throw new TypeError(`Headers: invalid header name "${n}"`);
    return n.toLowerCase();
  }

  function headerValue(value) {
    const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]|[^\u0000-\u00ff]/.test(v)) {
      throw new TypeError(`Headers: invalid header value "${v}"`);
    }
    return v;
  }

  let headerList;
  let headersFromList;

  class Headers {
    #list = [];   // [lowercase name, value] in insertion order

    constructor(init = undefined) {
      if (init instanceof Headers) this.#list = init.#list.map(([k, v]) => [k, v]);
      else if (init === null || init === undefined) return;
      else if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) this.append(...pairOf(pair));
      } else if (typeof init === "object") {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      } else {
        throw new TypeError("Headers: init must be a Headers, a list of pairs or a record");
      }
    }

    append(name, value) { this.#list.push([headerName(name), headerValue(value)]); }

    delete(name) {
      const n = headerName(name);
      this.#list = this.#list.filter(([k]) => k !== n);
    }

    get(name) {
      const values = this.#valuesOf(headerName(name));
      return values.length ? values.join(", ") : null;
    }

    getSetCookie() { return this.#valuesOf("set-cookie"); }

    has(name) {
      const n = headerName(name);
      return this.#list.some(([k]) => k === n);
    }

    set(name, value) {
      const n = headerName(name);
      const v = headerValue(value);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, v]);
      else this.#list = this.#list.filter(([k], j) => k !== n || j === i).map((p) => (p[0] === n ? [n, v] : p));
    }

    forEach(callback, thisArg = undefined) {
      for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
    }

    // Sorted by name, values of one name combined (set-cookie kept apart), as specified.
    *entries() {
      const names = [...new Set(this.#list.map(([k]) => k))].sort();
      for (const name of names) {
        if (name === "set-cookie") for (const v of this.#valuesOf(name)) yield [name, v];
        else yield [name, this.#valuesOf(name).join(", ")];
      }
    }

    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }

    [INSPECT](item) {
      return braces("Headers ", "{", [...this.entries()].map(([k, v]) => `${keyLabel(k)}: ${item(v)}`), "}");
    }

    #valuesOf(name) {
      return this.#list.filter(([k]) => k === name).map(([, v]) => v);
    }

    static {
      headerList = (headers) => headers.#list.map(([k, v]) => [k, v]);
      // Trusted input from the host: no validation, so an odd server header cannot break a fetch.
      headersFromList = (list) => {
        const headers = new Headers();
        headers.#list = list.map(([k, v]) => [String(k).toLowerCase(), String(v)]);
        return headers;
      };
    }
  }

  // ------------------------------------------------------------------------------ bodies

  // Body extraction: the bytes and the Content-Type a body implies.
  function extractBody(body) {
    if (body === null || body === undefined) return { bytes: null, type: null };
    if (typeof body === "string") return { bytes: utf8Encode(body), type: "text/plain;charset=UTF-8" };
    if (body instanceof URLSearchParams) {
      return { bytes: utf8Encode(body.toString()), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    }
    if (isBuffer(body) || ArrayBuffer.isView(body)) return { bytes: viewBytes(body).slice(), type: null };
    return { bytes: utf8Encode(String(body)), type: "text/plain;charset=UTF-8" };
  }

  let bodyBytes;
  let setBodyBytes;

  // The Body mixin of Request and Response. Bodies are whole byte arrays (no streams).
  class Body {
    #bytes = null;
    #used = false;

    get bodyUsed() { return this.#used; }

    arrayBuffer() { return this.#consume((b) => copyToBuffer(b)); }
    bytes() { return this.#consume((b) => b.slice()); }
    text() { return this.#consume((b) => utf8Decode(b, hasBOM(b) ? 3 : 0, false, false)[0]); }
    json() { return this.text().then((t) => jsonParse(t)); }

    formData() {
      return Promise.reject(new TypeError("backstate: Body.formData() is not supported"));
    }

    #consume(convert) {
      if (this.#used) return Promise.reject(new TypeError("Body is unusable: Body has already been read"));
      this.#used = this.#bytes !== null;
      const bytes = this.#bytes ?? new Uint8Array(0);
      return new Promise((resolve) => resolve(convert(bytes)));
    }

    static {
      bodyBytes = (body) => body.#bytes;
      setBodyBytes = (body, bytes) => { body.#bytes = bytes; };
    }
  }

  const hasBOM = (b) => b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

  function cloneBody(source, target) {
    if (source.bodyUsed) throw new TypeError("clone: the body has already been read");
    const bytes = bodyBytes(source);
    setBodyBytes(target, bytes && bytes.slice());
    return target;
  }

  // ------------------------------------------------------------------------------ Response

  const NULL_BODY_STATUS = [101, 103, 204, 205, 304];

  let initResponse;

  class Response extends Body {
    #status = 200;
    #statusText = "";
    #headers;
    #type = "default";
    #url = "";
    #redirected = false;

    constructor(body = null, init = undefined) {
      super();
      const status = init?.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: status ${init?.status} is not in the range 200 to 599`);
      }
      this.#status = status;
      this.#statusText = init?.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init?.headers);
      if (body === null || body === undefined) return;
      if (NULL_BODY_STATUS.includes(status)) {
        throw new TypeError(`Response: a response with status ${status} cannot have a body`);
      }
      const { bytes, type } = extractBody(body);
      setBodyBytes(this, bytes);
      if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
    }

    static json(data, init = undefined) {
      const text = jsonStringify(data);
      if (text === undefined) throw new TypeError("Response.json: the data is not JSON-serializable");
      const headers = new Headers(init?.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { status: init?.status, statusText: init?.statusText, headers });
    }

    static error() {
      const response = new Response(null);
      initResponse(response, { status: 0, type: "error" });
      return response;
    }

    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) {
        throw new RangeError(`Response.redirect: ${status} is not a redirect status`);
      }
      const response = new Response(null, { status });
      response.headers.set("location", new URL(url).href);
      return response;
    }

    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get headers() { return this.#headers; }
    get type() { return this.#type; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get [Symbol.toStringTag]() { return "Response"; }

    clone() {
      const copy = new Response(null);
      initResponse(copy, {
        status: this.#status, statusText: this.#statusText, headers: new Headers(this.#headers),
        type: this.#type, url: this.#url, redirected: this.#redirected,
      });
      return cloneBody(this, copy);
    }

    [INSPECT](item) {
      const fields = ["status", "statusText", "ok", "url", "redirected", "type", "headers", "bodyUsed"];
      return braces("Response ", "{", fields.map((f) => `${f}: ${item(this[f])}`), "}");
    }

    static {
      initResponse = (r, fields) => {
        if ("status" in fields) r.#status = fields.status;
        if ("statusText" in fields) r.#statusText = fields.statusText;
        if ("headers" in fields) r.#headers = fields.headers;
        if ("type" in fields) r.#type = fields.type;
        if ("url" in fields) r.#url = fields.url;
        if ("redirected" in fields) r.#redirected = fields.redirected;
      };
    }
  }

  // ------------------------------------------------------------------------------ Request

  const NORMALIZED_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  const FORBIDDEN_METHODS = ["CONNECT", "TRACE", "TRACK"];

  function requestMethod(method) {
    const m = String(method);
    if (!TOKEN.test(m)) throw new TypeError(`Request: "${m}" is not a valid HTTP method`);
    const upper = m.toUpperCase();
    if (FORBIDDEN_METHODS.includes(upper)) throw new TypeError(`Request: method ${m} is forbidden`);
    // Only these six are uppercased; "patch" stays as written, as the Fetch standard says.
    return NORMALIZED_METHODS.includes(upper) ? upper : m;
  }

  // There is no document, so a relative URL has nothing to resolve against.
  function requestURL(input) {
    const url = parseURL(String(input), null);
    if (!url) throw new TypeError(`Request: invalid URL "${input}" (relative URLs have no base here)`);
    if (url.username || url.password) {
      throw new TypeError("Request: a URL with credentials is not allowed; use an Authorization header");
    }
    return serializeURL(url);
  }

  class Request extends Body {
    #url;
    #method;
    #headers;
    #signal;
    #redirect;

    constructor(input, init = undefined) {
      super();
      const source = input instanceof Request ? input : null;
      this.#url = source ? source.url : requestURL(input);
      this.#method = init?.method !== undefined ? requestMethod(init.method) : source?.method ?? "GET";
      this.#headers = new Headers(init?.headers !== undefined ? init.headers : source?.headers);
      this.#signal = requestSignal(init?.signal !== undefined ? init.signal : source?.signal);
      this.#redirect = init?.redirect ?? source?.redirect ?? "follow";
      this.#initBody(source, init);
    }

    #initBody(source, init) {
      let bytes = null;
      if (init?.body !== undefined && init.body !== null) {
        const extracted = extractBody(init.body);
        bytes = extracted.bytes;
        if (extracted.type && !this.#headers.has("content-type")) {
          this.#headers.set("content-type", extracted.type);
        }
      } else if (source && init?.body === undefined) {
        if (source.bodyUsed) throw new TypeError("Request: the source request's body was already read");
        bytes = bodyBytes(source);
      }
      if (bytes !== null && (this.#method === "GET" || this.#method === "HEAD")) {
        throw new TypeError(`Request: a ${this.#method} request cannot have a body`);
      }
      setBodyBytes(this, bytes);
    }

    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get signal() { return this.#signal; }
    get redirect() { return this.#redirect; }
    get credentials() { return "same-origin"; }
    get mode() { return "cors"; }
    get cache() { return "default"; }
    get destination() { return ""; }
    get referrer() { return "about:client"; }
    get [Symbol.toStringTag]() { return "Request"; }

    clone() {
      return cloneBody(this, new Request(this, { body: null }));
    }

    [INSPECT](item) {
      const fields = ["method", "url", "headers", "redirect", "bodyUsed"];
      return braces("Request ", "{", fields.map((f) => `${f}: ${item(this[f])}`), "}");
    }
  }

  function requestSignal(signal) {
    if (signal === undefined || signal === null) return new AbortController().signal;
    if (!isAbortSignal(signal)) throw new TypeError("Request: init.signal must be an AbortSignal");
    return signal;
  }

  // ------------------------------------------------------------------------------ fetch

  // fetch() queues the request; the driver takes it (__bs.takeFetches), performs it, and
  // settles it with __bs.fetchDone or __bs.fetchFailed.
  const fetches = new Map();   // id -> {resolve, reject, url, unlisten, taken}
  let fetchQueue = [];
  let abortedTaken = [];
  let lastFetchId = 0;

  function fetch(input, init = undefined) {
    return new Promise((resolve, reject) => {
      const request = new Request(input, init);
      const signal = request.signal;
      if (signal.aborted) return reject(signal.reason);
      const id = ++lastFetchId;
      const bytes = bodyBytes(request);
      const url = request.url.split("#")[0];   // the fragment never leaves the client
      const entry = { resolve, reject, url, taken: false, unlisten: null };
      fetches.set(id, entry);
      fetchQueue.push({
        id,
        url,
        method: request.method,
        headers: headerList(request.headers),
        body: bytes === null ? null : toBase64(bytes),
      });
      entry.unlisten = onAbort(signal, () => abortFetch(id, signal.reason));
    });
  }

  function abortFetch(id, reason) {
    const entry = fetches.get(id);
    if (!entry) return;
    fetches.delete(id);
    // Only requests the driver has taken need cancelling; the others are simply dropped.
    if (entry.taken) abortedTaken.push(id);
    else fetchQueue = fetchQueue.filter((r) => r.id !== id);
    entry.reject(reason);
  }

  function settleFetch(id) {
    const entry = fetches.get(Number(id));
    if (!entry) return null;
    fetches.delete(Number(id));
    entry.unlisten();
    return entry;
  }

  function takeFetches() {
    const taken = fetchQueue;
    fetchQueue = [];
    for (const r of taken) fetches.get(r.id).taken = true;
    return taken;
  }

  function fetchDone(id, result) {
    const entry = settleFetch(id);
    if (!entry) return;
    try {
      entry.resolve(fetchedResponse(typeof result === "string" ? jsonParse(result) : result, entry.url));
    } catch (error) {
      entry.reject(new TypeError(`fetch failed: ${error?.message ?? error}`));
    }
  }

  function fetchedResponse(result, requestUrl) {
    const response = new Response(null);
    const status = Number(result.status);
    const url = result.url ? String(result.url) : requestUrl;
    initResponse(response, {
      status,
      statusText: String(result.statusText ?? ""),
      headers: headersFromList(result.headers ?? []),
      type: "basic",
      url,
      redirected: url !== requestUrl,
    });
    const hasBody = result.body !== null && result.body !== undefined && !NULL_BODY_STATUS.includes(status);
    if (hasBody) setBodyBytes(response, fromBase64(String(result.body)));
    return response;
  }

  function fetchFailed(id, message) {
    const entry = settleFetch(id);
    if (entry) entry.reject(new TypeError(String(message ?? "fetch failed")));
  }

  function abortedFetches() {
    const ids = abortedTaken;
    abortedTaken = [];
    return ids;
  }

  // ------------------------------------------------------------------------------ crypto

  const HASHES = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 };   // block bits
  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
  const MAX_RANDOM_BYTES = 65536;

  const algorithmName = (alg) => String(typeof alg === "string" ? alg : alg?.name).toUpperCase();
  const notSupported = (what) => new DOMException(`${what} is not supported`, "NotSupportedError");

  function hashName(alg) {
    const name = algorithmName(alg);
    if (!Object.hasOwn(HASHES, name)) throw notSupported(`The hash ${alg?.name ?? alg}`);
    return name;
  }

  function randomBytes(n) {
    return n === 0 ? new Uint8Array(0) : hostBytes({ op: "random", n });
  }

  function getRandomValues(array) {
    if (!INTEGER_ARRAYS.some((T) => array instanceof T)) {
      throw new DOMException("getRandomValues: expected an integer typed array", "TypeMismatchError");
    }
    if (array.byteLength > MAX_RANDOM_BYTES) {
      throw new DOMException(
        `getRandomValues: ${array.byteLength} bytes requested, at most ${MAX_RANDOM_BYTES} allowed`,
        "QuotaExceededError");
    }
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(randomBytes(array.byteLength));
    return array;
  }

  function randomUUID() {
    const b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;   // version 4
    b[8] = (b[8] & 0x3f) | 0x80;   // variant 10xx
    const h = hexOf(b);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  let keyBytes;

  class CryptoKey {
    #bytes;
    #extractable;
    #algorithm;
    #usages;

    constructor(key, bytes, algorithm, extractable, usages) {
      if (key !== INTERNAL) throw new TypeError("Illegal constructor");
      this.#bytes = bytes;
      this.#algorithm = Object.freeze(algorithm);
      this.#extractable = extractable;
      this.#usages = Object.freeze([...usages]);
    }

    get type() { return "secret"; }
    get extractable() { return this.#extractable; }
    get algorithm() { return this.#algorithm; }
    get usages() { return this.#usages; }
    get [Symbol.toStringTag]() { return "CryptoKey"; }

    static { keyBytes = (k) => k.#bytes; }
  }

  function hmacKey(bytes, algorithm, extractable, usages) {
    if (algorithmName(algorithm) !== "HMAC") throw notSupported(`The algorithm ${algorithm?.name ?? algorithm}`);
    if (algorithm.hash === undefined) throw new TypeError("HMAC: algorithm.hash is required");
    const hash = hashName(algorithm.hash);
    const list = [...usages].map(String);
    if (list.length === 0 || list.some((u) => u !== "sign" && u !== "verify")) {
      throw new DOMException("HMAC keys take the usages \"sign\" and/or \"verify\"", "SyntaxError");
    }
    const length = algorithm.length === undefined ? bytes.length * 8 : Number(algorithm.length);
    if (bytes.length === 0 || length > bytes.length * 8 || length <= (bytes.length - 1) * 8) {
      throw new DOMException("HMAC: the key data does not match the length", "DataError");
    }
    const normalized = { name: "HMAC", hash: { name: hash }, length };
    return new CryptoKey(INTERNAL, bytes, normalized, Boolean(extractable), list);
  }

  function importKeyData(format, keyData) {
    if (format === "raw") return viewBytes(keyData, "importKey: keyData").slice();
    if (format === "jwk") {
      if (keyData?.kty !== "oct" || typeof keyData.k !== "string") {
        throw new DOMException("importKey: an HMAC JWK needs kty \"oct\" and k", "DataError");
      }
      return fromBase64(keyData.k.replace(/-/g, "+").replace(/_/g, "/"));
    }
    throw notSupported(`The key format ${format}`);
  }

  function usableKey(key, algorithm, usage) {
    if (!(key instanceof CryptoKey)) throw new TypeError("Expected a CryptoKey");
    if (algorithmName(algorithm) !== "HMAC" || key.algorithm.name !== "HMAC") {
      throw new DOMException("The key is not an HMAC key", "InvalidAccessError");
    }
    if (!key.usages.includes(usage)) {
      throw new DOMException(`The key's usages do not include "${usage}"`, "InvalidAccessError");
    }
    return key;
  }

  function hmac(key, data) {
    const { hash } = key.algorithm;
    const key64 = toBase64(keyBytes(key));
    return hostBytes({ op: "hmac", alg: hash.name, key: key64, data: toBase64(viewBytes(data, "data")) });
  }

  const timingSafeEqual = (a, b) =>
    a.length === b.length && a.reduce((diff, x, i) => diff | (x ^ b[i]), 0) === 0;

  // Methods are async so that every error arrives as a rejection, as WebCrypto does.
  class SubtleCrypto {
    constructor(key) {
      if (key !== INTERNAL) throw new TypeError("Illegal constructor");
    }

    async digest(algorithm, data) {
      const alg = hashName(algorithm);
      return copyToBuffer(hostBytes({ op: "digest", alg, data: toBase64(viewBytes(data, "data")) }));
    }

    async importKey(format, keyData, algorithm, extractable, usages) {
      return hmacKey(importKeyData(format, keyData), algorithm, extractable, usages);
    }

    async generateKey(algorithm, extractable, usages) {
      if (algorithmName(algorithm) !== "HMAC") throw notSupported(`The algorithm ${algorithm?.name ?? algorithm}`);
      const length = algorithm?.length ?? HASHES[hashName(algorithm?.hash)];
      return hmacKey(randomBytes(Math.ceil(length / 8)), algorithm, extractable, usages);
    }

    async exportKey(format, key) {
      if (!(key instanceof CryptoKey)) throw new TypeError("exportKey: expected a CryptoKey");
      if (!key.extractable) throw new DOMException("The key is not extractable", "InvalidAccessError");
      const bytes = keyBytes(key).slice();
      if (format === "raw") return bytes.buffer;
      if (format !== "jwk") throw notSupported(`The key format ${format}`);
      const k = toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      const alg = `HS${key.algorithm.hash.name.slice(4)}`;
      return { kty: "oct", k, alg, key_ops: [...key.usages], ext: true };
    }

    async sign(algorithm, key, data) {
      return copyToBuffer(hmac(usableKey(key, algorithm, "sign"), data));
    }

    async verify(algorithm, key, signature, data) {
      const expected = hmac(usableKey(key, algorithm, "verify"), data);
      return timingSafeEqual(expected, viewBytes(signature, "signature"));
    }
  }

  for (const method of ["encrypt", "decrypt", "deriveBits", "deriveKey", "wrapKey", "unwrapKey"]) {
    Object.defineProperty(SubtleCrypto.prototype, method, {
      value: async () => { throw notSupported(`backstate: crypto.subtle.${method}`); },
      writable: true, configurable: true, enumerable: false,
    });
  }

  class Crypto {
    #subtle = new SubtleCrypto(INTERNAL);

    constructor(key) {
      if (key !== INTERNAL) throw new TypeError("Illegal constructor");
    }

    get subtle() { return this.#subtle; }
    getRandomValues(array) { return getRandomValues(array); }
    randomUUID() { return randomUUID(); }
  }

  // ------------------------------------------------------------------------------ structuredClone

  // The structured clone algorithm for plain data: primitives, arrays, plain objects, Date,
  // RegExp, Map, Set, ArrayBuffer and its views, errors and boxed primitives; cycles and shared
  // references are preserved. Functions, symbols and other platform objects cannot be cloned.
  const cannotClone = (v) =>
    new DOMException(`${safeString(v)} could not be cloned.`, "DataCloneError");

  const UNCLONEABLE = [Promise, WeakMap, WeakSet, WeakRef, FinalizationRegistry, URL,
    URLSearchParams, Headers, Request, Response, EventTarget, Event, AbortController, CryptoKey,
    TextEncoder, TextDecoder, SubtleCrypto, Crypto];

  const ERROR_TYPES = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

  function structuredClone(value, options = undefined) {
    void options;   // transfer lists have nothing to transfer between VM-less realms
    return cloneValue(value, new Map());
  }

  function cloneValue(v, memo) {
    if (typeof v === "symbol" || typeof v === "function") throw cannotClone(v);
    if (typeof v !== "object" || v === null) return v;
    if (memo.has(v)) return memo.get(v);
    if (UNCLONEABLE.some((T) => v instanceof T)) throw cannotClone(v);
    const leaf = cloneLeaf(v, memo);
    if (leaf !== undefined) {
      memo.set(v, leaf);
      return leaf;
    }
    return cloneContainer(v, memo);
  }

  // Objects without children to recurse into.
  function cloneLeaf(v, memo) {
    if (v instanceof Date) return new Date(v.getTime());
    if (v instanceof RegExp) return new RegExp(v.source, v.flags);
    if (isBuffer(v)) return v.slice(0);
    if (ArrayBuffer.isView(v)) {
      const buffer = cloneValue(v.buffer, memo);   // views of one buffer stay views of one buffer
      const Ctor = v instanceof DataView ? DataView : v.constructor;
      const length = v instanceof DataView ? v.byteLength : v.length;
      return new Ctor(buffer, v.byteOffset, length);
    }
    if (v instanceof DOMException) return new DOMException(v.message, v.name);
    if (v instanceof Error) return cloneError(v);
    const boxed = boxedPrimitive(v);
    if (typeof boxed === "symbol") throw cannotClone(v);
    return boxed === undefined ? undefined : Object(boxed);
  }

  function cloneError(e) {
    const Type = Object.hasOwn(ERROR_TYPES, e.name) ? ERROR_TYPES[e.name] : Error;
    const copy = new Type(e.message);
    if (typeof e.stack === "string") copy.stack = e.stack;
    if ("cause" in e) copy.cause = e.cause;
    return copy;
  }

  function cloneContainer(v, memo) {
    if (v instanceof Map) {
      const out = new Map();
      memo.set(v, out);
      for (const [k, x] of v) out.set(cloneValue(k, memo), cloneValue(x, memo));
      return out;
    }
    if (v instanceof Set) {
      const out = new Set();
      memo.set(v, out);
      for (const x of v) out.add(cloneValue(x, memo));
      return out;
    }
    const out = Array.isArray(v) ? new Array(v.length) : {};
    memo.set(v, out);
    for (const k of Object.keys(v)) out[k] = cloneValue(v[k], memo);
    return out;
  }

  // ------------------------------------------------------------------------------ __bs

  // The protocol with the Python driver (js_shims/harness.js and runtime/step.py use it):
  //   now                      epoch ms, set by the driver before every slice of JS; timers
  //                            and log timestamps read it (Date.now() stays native)
  //   reseed(hex)              seed Math.random with 32 bytes (64 hex digits)
  //   takeLogs()               [{ts, stream, text}] recorded since the last call
  //   nextTimerDue()           the earliest due time of the pending timers, or null
  //   fireDueTimers()          run timers due at `now`, in (due, id) order; returns how many
  //   pendingTimers()          how many timers are pending
  //   takeFetches()            [{id, url, method, headers: [[k, v]], body: base64 | null}]
  //   fetchDone(id, response)  {status, statusText, url, headers: [[k, v]], body: base64}
  //   fetchFailed(id, message) reject that fetch with TypeError(message)
  //   pendingFetches()         fetches not settled yet (aborted ones excluded)
  //   abortedFetches()         ids of taken fetches aborted since the last call
  // Unknown or already settled fetch ids are ignored. The methods cannot be replaced.
  const bs = { now: Date.now() };

  const bsMethods = {
    reseed,
    takeLogs() {
      const taken = logs;
      logs = [];
      return taken;
    },
    nextTimerDue,
    fireDueTimers,
    pendingTimers: () => timers.size,
    takeFetches,
    fetchDone,
    fetchFailed,
    pendingFetches: () => fetches.size,
    abortedFetches,
  };

  for (const [name, fn] of Object.entries(bsMethods)) {
    Object.defineProperty(bs, name, { value: fn, enumerable: true });
  }
  Object.preventExtensions(bs);
  Object.defineProperty(globalThis, "__bs", { value: bs, enumerable: false });

  // ------------------------------------------------------------------------------ install

  const globals = {
    console, reportError, setTimeout, clearTimeout, setInterval, clearInterval,
    Event, EventTarget, AbortController, AbortSignal, TextEncoder, TextDecoder,
    URL, URLSearchParams, Headers, Request, Response, fetch,
    Crypto, CryptoKey, SubtleCrypto, crypto: new Crypto(INTERNAL),
  };
  for (const [name, value] of Object.entries(globals)) define(name, value);
  defineMissing("structuredClone", () => structuredClone);
})();

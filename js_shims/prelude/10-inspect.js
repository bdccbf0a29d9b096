// Value formatting for console output: a small util.inspect in Node's one-line notation, and
// console.log's argument formatting with printf-style substitutions. Classes of later parts show
// their state through the INSPECT symbol and reuse braces() and keyLabel(); structuredClone
// reuses safeString() and boxedPrimitive().

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

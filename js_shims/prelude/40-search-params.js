// application/x-www-form-urlencoded and URLSearchParams. A URLSearchParams created by a URL
// mirrors that URL's query: changing one updates the other (through setUrlQuery, defined in
// 46-url.js).

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

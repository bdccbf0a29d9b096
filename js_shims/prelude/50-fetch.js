// The Fetch API: Headers, the Body mixin, Response, Request and fetch(). Bodies are whole byte
// arrays. fetch() only queues the request: the driver takes it (__bs.takeFetches), performs it
// under the egress policy, and settles it with __bs.fetchDone or __bs.fetchFailed.

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

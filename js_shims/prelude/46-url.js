// The URL class over the parser's records: serialization, origins, and setters that ignore
// invalid input as the standard says.

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

// The server's API, as the official client calls it: JSON in and out, a bearer token on every
// request, State Backed's error shape {error, code, parameter} turned into an ApiError whose
// message is the server's own words.

export class ApiError extends Error {
  constructor(status, code, message, parameter) {
    super(message);
    this.status = status;
    this.code = code;
    this.parameter = parameter;
  }

  // "403 missing-scope: this key lacks the machines.read scope"
  get words() {
    const head = [this.status || null, this.code || null].filter(Boolean).join(" ");
    return head ? `${this.message} (${head})` : this.message;
  }
}

export class Api {
  constructor(session, base) {
    this.session = session;
    this.base = base;   // the server's root URL, ending in "/"
  }

  url(path, query) {
    const url = new URL(path.replace(/^\//, ""), this.base);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    return url;
  }

  async request(method, path, { body, query } = {}) {
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${await this.session.token()}`,
    };
    let response;
    try {
      response = await fetch(this.url(path, query), {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit",
      });
    } catch (err) {
      throw new ApiError(0, "network", `could not reach the server (${err.message})`);
    }
    return decode(response);
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body, query) { return this.request("POST", path, { body, query }); }
  put(path, body) { return this.request("PUT", path, { body }); }
  del(path, body) { return this.request("DELETE", path, { body }); }

  // Step 2 of creating a version: the multipart upload the official client makes, with the
  // signed fields it was given and no authorization header.
  async upload(made, code, fileName) {
    const form = new FormData();
    for (const [name, value] of Object.entries(made.codeUploadFields)) form.append(name, value);
    form.set("content-type", "application/javascript");
    form.append("file", new Blob([code], { type: "application/javascript" }), fileName);
    let response;
    try {
      response = await fetch(made.codeUploadUrl, { method: "POST", body: form, credentials: "omit" });
    } catch (err) {
      throw new ApiError(0, "network", `could not upload the code (${err.message})`);
    }
    return decode(response);
  }
}

async function decode(response) {
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (response.ok) return body;
  if (body && typeof body.error === "string") {
    throw new ApiError(response.status, body.code, body.error, body.parameter);
  }
  const what = text && text.length < 200 ? text : response.statusText || "no message";
  throw new ApiError(response.status, "http-error", `the server answered ${response.status}: ${what}`);
}

// Every page of a paginated list, up to `limit` items.
export async function allPages(api, path, key, limit = 1000) {
  const items = [];
  let cursor;
  do {
    const page = await api.get(path, { cursor });
    items.push(...page[key]);
    cursor = page.cursor;
  } while (cursor && items.length < limit);
  return { items, more: !!cursor };
}

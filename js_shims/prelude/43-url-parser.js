// The WHATWG URL parser behind URL and Request: URL records (scheme, authority, path segments,
// query, fragment), relative resolution, and hosts (domains to ASCII with Punycode, IPv4 in
// all its forms, IPv6).

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

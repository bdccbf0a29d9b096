// UTF-8: TextEncoder and TextDecoder (streaming, fatal, BOM handling), and the encode/decode
// helpers the console, URL and fetch parts share. Whole-string work goes through native
// functions where possible, because per-character loops are slow in this interpreter.

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

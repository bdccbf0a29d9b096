// The shared internals every later part uses. The synchronous host bridge: __host_call is
// captured here and deleted from globalThis before any user code runs, so only the prelude can
// reach it; hostCall() makes one round trip and rethrows the host's {error} as an OperationError.
// Also JSON captured against replacement, define()/defineMissing() for installing globals, the
// INTERNAL and INSPECT symbols, and the byte helpers (BufferSource views, base64, binary strings).

const rawHostCall = globalThis.__host_call;
delete globalThis.__host_call;
// Captured now: user code that replaces JSON must not see or forge bridge traffic.
const { parse: jsonParse, stringify: jsonStringify } = JSON;

// One synchronous round trip. The host answers {error} instead of throwing.
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

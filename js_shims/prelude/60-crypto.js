// crypto: getRandomValues and randomUUID from host entropy, and a SubtleCrypto limited to
// digests and HMAC keys (import, generate, export, sign, verify), which the host computes.

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

// The UUIDs made while a bundle's top level runs, until the harness takes them: an invoke source
// of @statebacked/machine defaults its instance name to one, which would otherwise be shared by
// every instance of the version (see harness.js).
let loadUuids = new Set();

function randomUUID() {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;   // version 4
  b[8] = (b[8] & 0x3f) | 0x80;   // variant 10xx
  const h = hexOf(b);
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  if (loadUuids) loadUuids.add(uuid);
  return uuid;
}

function takeLoadUuids() {
  const taken = loadUuids || new Set();
  loadUuids = null;
  return taken;
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

// structuredClone for plain data, installed only when the engine has none (see 99-install.js).
// It refuses the platform objects of the earlier parts, so it must come after them.

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

// Fallbacks for built-ins QuickJS-NG normally has (DOMException, btoa/atob, performance,
// queueMicrotask), each defined only when the engine lacks it, so the prelude also works on an
// engine built without them (the tests run it on such a "bare" engine).

const DOM_EXCEPTION_CODES = {
  IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4,
  InvalidCharacterError: 5, NoModificationAllowedError: 7, NotFoundError: 8,
  NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
  InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
  TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
  URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23,
  InvalidNodeTypeError: 24, DataCloneError: 25,
};

defineMissing("DOMException", () => class DOMException extends Error {
  #name;
  constructor(message = "", name = "Error") {
    super(String(message));
    this.#name = String(name);
  }
  get name() { return this.#name; }
  get code() { return DOM_EXCEPTION_CODES[this.#name] ?? 0; }
});

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const invalidCharacter = (message) => new DOMException(message, "InvalidCharacterError");

defineMissing("btoa", () => function btoa(data) {
  const s = String(data);
  if (/[^\u0000-\u00ff]/.test(s)) throw invalidCharacter("String contains an invalid character");
  let out = "";
  for (let i = 0; i < s.length; i += 3) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
    const chars = [18, 12, 6, 0].map((shift) => B64[(n >> shift) & 63]);
    out += chars.slice(0, Math.min(4, s.length - i + 1)).join("").padEnd(4, "=");
  }
  return out;
});

// The "forgiving-base64 decode" of the HTML standard.
defineMissing("atob", () => function atob(data) {
  let s = String(data).replace(/[\t\n\f\r ]/g, "");
  if (s.length % 4 === 0) s = s.replace(/==?$/, "");
  if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
    throw invalidCharacter("The string to be decoded is not correctly encoded");
  }
  let out = "", bits = 0, acc = 0;
  for (const ch of s) {
    acc = (acc << 6) | B64.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
});

// Only now() and timeOrigin: there is no performance timeline to observe here.
if (typeof globalThis.performance !== "object" || globalThis.performance === null) {
  const timeOrigin = Date.now();
  define("performance", { timeOrigin, now: () => Date.now() - timeOrigin });
}

defineMissing("queueMicrotask", () => function queueMicrotask(callback) {
  if (typeof callback !== "function") {
    throw new TypeError("queueMicrotask: the callback must be a function");
  }
  Promise.resolve().then(() => {
    try { callback(); } catch (error) { reportError(error); }
  });
});

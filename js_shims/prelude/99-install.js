// Installs the web-standard globals defined by the earlier parts, non-enumerable like the
// engine's own; up to here they were private to the prelude's scope.

const globals = {
  console, reportError, setTimeout, clearTimeout, setInterval, clearInterval,
  Event, EventTarget, AbortController, AbortSignal, TextEncoder, TextDecoder,
  URL, URLSearchParams, Headers, Request, Response, fetch,
  Crypto, CryptoKey, SubtleCrypto, crypto: new Crypto(INTERNAL),
};
for (const [name, value] of Object.entries(globals)) define(name, value);
defineMissing("structuredClone", () => structuredClone);

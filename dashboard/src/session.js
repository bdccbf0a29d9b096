// The signed-in key, and the short-lived tokens the page signs with it.
//
// The page signs its own tokens, as @statebacked/token does: a JWT, HS256, `kid` = the key's id,
// the HMAC key = the UTF-8 bytes of its `sbsec_...` secret, `aud` = State Backed's API URL, and
// `act` = the auth context the machines' authorizers see. The secret never leaves the browser:
// only tokens are sent, and only to this server. It is kept in sessionStorage (gone with the
// tab) unless the person asks to be remembered on this device (localStorage).

const STORE_KEY = "backstate.dashboard.key";
const AUDIENCE = "https://api.statebacked.dev/";
const TOKEN_TTL_S = 300;
const RENEW_BEFORE_S = 60;
export const DEFAULT_ACT = { sub: "dashboard" };

const encoder = new TextEncoder();

export class Session {
  constructor({ keyId, secret, act, remember }) {
    this.keyId = keyId;
    this.secret = secret;
    this.act = act;
    this.remember = !!remember;
    this._key = null;
    this._token = null;
  }

  // A token valid for a few more minutes at least; a fresh one is signed when it runs low.
  async token() {
    const now = Math.floor(Date.now() / 1000);
    if (this._token && this._token.exp - RENEW_BEFORE_S > now) return this._token.jwt;
    const exp = now + TOKEN_TTL_S;
    const jwt = await this._sign({ act: this.act, aud: AUDIENCE, exp, iat: now,
      iss: `https://${this.keyId}.client.statebacked.dev/` });
    this._token = { jwt, exp };
    return jwt;
  }

  async _sign(payload) {
    // No `typ` in the header: @statebacked/token sets none.
    const header = { alg: "HS256", kid: this.keyId };
    const signed = `${b64url(encoder.encode(JSON.stringify(header)))}.${b64url(encoder.encode(JSON.stringify(payload)))}`;
    if (!this._key) this._key = await hmacKey(this.secret);
    const signature = await crypto.subtle.sign("HMAC", this._key, encoder.encode(signed));
    return `${signed}.${b64url(new Uint8Array(signature))}`;
  }

  save() {
    const stored = JSON.stringify({ keyId: this.keyId, secret: this.secret, act: this.act });
    forget();
    (this.remember ? localStorage : sessionStorage).setItem(STORE_KEY, stored);
  }

  static restore() {
    for (const [storage, remember] of [[sessionStorage, false], [localStorage, true]]) {
      const raw = storage.getItem(STORE_KEY);
      if (!raw) continue;
      try {
        const { keyId, secret, act } = JSON.parse(raw);
        if (typeof keyId === "string" && typeof secret === "string") {
          return new Session({ keyId, secret, act: act || DEFAULT_ACT, remember });
        }
      } catch {
        // a damaged entry is dropped below
      }
      storage.removeItem(STORE_KEY);
    }
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(STORE_KEY);
  localStorage.removeItem(STORE_KEY);
}

// Browsers offer WebCrypto only to secure contexts: HTTPS, or http://localhost / 127.0.0.1.
export function cryptoMissing() {
  if (globalThis.crypto && globalThis.crypto.subtle) return null;
  return "This browser offers no WebCrypto on this page, so it cannot sign tokens: browsers " +
    "keep it for secure contexts. Serve backstate over HTTPS, or open the dashboard as " +
    "http://localhost or http://127.0.0.1 (an SSH tunnel works).";
}

async function hmacKey(secret) {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" },
    false, ["sign"]);
}

// base64url(HMAC-SHA256(key = utf8(key), data = utf8(data))): the confirmation the API asks for
// before deleting a machine (key = data = its name) or an instance (key = machine, data = name).
export async function deletionHmac(key, data) {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(key), encoder.encode(data));
  return b64url(new Uint8Array(signature));
}

function b64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

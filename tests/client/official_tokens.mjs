// Tokens made by the official packages at a fixed instant, for tests/client/test_tokens.py:
// `signToken` of @statebacked/token for each case, and the anonymous subject token that
// @statebacked/client signs and posts to /tokens (caught by a fetch that records it).
//
//   node official_tokens.mjs '{"nowMs": ..., "cases": [...], "anonymous": {...}}'
import { createRequire } from "node:module";

const require = createRequire(new URL("../compat/package.json", import.meta.url));
const input = JSON.parse(process.argv[2]);

// Every `new Date()` and `Date.now()` is the given instant (jose reads the clock with them).
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(input.nowMs);
    else super(...args);
  }
  static now() {
    return input.nowMs;
  }
};

const { signToken } = require("@statebacked/token");
const { StateBackedClient } = require("@statebacked/client");

const tokens = [];
for (const c of input.cases) {
  const key = { stateBackedKeyId: c.keyId, stateBackedSecretKey: c.secret };
  const expires = "expiresAt" in c ? { at: c.expiresAt } : { in: c.expiresIn };
  tokens.push(await signToken(key, c.claims, { expires, issuer: c.issuer }));
}

const { orgId, sessionId, deviceId, actAs } = input.anonymous;
let exchange;
const fetch = async (url, init) => {
  exchange = { url: String(url), method: init.method, headers: init.headers, body: init.body };
  return new Response(JSON.stringify({ access_token: "a.e30.b" }), { status: 200 });
};
const anonymous = { orgId, getSessionId: async () => sessionId };
if (deviceId) anonymous.getDeviceId = () => deviceId;
const client = new StateBackedClient({ anonymous }, { fetch, orgId, actAs, apiHost: "http://h" });
await client.token();

console.log(JSON.stringify({ tokens, exchange }));

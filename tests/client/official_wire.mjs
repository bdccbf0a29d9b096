// What @statebacked/client 0.1.37 sends, for tests/client/test_wire.py: each call (a JS
// function of the client, given as source) runs against a fetch that records the request and
// answers with a canned response; prints the recorded requests of each call.
//
//   node official_wire.mjs '["c => c.machines.list()", ...]'
import { createRequire } from "node:module";

const require = createRequire(new URL("../compat/package.json", import.meta.url));
const { StateBackedClient } = require("@statebacked/client");
const calls = JSON.parse(process.argv[2]);

const PROVISIONAL = {
  machineVersionId: "signed-version", machineVersionMigrationId: "signed-migration",
  codeUploadUrl: "http://uploads.example/upload?x=1",
  codeUploadFields: { key: "k1", policy: "p1", "content-type": "text/plain" },
};

let recorded = [];
async function body(init) {
  if (init.body === undefined) return null;
  if (typeof init.body === "string") return { text: init.body };
  const parts = [];
  for (const [name, value] of init.body.entries()) {
    if (typeof value === "string") parts.push({ name, value });
    else parts.push({
      name, filename: value.name, type: value.type,
      base64: Buffer.from(await value.arrayBuffer()).toString("base64"),
    });
  }
  return { parts };
}
const fetch = async (url, init) => {
  recorded.push({ method: init.method, url: String(url), headers: init.headers ?? {}, body: await body(init) });
  const path = new URL(String(url)).pathname;
  if (path === "/upload") return new Response(null, { status: 204 });
  if (/\/(v|migrations)$/.test(path) && init.method === "POST") return Response.json(PROVISIONAL);
  if (path === "/tokens") return Response.json({ access_token: "a.e30.b" });
  return Response.json({ ts: 1, state: "s", tags: [], done: false, maxTimestamp: "2024-01-01T00:00:00.000Z", logs: [] });
};

const client = new StateBackedClient("the-token", {
  apiHost: "http://api.example", orgId: "org_1", actAs: { sub: "me", n: 1 }, fetch,
});
const result = [];
for (const source of calls) {
  recorded = [];
  await eval(source)(client);
  result.push(recorded);
}
console.log(JSON.stringify(result));

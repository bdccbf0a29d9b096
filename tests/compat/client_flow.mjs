// Drives a backstate server with the unmodified @statebacked/client, as an app would: tokens
// are key-signed JWTs from @statebacked/token. Every call's outcome (its value, or the error
// class the client raised) is recorded under a name and printed as one JSON object; the
// assertions live in test_compat.py.
//
// env: API_URL (a server listing 2 items per page), ORG_ID, ADMIN_KEY_ID and ADMIN_SECRET (an
// admin key), PROD_KEY_ID and PROD_SECRET (a production key), MACHINE (a new machine name).
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

import { errors, StateBackedClient } from "@statebacked/client";
import { signToken } from "@statebacked/token";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`client_flow.mjs needs the ${name} environment variable`);
  return value;
};

const apiHost = env("API_URL");
const machine = env("MACHINE");
const orgId = env("ORG_ID");
const adminKey = { stateBackedKeyId: env("ADMIN_KEY_ID"), stateBackedSecretKey: env("ADMIN_SECRET") };
const prodKey = { stateBackedKeyId: env("PROD_KEY_ID"), stateBackedSecretKey: env("PROD_SECRET") };
const source = readFileSync(new URL("./machine.js", import.meta.url), "utf8");
const migrationSource = readFileSync(new URL("./migration.js", import.meta.url), "utf8");

const sign = (key, act, expires = { in: "1h" }) => signToken(key, act, { expires });
const client = async (key, act, expires, opts = {}) =>
  new StateBackedClient(await sign(key, act, expires), { apiHost, ...opts });

const ERROR_CLASSES = Object.entries(errors).filter(([name]) => name !== "ApiError");

function describeError(err) {
  if (!(err instanceof errors.ApiError)) {
    return { class: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
  }
  // The most specific class (MissingScopeError is also an UnauthorizedError, and so on).
  const matches = ERROR_CLASSES.filter(([, cls]) => err instanceof cls);
  const [name] = matches.find(([, cls]) =>
    matches.every(([, other]) => other === cls || cls.prototype instanceof other),
  ) ?? ["ApiError"];
  return {
    class: name,
    status: err.status,
    code: err.code ?? null,
    message: err.message,
  };
}

// Every page of a listing, following `cursor` as smply does (at most 10 pages).
async function allPages(list) {
  const pages = [];
  let cursor;
  do {
    const page = await list(cursor ? { cursor } : undefined);
    pages.push(page);
    cursor = page.cursor;
  } while (cursor && pages.length < 10);
  return pages;
}

const observations = {};

async function observe(name, call) {
  try {
    const value = await call();
    observations[name] = { ok: true, value: value === undefined ? null : value };
    return value;
  } catch (err) {
    observations[name] = { ok: false, error: describeError(err) };
    return undefined;
  }
}

const admin = await client(adminKey, { sub: "admin" });
const alice = await client(prodKey, { sub: "alice" });
const bob = await client(prodKey, { sub: "bob" });
const blocked = await client(prodKey, { sub: "blocked" });

// Machines and versions (admin key: machines.* and machine-versions.* scopes).
await observe("machines.create", () => admin.machines.create(machine));
await observe("machines.create existing", () => admin.machines.create(machine));
await observe("machines.create invalid name", () => admin.machines.create("no spaces allowed"));
await observe("machines.get before versions", () => admin.machines.get(machine));
const v1 = await observe("machineVersions.create code", () =>
  admin.machineVersions.create(machine, { clientInfo: "v1-plain", code: source, makeCurrent: true }),
);
await observe("machineVersions.create gzippedCode", () =>
  admin.machineVersions.create(machine, {
    clientInfo: "v2-gzip",
    gzippedCode: new Uint8Array(gzipSync(source)),
    makeCurrent: true,
  }),
);
await observe("machineVersions.create invalid bundle", () =>
  admin.machineVersions.create(machine, {
    clientInfo: "not-a-machine",
    code: "export default 42; export const allowRead = () => true, allowWrite = allowRead;",
    makeCurrent: true,
  }),
);
await observe("machineVersions.list", () => admin.machineVersions.list(machine));
await observe("machines.get", () => admin.machines.get(machine));
await observe("machines.list", () => admin.machines.list());

// Instances as end users (production key: instances.write, state.read, events.write).
await observe("instances.create", () =>
  alice.machineInstances.create(machine, { slug: "alice-1", context: { owner: "alice" } }),
);
await observe("instances.create existing", () =>
  alice.machineInstances.create(machine, { slug: "alice-1", context: { owner: "alice" } }),
);
await observe("instances.create pinned to v1", () =>
  alice.machineInstances.create(machine, {
    slug: "pinned",
    machineVersionId: v1?.machineVersionId,
  }),
);
await observe("instances.get", () => alice.machineInstances.get(machine, "alice-1"));
await observe("instances.get unknown", () => alice.machineInstances.get(machine, "nobody"));
await observe("instances.sendEvent string", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: "start" }),
);
await observe("instances.sendEvent object", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: { type: "inc", by: 2 } }),
);
await observe("instances.getOrCreate new", () =>
  alice.machineInstances.getOrCreate(machine, "alice-2", { context: { owner: "alice" } }),
);
await observe("instances.sendEvent start alice-2", () =>
  alice.machineInstances.sendEvent(machine, "alice-2", { event: "start" }),
);
await observe("instances.sendEvent finish", () =>
  alice.machineInstances.sendEvent(machine, "alice-2", { event: "finish" }),
);
await observe("instances.getOrCreate existing", () =>
  alice.machineInstances.getOrCreate(machine, "alice-1", { context: { owner: "alice" } }),
);

await observe("instances.sendEvent unknown", () =>
  alice.machineInstances.sendEvent(machine, "nobody", { event: "start" }),
);

// Races: getOrCreate from many callers at once makes one instance (POST, 409, GET again), and
// concurrent events are applied one at a time, none lost.
await observe("instances.getOrCreate concurrent", () =>
  Promise.all(
    Array.from({ length: 5 }, () =>
      alice.machineInstances.getOrCreate(machine, "racer", { context: { owner: "alice" } }),
    ),
  ),
);
await alice.machineInstances.sendEvent(machine, "racer", { event: "start" }).catch(() => {});
await observe("instances.sendEvent concurrent", () =>
  Promise.all(
    Array.from({ length: 5 }, () =>
      alice.machineInstances.sendEvent(machine, "racer", { event: "inc" }),
    ),
  ),
);

// Authorizers: allowRead / allowWrite deny.
await observe("instances.get by non-owner", () => bob.machineInstances.get(machine, "alice-1"));
await observe("instances.sendEvent by non-owner", () =>
  bob.machineInstances.sendEvent(machine, "alice-1", { event: "finish" }),
);
await observe("instances.create denied", () =>
  blocked.machineInstances.create(machine, { slug: "blocked-1" }),
);

// Scopes: a production key may not manage machines or list instances.
await observe("machines.create with production key", () => alice.machines.create("not-allowed"));
await observe("instances.list with production key", () => alice.machineInstances.list(machine));

// Tokens the server must refuse.
const forgedKey = { ...prodKey, stateBackedSecretKey: "sbsec_not-the-real-secret" };
const unknownKey = { stateBackedKeyId: "sbk_AAAAAAAAAAAAAAAAAAAAAA", stateBackedSecretKey: "sbsec_x" };
const longAgo = Math.floor(Date.now() / 1000) - 3600;
for (const [name, key, expires] of [
  ["forged token", forgedKey, undefined],
  ["unknown key token", unknownKey, undefined],
  ["expired token", prodKey, { at: longAgo }],
]) {
  const outsider = await client(key, { sub: "alice" }, expires);
  await observe(`instances.get with ${name}`, () => outsider.machineInstances.get(machine, "alice-1"));
}

// Client options: orgId (x-statebacked-org-id) and actAs (x-statebacked-act, admins only).
for (const [name, key, opts] of [
  ["with orgId", prodKey, { orgId }],
  ["with apiHost ending in /", prodKey, { apiHost: `${apiHost}/` }],
  ["with another orgId", prodKey, { orgId: "org_AAAAAAAAAAAAAAAAAAAAAA" }],
  ["by admin acting as owner", adminKey, { actAs: { sub: "alice" } }],
  ["by admin acting as non-owner", adminKey, { actAs: { sub: "bob" } }],
  ["by production key acting as owner", prodKey, { actAs: { sub: "alice" } }],
]) {
  const configured = await client(key, { sub: "alice" }, undefined, opts);
  await observe(`instances.get ${name}`, () => configured.machineInstances.get(machine, "alice-1"));
}

// Administration (admin key: instances.read, instances.admin).
await observe("instances.list", () => allPages((opts) => admin.machineInstances.list(machine, opts)));
await observe("instances.listTransitions", () =>
  allPages((opts) => admin.machineInstances.listTransitions(machine, "alice-1", opts)),
);
await observe("instances.admin.get", () => admin.machineInstances.admin.get(machine, "alice-1"));
await observe("instances.admin.get pinned", () => admin.machineInstances.admin.get(machine, "pinned"));
await observe("instances.setStatus paused", () =>
  admin.machineInstances.dangerously.setStatus(machine, "alice-1", { status: "paused" }),
);
await observe("instances.admin.get paused", () => admin.machineInstances.admin.get(machine, "alice-1"));
await observe("instances.sendEvent paused", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: "inc" }),
);
await observe("instances.setStatus running", () =>
  admin.machineInstances.dangerously.setStatus(machine, "alice-1", { status: "running" }),
);
await observe("instances.sendEvent resumed", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: "inc" }),
);

// Migrations and desired versions: "pinned" (on v1) is upgraded to v2 by its next event; no
// migration leads from v2 back to v1.
await observe("instances.updateDesiredVersion without migration", () =>
  admin.machineInstances.admin.updateDesiredVersion(machine, "alice-1", {
    targetMachineVersionId: v1?.machineVersionId,
  }),
);
const v2 = observations["machineVersions.create gzippedCode"].value;
await observe("machineVersionMigrations.create", () =>
  admin.machineVersionMigrations.create(machine, {
    fromMachineVersionId: v1?.machineVersionId,
    toMachineVersionId: v2?.machineVersionId,
    gzippedCode: new Uint8Array(gzipSync(migrationSource)),
  }),
);
await observe("instances.updateDesiredVersion", () =>
  admin.machineInstances.admin.updateDesiredVersion(machine, "pinned", {
    targetMachineVersionId: v2?.machineVersionId,
  }),
);
await observe("instances.admin.get pinned upgrade pending", () =>
  admin.machineInstances.admin.get(machine, "pinned"),
);
await observe("instances.sendEvent upgrades pinned", () =>
  alice.machineInstances.sendEvent(machine, "pinned", { event: "start" }),
);
await observe("instances.admin.get pinned upgraded", () =>
  admin.machineInstances.admin.get(machine, "pinned"),
);
await observe("instances.listTransitions pinned", () =>
  allPages((opts) => admin.machineInstances.listTransitions(machine, "pinned", opts)),
);
await observe("machineVersionMigrations.create code", () =>
  admin.machineVersionMigrations.create(machine, {
    fromMachineVersionId: v2?.machineVersionId,
    toMachineVersionId: v1?.machineVersionId,
    code: migrationSource,
  }),
);
await observe("instances.updateDesiredVersion back", () =>
  admin.machineInstances.admin.updateDesiredVersion(machine, "alice-1", {
    targetMachineVersionId: v1?.machineVersionId,
  }),
);

// Deletion: a machine with instances cannot go; once they are gone it can.
const confirm = { dangerDataWillBeDeletedForever: true };
await observe("machines.delete with instances", () => admin.machines.dangerously.delete(machine, confirm));
for (const slug of ["alice-1", "alice-2", "pinned", "racer"]) {
  await observe(`instances.delete ${slug}`, () =>
    admin.machineInstances.dangerously.delete(machine, slug, confirm),
  );
}
await observe("instances.get deleted", () => alice.machineInstances.get(machine, "alice-1"));
await observe("instances.list after delete", () => admin.machineInstances.list(machine));
await observe("machines.delete", () => admin.machines.dangerously.delete(machine, confirm));
await observe("machines.get deleted", () => admin.machines.get(machine));

// Org, keys and billing (admin key). A key made through the API signs working tokens until
// it is deleted.
await observe("orgs.list", () => admin.orgs.list());
await observe("billing.get", () => admin.billing.get());
const ciKey = await observe("keys.create ci", () => admin.keys.create({ name: "compat-ci", use: "ci" }));
await observe("keys.list", () => allPages((opts) => admin.keys.list(opts)));
const ci = ciKey && (await client({ stateBackedKeyId: ciKey.id, stateBackedSecretKey: ciKey.key }, {}));
await observe("machines.list with new ci key", () => ci.machines.list());
await observe("keys.delete", () => admin.keys.delete(ciKey?.id));
await observe("machines.list with deleted key", () => ci.machines.list());

process.stdout.write(JSON.stringify(observations) + "\n");

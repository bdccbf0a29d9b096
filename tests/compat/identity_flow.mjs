// Signing in from the browser, with the unmodified @statebacked/client: anonymous sessions
// ({anonymous: {orgId}}) and an identity provider's tokens exchanged through a token provider
// ({identityProviderToken, orgId, tokenProviderService}). Every call's outcome is recorded under
// a name and printed as one JSON object; the assertions live in test_identity.py.
//
// env: API_URL, ORG_ID (anonymous access on; machine "owned" deployed; token provider "web"
// configured for the issuer), CLOSED_ORG_ID (anonymous access off), ISSUER_URL (the local
// identity provider: GET /token signs a token for alice, POST /rotate rotates its key; its CA
// comes through NODE_EXTRA_CA_CERTS).
import { errors, StateBackedClient } from "@statebacked/client";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`identity_flow.mjs needs the ${name} environment variable`);
  return value;
};

const apiHost = env("API_URL");
const orgId = env("ORG_ID");
const closedOrgId = env("CLOSED_ORG_ID");
const issuer = env("ISSUER_URL");
const machine = "owned";

const ERROR_CLASSES = Object.entries(errors).filter(([name]) => name !== "ApiError");

function describeError(err) {
  if (!(err instanceof errors.ApiError)) {
    return { class: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
  }
  const matches = ERROR_CLASSES.filter(([, cls]) => err instanceof cls);
  const [name] = matches.find(([, cls]) =>
    matches.every(([, other]) => other === cls || cls.prototype instanceof other),
  ) ?? ["ApiError"];
  return { class: name, status: err.status, code: err.code ?? null, message: err.message };
}

const observations = {};

async function observe(name, call) {
  try {
    const value = await call();
    observations[name] = { ok: true, value: value === undefined ? null : value };
  } catch (err) {
    observations[name] = { ok: false, error: describeError(err) };
  }
}

// --- anonymous sessions ------------------------------------------------------------------------

const anonymous = (opts) => new StateBackedClient({ anonymous: { orgId, ...opts } }, { apiHost });
const a = anonymous({ getSessionId: () => "session-a" });
const b = anonymous({ getSessionId: () => "session-b", getDeviceId: () => "device-b" });
const ownerA = "anon:session-a:session-a";
const ownerB = "anon:session-b:device-b";

await observe("A creates", () =>
  a.machineInstances.create(machine, { slug: "anon-a", context: { owner: ownerA } }));
await observe("A sends", () => a.machineInstances.sendEvent(machine, "anon-a", { event: "inc" }));
await observe("A reads", () => a.machineInstances.get(machine, "anon-a"));
// The client reads its token's expiry with atob: it refreshes the token only if that worked.
await observe("A learned its token's expiry", () => a.tokenExpiration);
await observe("B reads A's", () => b.machineInstances.get(machine, "anon-a"));
await observe("B sends to A's", () =>
  b.machineInstances.sendEvent(machine, "anon-a", { event: "inc" }));
await observe("B creates", () =>
  b.machineInstances.create(machine, { slug: "anon-b", context: { owner: ownerB } }));
await observe("B sends", () => b.machineInstances.sendEvent(machine, "anon-b", { event: "inc" }));
await observe("A reads B's", () => a.machineInstances.get(machine, "anon-b"));
await observe("A creates one owned by B", () =>
  a.machineInstances.create(machine, { slug: "anon-x", context: { owner: ownerB } }));
await observe("A's instance after all", () => a.machineInstances.get(machine, "anon-a"));

const closed = new StateBackedClient({ anonymous: { orgId: closedOrgId } }, { apiHost });
await observe("anonymous in an org without anonymous access", () =>
  closed.machineInstances.get(machine, "anon-a"));

// --- an identity provider (RS256, JWKS) and a token provider ------------------------------------

const idpToken = async () => (await fetch(`${issuer}/token`)).text();
const signedIn = (service = "web") =>
  new StateBackedClient(
    { identityProviderToken: idpToken, orgId, tokenProviderService: service },
    { apiHost },
  );

const alice = signedIn();
await observe("alice creates", () =>
  alice.machineInstances.create(machine, { slug: "alice-1", context: { owner: "user:alice" } }));
await observe("alice sends", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: "inc" }));
await observe("A reads alice's", () => a.machineInstances.get(machine, "alice-1"));
await observe("issuer rotates its key", async () =>
  (await fetch(`${issuer}/rotate`, { method: "POST" })).json());
const aliceAfter = signedIn();
await observe("alice sends after the rotation", () =>
  aliceAfter.machineInstances.sendEvent(machine, "alice-1", { event: "inc" }));
await observe("alice's first client still sends", () =>
  alice.machineInstances.sendEvent(machine, "alice-1", { event: "inc" }));
await observe("an unknown token provider", () =>
  signedIn("mobile").machineInstances.get(machine, "alice-1"));
await observe("a token from nowhere", () =>
  new StateBackedClient(
    { identityProviderToken: "not-a-jwt", orgId, tokenProviderService: "web" },
    { apiHost },
  ).machineInstances.get(machine, "alice-1"));

console.log(JSON.stringify(observations));

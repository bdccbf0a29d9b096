// Drives backstate's realtime socket and logs API with the unmodified @statebacked/client, as
// an app would (Node 20: run with --experimental-websocket for a global WebSocket). Records
// what each subscription saw under a name and prints one JSON object; test_realtime_compat.py
// judges it.
//
// env: API_URL, ADMIN_KEY_ID, ADMIN_SECRET (an admin key), PROD_KEY_ID, PROD_SECRET (a
// production key), MACHINE (a new machine name).
import { readFileSync } from "node:fs";

import { errors, StateBackedClient } from "@statebacked/client";
import { signToken } from "@statebacked/token";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`realtime_flow.mjs needs the ${name} environment variable`);
  return value;
};

const apiHost = env("API_URL");
const machine = env("MACHINE");
const adminKey = { stateBackedKeyId: env("ADMIN_KEY_ID"), stateBackedSecretKey: env("ADMIN_SECRET") };
const prodKey = { stateBackedKeyId: env("PROD_KEY_ID"), stateBackedSecretKey: env("PROD_SECRET") };
const source = readFileSync(new URL("./realtime_machine.js", import.meta.url), "utf8");
const DEADLINE_MS = 30_000;

const client = async (key, act) =>
  new StateBackedClient(await signToken(key, act, { expires: { in: "1h" } }), { apiHost });

function describeError(err) {
  const named = Object.entries(errors).filter(([, cls]) => err instanceof cls);
  const [name] = named.find(([, cls]) =>
    named.every(([, other]) => other === cls || cls.prototype instanceof other),
  ) ?? [err?.constructor?.name ?? "Error"];
  return { class: name, status: err?.status ?? null, code: err?.code ?? null };
}

async function until(what, check) {
  const deadline = Date.now() + DEADLINE_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const plain = (state) => ({ ts: state.ts, state: state.state, publicContext: state.publicContext,
  tags: state.tags, done: state.done });

const observations = {};
const started = new Date();

const admin = await client(adminKey, { sub: "admin" });
await admin.machines.create(machine);
await admin.machineVersions.create(machine, { clientInfo: "rt", code: source, makeCurrent: true });

const alice = await client(prodKey, { sub: "alice" });
const aliceElsewhere = await client(prodKey, { sub: "alice" });
const bob = await client(prodKey, { sub: "bob" });
observations.created = plain(
  await alice.machineInstances.create(machine, { slug: "game", context: { owner: "alice" } }),
);

// machineInstances.subscribe: the current state at once, then a move by another client, then
// the states a timer commits.
const seen = [];
const seenErrors = [];
const unsubscribe = alice.machineInstances.subscribe(machine, "game",
  (state) => seen.push(plain(state)), (err) => seenErrors.push(describeError(err)));
await until("the initial state", () => seen.length >= 1);
const moved = await aliceElsewhere.machineInstances.sendEvent(machine, "game", {
  event: { type: "move", by: 2 },
});
observations.moved = plain(moved);
await until("the move", () => seen.some((s) => s.ts === moved.ts));
observations.armed = plain(await aliceElsewhere.machineInstances.sendEvent(machine, "game", { event: "arm" }));
await until("the timer's state", () => seen.length >= 4);
observations.subscribe = { states: seen.slice(0, 4), errors: [...seenErrors] };

// allowRead refuses bob: his subscription reports RejectedByMachineAuthorizerError
const bobStates = [];
const bobErrors = [];
const bobUnsubscribe = bob.machineInstances.subscribe(machine, "game",
  (state) => bobStates.push(plain(state)), (err) => bobErrors.push(describeError(err)));
await until("bob's error", () => bobErrors.length >= 1);
observations.bob = { states: bobStates, errors: bobErrors };
bobUnsubscribe();

// Actor.subscribe: the actor hears a move made elsewhere and its own
const actor = await alice.machineInstances.getActor(machine, "game");
const actorSeen = [];
const actorSubscription = actor.subscribe((state) =>
  actorSeen.push({ value: state.value, score: state.context.public.score }));
const elsewhere = await aliceElsewhere.machineInstances.sendEvent(machine, "game", {
  event: { type: "move", by: 3 },
});
await until("the actor's update", () => actorSeen.some((s) => s.score === 5));
actor.send({ type: "move", by: 4 });
await until("the actor's own move", () => actorSeen.some((s) => s.score === 9));
observations.actor = { seen: actorSeen, elsewhere: plain(elsewhere) };
actorSubscription.unsubscribe();
unsubscribe();

// logs.retrieve and logs.watch: the machine's console.log lines (an entry shows once it is a
// little old: the server's BACKSTATE_LOG_SETTLE_S)
const logFilter = { machineName: machine };
const LAST_LINE = "moved by 4 from 5";
let retrieved;
const deadline = Date.now() + DEADLINE_MS;
while (!retrieved) {
  const batch = await admin.logs.retrieve(started, logFilter);
  if (batch.logs.some((entry) => entry.log.includes(LAST_LINE))) retrieved = batch;
  else if (Date.now() > deadline) throw new Error("timed out waiting for the logs");
  else await new Promise((resolve) => setTimeout(resolve, 100));
}
observations.retrieve = { ...retrieved, from: started.toISOString() };
observations.retrieveLater = await admin.logs.retrieve(new Date(retrieved.maxTimestamp), logFilter);

const stop = new AbortController();
const watched = [];
for await (const entry of admin.logs.watch(started, logFilter, stop.signal)) {
  watched.push(entry);
  if (entry.log.includes(LAST_LINE)) {
    stop.abort();
    break;
  }
}
observations.watch = watched;

process.stdout.write(JSON.stringify(observations) + "\n");
process.exit(0);

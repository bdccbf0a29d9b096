// The conformance oracle: runs each scenario's script through the real xstate 4.38.3
// interpreter on Node and prints the expected trace as JSON on stdout.
//
//   node tests/conformance/oracle.mjs [scenario-name ...]   (default: every scenario)
//
// Output: {"<scenario>": [stepRecord, ...], ...}; a step record is
//   {step, value, context, tags, done, toStrings, changed, pending}
// where `step` is the script step it describes (so the Python side replays exactly what ran here,
// without parsing JavaScript) and `pending` lists the delayed events still armed after the step as
// [{id, eventType, delay}], sorted by id. Timers never fire by themselves: a `fire` step delivers
// one, which is what backstate's timer table does when a due time passes.

import { register } from "node:module";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = path.join(HERE, "scenarios");
const SHIMS = path.resolve(HERE, "../../js_shims");

// Invoked promises in scenarios settle within a few microtask/macrotask turns; a scenario that
// needs more is broken (real timers or I/O), and must fail loudly rather than hang the suite.
const MAX_SETTLE_TURNS = 50;

register(pathToFileURL(path.join(HERE, "xstate_hooks.mjs")), import.meta.url, {
  data: { shimsURL: pathToFileURL(path.join(SHIMS, "package.json")).href },
});
const { interpret } = await import("xstate");

/** A clock that records delayed sends instead of scheduling them. */
class RecordingClock {
  constructor() {
    this.timers = new Map(); // handle -> {id, eventType, delay, deliver}
    this.nextHandle = 1;
    this.armingMeta = null; // set by the wrapped `service.defer` just before it calls setTimeout
  }

  setTimeout(deliver, delay) {
    const handle = this.nextHandle++;
    this.timers.set(handle, { ...this.armingMeta, delay, deliver });
    return handle;
  }

  clearTimeout(handle) {
    this.timers.delete(handle);
  }

  /** Deliver the pending event armed under `sendId`, then forget it. */
  fire(sendId) {
    const matches = [...this.timers].filter(([, timer]) => timer.id === sendId);
    if (matches.length !== 1) {
      throw new Error(`fire ${JSON.stringify(sendId)}: ${matches.length} pending timers have that id`);
    }
    const [handle, timer] = matches[0];
    this.timers.delete(handle);
    timer.deliver();
  }

  pending() {
    return [...this.timers.values()]
      .map(({ id, eventType, delay }) => ({ id, eventType, delay }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

/** Start an interpreter whose delayed sends land in `clock` with their send id and event. */
function startService(machine, clock, context) {
  const service = interpret(machine.withContext({ ...machine.context, ...context }), {
    clock,
    deferEvents: true,
  });
  // The clock alone sees only (callback, delay); `defer` is where the send action is known.
  const defer = service.defer.bind(service);
  service.defer = (sendAction) => {
    clock.armingMeta = { id: sendAction.id, eventType: sendAction._event.name };
    try {
      defer(sendAction);
    } finally {
      clock.armingMeta = null;
    }
  };
  return service.start();
}

/** Wait until no invoked child is running (promises resolved and their events processed). */
async function settle(service, where) {
  for (let turn = 0; turn < MAX_SETTLE_TURNS; turn++) {
    if (service.children.size === 0) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const running = [...service.children.keys()].join(", ");
  throw new Error(`${where}: still running after ${MAX_SETTLE_TURNS} turns: ${running}`);
}

function toEvent(event) {
  return typeof event === "string" ? { type: event } : event;
}

function record(step, state, clock) {
  return {
    step,
    value: state.value,
    context: JSON.parse(JSON.stringify(state.context)),
    tags: [...state.tags].sort(),
    done: state.done,
    toStrings: state.toStrings(),
    // undefined for a state no transition produced (the initial one): JSON has no undefined.
    changed: state.changed ?? null,
    pending: clock.pending(),
  };
}

async function runScenario(name) {
  const scenario = await import(pathToFileURL(path.join(SCENARIOS, `${name}.mjs`)).href);
  const [first, ...rest] = scenario.script;
  if (!first || !("create" in first)) throw new Error(`${name}: the script must start with a create step`);
  const clock = new RecordingClock();
  const service = startService(scenario.default, clock, first.create.context ?? {});
  await settle(service, `${name} step 0`);
  const trace = [record(first, service.getSnapshot(), clock)];
  for (const [index, step] of rest.entries()) {
    if ("send" in step) service.send(toEvent(step.send));
    else if ("fire" in step) clock.fire(step.fire);
    else throw new Error(`${name} step ${index + 1}: unknown step ${JSON.stringify(step)}`);
    await settle(service, `${name} step ${index + 1}`);
    trace.push(record(step, service.getSnapshot(), clock));
  }
  service.stop();
  return trace;
}

async function scenarioNames(requested) {
  if (requested.length > 0) return requested;
  const files = await readdir(SCENARIOS);
  return files.filter((f) => f.endsWith(".mjs")).map((f) => f.slice(0, -4)).sort();
}

const traces = {};
for (const name of await scenarioNames(process.argv.slice(2))) {
  traces[name] = await runScenario(name);
}
process.stdout.write(JSON.stringify(traces, null, 1) + "\n");

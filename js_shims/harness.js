// The step driver inside the VM. Evaluated once per machine version, after the prelude, xstate
// ("npm:xstate") and the user's bundle ("bundle") are registered; the VM is then snapshotted,
// so none of this runs per event. The Python driver (runtime/engine.py) talks to it through one
// function, __bs_entry(json) -> json.
//
// Why the real xstate Interpreter runs here, actions and all: inside the sandbox a machine can
// only reach the world through the host bridge (fetch, timers, console). The host holds every
// fetch until the macrostep that issued it is committed, so "effects after commit" holds at the
// bridge, while a throwing action still fails its transition before anything is written.
import * as bundle from "bundle";
import { State, interpret, spawn } from "npm:xstate";
import { upgradeOps } from "backstate:upgrade";

const machine = bundle.default;

const INTERNAL_EVENT = /^(xstate\.|done\.invoke\.|done\.state\.|error\.platform\.|error\.execution$)/;

let run = null;   // the current step's interpreter and what it produced since the last poll

function fail(code, message) {
  const err = new Error(message);
  err.bsCode = code;
  throw err;
}

// ---- @statebacked/machine hooks -------------------------------------------------------------
// spawnEphemeralInstance() calls __statebacked_rt.spawn(entity, nameOrOptions); it must spawn
// with the runtime's xstate so the child joins the running interpreter even when the bundle
// inlined its own copy. spawnPersistentInstance() passes a descriptor ({machineName, ...}):
// persistent children are separate instances, which this version does not create yet, so it
// fails loudly rather than returning a ref that could never receive events. 0.6.0 spells the
// global __statebaked_rt; both names are defined.
const statebackedRuntime = Object.freeze({
  spawn(entity, nameOrOptions) {
    if (entity && typeof entity === "object" && typeof entity.machineName === "string") {
      throw new Error("persistent child instances (spawnPersistentInstance) are not supported by this backstate server yet");
    }
    return spawn(entity, nameOrOptions);
  },
});
for (const name of ["__statebacked_rt", "__statebaked_rt"]) {
  Object.defineProperty(globalThis, name, { value: statebackedRuntime, enumerable: false });
}

// ---- authorizers ---------------------------------------------------------------------------

function authorize(fn, name, request) {
  if (typeof fn !== "function") fail("invalid-bundle", `the bundle does not export ${name}`);
  let verdict;
  try {
    verdict = fn(request);
  } catch (err) {
    fail("authorizer-error", `${name} threw ${describe(err)}`);
  }
  if (verdict && typeof verdict.then === "function") {
    fail("authorizer-error", `${name} must return a boolean synchronously, not a Promise`);
  }
  if (!verdict) fail("rejected-by-machine-authorizer", `${name} rejected the request`);
}

function describe(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

// ---- state (de)serialisation ---------------------------------------------------------------

function persistable(state) {
  // Actions are stripped so a restore never re-runs effects (delayed sends live in the host's
  // timer table instead). `history`, the previous State that XState keeps one level of, is
  // dropped too: no transition reads it, and it doubled the cost of every save and restore.
  const json = state.toJSON();
  json.actions = [];
  delete json.history;
  return json;
}

function restore(config) {
  // The host splices the persisted JSON into the request as an object: parsed once, here.
  config.actions = [];
  return State.create(config);   // interpreters and machines resolve it against the machine
}

function checkJson(value, path) {
  // Persisted context must survive a JSON round trip unchanged (toJSON objects, such as actor
  // refs, are accepted as JSON serialises them).
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail("invalid-context", `context${path} is ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value !== "object") fail("invalid-context", `context${path} is a ${typeof value}, which JSON cannot hold`);
  if (typeof value.toJSON === "function") return;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}[${i}]`));
    return;
  }
  if (proto !== Object.prototype && proto !== null) {
    const kind = (value.constructor && value.constructor.name) || "object";
    fail("invalid-context", `context${path} is a ${kind}, which JSON cannot hold`);
  }
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined) checkJson(value[key], `${path}.${key}`);
  }
}

function view(state) {
  const ctx = state.context;
  const out = { value: state.value, tags: [...state.tags].sort(), done: !!state.done };
  if (ctx && typeof ctx === "object" && ctx.public !== undefined) out.publicContext = ctx.public;
  return out;
}

// ---- one step's interpreter ----------------------------------------------------------------

function startRun(initial, isCreate) {
  const service = interpret(machineFor(initial), { deferEvents: true });
  const r = { service, macrosteps: [], timers: [], cancels: [], error: null, started: false, stopping: false };
  // Delayed sends to self become durable timer rows; other delayed sends stay in-window.
  // Within one macrostep the host applies cancels before arms, so an arm-then-cancel pair must
  // not reach it as both (the cancelled event would still fire); a cancel-then-arm (snooze)
  // must. A send whose id is already armed replaces it: the earlier one never fires.
  service.defer = (action) => {
    const to = action.to;
    if (to === undefined || to === "#_internal") {
      const id = String(action.id);
      r.timers = r.timers.filter((t) => t.id !== id);
      r.timers.push({ id, event: action._event.data, delay: Number(action.delay) || 0 });
    } else {
      setTimeout(() => service.sendTo(action._event, to), action.delay);
    }
  };
  service.cancel = (sendId) => {
    if (r.stopping) return;
    const id = String(sendId);
    r.timers = r.timers.filter((t) => t.id !== id);
    r.cancels.push(id);
  };
  const send = service.send;
  service.send = (event, payload) => {
    try {
      return send(event, payload);
    } catch (err) {
      if (!r.error) r.error = err;
      throw err;
    }
  };
  service.onTransition((state) => {
    if (r.stopping || (!r.started && !isCreate)) return;   // restoring is not a transition
    r.macrosteps.push(record(state, r));
  });
  return r;
}

function machineFor(initial) {
  return initial.context === undefined ? machine : machine.withContext(initial.context);
}

function record(state, r) {
  if (state.context !== undefined) checkJson(state.context, "");
  const step = {
    event: state._event ? state._event.data : state.event,
    state: persistable(state),
    view: view(state),
    timers: r.timers.splice(0),
    cancels: r.cancels.splice(0),
    logs: __bs.takeLogs(),
    clearTimers: false,
    // Services running once this macrostep is committed. The host stores them with the
    // state, so a crash before the step ends still leaves the list of services to fail.
    running: [...r.service.children.keys()],
  };
  if (state.done) {
    // A machine in its top-level final state stops, and XState drops its delayed events.
    step.timers = [];
    step.clearTimers = true;
  }
  return step;
}

function begin(args) {
  __bs.now = args.now;
  __bs.reseed(args.seed);
}

// ---- operations ----------------------------------------------------------------------------

const ops = {
  create(args) {
    const base = machine.context;
    const context = args.context == null ? base
      : { ...(base && typeof base === "object" ? base : {}), ...args.context };
    authorize(bundle.allowWrite, "allowWrite", {
      type: "initialization", machineInstanceName: args.instanceName, context, authContext: args.authContext,
    });
    run = startRun({ context }, true);
    run.service.start();
    run.started = true;
    return poll();
  },

  send(args) {
    const current = restore(args.state);
    const event = typeof args.event === "string" ? { type: args.event } : args.event;
    if (!args.trusted) {
      if (INTERNAL_EVENT.test(event.type)) {
        fail("invalid-event", `events of type "${event.type}" are internal to the machine and cannot be sent`);
      }
      authorize(bundle.allowWrite, "allowWrite", {
        type: "event", machineInstanceName: args.instanceName, state: current.value,
        context: current.context, event, authContext: args.authContext,
      });
    }
    run = startRun({ context: undefined }, false);
    run.service.start(current);
    run.started = true;
    for (const id of args.cutOff || []) {
      run.service.send({ type: `error.platform.${id}`, data: { message: `service "${id}" was stopped before it finished` } });
    }
    run.service.send(event);
    return poll();
  },

  read(args) {
    const current = machine.resolveState(restore(args.state));
    authorize(bundle.allowRead, "allowRead", {
      machineInstanceName: args.instanceName, state: current.value, context: current.context,
      authContext: args.authContext,
    });
    return { allowed: true };
  },

  // Called by the host after it ran jobs and due timers: what happened since the last poll.
  poll() {
    return poll();
  },

  fetchDone(args) {
    __bs.fetchDone(args.id, args.response);
    return {};
  },

  fetchFailed(args) {
    __bs.fetchFailed(args.id, args.message);
    return {};
  },

  fireTimers(args) {
    __bs.now = args.now;
    __bs.fireDueTimers();
    return {};
  },

  // The window ended (or the step is being abandoned): stop the interpreter and report which
  // services were still running; their error.platform events are delivered before the next event.
  stop() {
    if (!run) return { cutOff: [] };
    const cutOff = [...run.service.children.keys()];
    run.stopping = true;
    try { run.service.stop(); } catch (err) { /* exit actions of a dying VM: nothing to report */ }
    return { cutOff };
  },

  inspect() {
    return {
      exports: Object.keys(bundle),
      isMachine: !!machine && typeof machine === "object" && "__xstatenode" in machine,
      hasDefinition: !!(machine && machine.definition),
      allowRead: typeof bundle.allowRead,
      allowWrite: typeof bundle.allowWrite,
    };
  },
};

// The version's side of upgrades to it and from it (upgrade.js; runtime/migrations.py).
Object.assign(ops, upgradeOps(machine, { restore, persistable, view, checkJson, fail }));

function poll() {
  const r = run;
  const out = {
    macrosteps: r ? r.macrosteps.splice(0) : [],
    fetches: __bs.takeFetches(),
    aborted: __bs.abortedFetches(),
    pendingFetches: __bs.pendingFetches(),
    nextTimerDue: __bs.nextTimerDue(),
    running: r ? [...r.service.children.keys()] : [],
    logs: __bs.takeLogs(),
  };
  if (r && r.error) out.error = errorInfo(r.error);
  return out;
}

function errorInfo(err) {
  return {
    code: (err && err.bsCode) || "machine-error",
    message: err && err.bsCode ? err.message : describe(err),
    stack: err instanceof Error && err.stack ? String(err.stack) : "",
  };
}

globalThis.__bs_entry = (json) => {
  const args = JSON.parse(json);
  try {
    if (args.seed !== undefined) begin(args);
    else if (args.now !== undefined) __bs.now = args.now;
    return JSON.stringify({ ok: ops[args.op](args) });
  } catch (err) {
    const info = errorInfo(err);
    info.logs = __bs.takeLogs();
    return JSON.stringify({ error: info });
  }
};

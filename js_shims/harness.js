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
import { State, StateNode, interpret, spawn } from "npm:xstate";
import { upgradeOps } from "backstate:upgrade";

const machine = bundle.default;

const INTERNAL_EVENT = /^(xstate\.|done\.invoke\.|done\.state\.|error\.platform\.|error\.execution$)/;

function fail(code, message) {
  const err = new Error(message);
  err.bsCode = code;
  throw err;
}

// ---- @statebacked/machine hooks -------------------------------------------------------------
// spawnEphemeralInstance() calls __statebacked_rt.spawn(entity, nameOrOptions); it must spawn
// with the runtime's xstate so the child joins the running interpreter even when the bundle
// inlined its own copy. spawnPersistentInstance() passes a descriptor ({machineName, ...}): the
// child is a separate, durable instance, created by the host after the macrostep that spawned it
// commits (see `persistentChild`). 0.6.0 spells the global __statebaked_rt; both are defined.
const statebackedRuntime = Object.freeze({
  spawn(entity, nameOrOptions) {
    if (entity && typeof entity === "object" && typeof entity.machineName === "string") {
      return spawnPersistent(entity, nameOrOptions);
    }
    return spawn(entity, nameOrOptions);
  },
});
for (const name of ["__statebacked_rt", "__statebaked_rt"]) {
  Object.defineProperty(globalThis, name, { value: statebackedRuntime, enumerable: false });
}

// ---- persistent children and messages between instances ------------------------------------
//
// Nothing leaves the VM here: a child to create or an event for another instance is an entry of
// the macrostep's outbox (its `timers`, each with a `delivery`), written in the macrostep's
// commit and delivered by the host afterwards (runtime/instances/outbox.py), through the
// receiver's own serialized path. A step never waits for another instance.

const SLUG = /^[A-Za-z0-9_-]{1,128}$/;
const PERSISTENT_REF = "statebacked.instance";
const PERSISTENT_INVOKE = "statebacked.invoke";
// UUIDs made while the bundle's top level ran: persistentInvocableSource() defaults the child's
// name to one, the same for every instance of this version, so such a name means "unnamed".
const loadTimeUuids = __bs.takeLoadUuids();

function slug(value, what) {
  if (typeof value !== "string" || !SLUG.test(value)) {
    fail("invalid-child", `${what} must be 1 to 128 letters, digits, "-" or "_" (got ${JSON.stringify(value)})`);
  }
  return value;
}

function currentRun(what) {
  if (!run) fail("invalid-child", `${what} can only be used while the machine handles an event`);
  return run;
}

function spawnPersistent(descriptor, options) {
  const r = currentRun("spawnPersistentInstance");
  const opts = options && typeof options === "object" ? options : {};
  const target = {
    machineName: slug(descriptor.machineName, "machineName"),
    machineInstanceName: descriptor.machineInstanceName === undefined
      ? crypto.randomUUID() : slug(descriptor.machineInstanceName, "machineInstanceName"),
  };
  const id = opts.name === undefined ? crypto.randomUUID() : String(opts.name);
  persistentChild(r, id, target, descriptor.machineVersionId, opts.context, null);
  const ref = { ...descriptor, ...target, type: PERSISTENT_REF, id };
  if (ref.machineVersionId === undefined) delete ref.machineVersionId;
  return ref;
}

// The child `target` to create once this macrostep commits, known to the parent as `id` (for
// sendTo by name); `invokeId` if it was invoked (it then reports done.invoke.<id>).
function persistentChild(r, id, target, versionId, context, invokeId) {
  if (versionId !== undefined && versionId !== null && !/^ver_[A-Za-z0-9_-]{22}$/.test(String(versionId))) {
    fail("invalid-child", `machineVersionId must be a machine version id (ver_...), not ${JSON.stringify(versionId)}`);
  }
  if (context !== undefined && context !== null) checkJson(context, "");
  r.holder.children.set(id, target);
  const delivery = { kind: "create", machine: target.machineName, instance: target.machineInstanceName,
    version: versionId ?? null, context: context ?? null, invokeId };
  outbox(r, `bs.create:${target.machineName}/${target.machineInstanceName}`, {}, 0, delivery);
}

function outbox(r, id, event, delay, delivery) {
  r.touched.add(id);
  r.timers = r.timers.filter((t) => t.id !== id);
  r.timers.push({ id, event, delay, delivery });
}

// The persistent instance a send goes to, or undefined for xstate's own targets: a ref
// (spawnPersistentInstance's), a name this instance gave a persistent child, or the parent of an
// instance that is a persistent child.
function persistentTarget(holder, to) {
  if (to && typeof to === "object" && to.type === PERSISTENT_REF) {
    return { machineName: slug(to.machineName, "the ref's machineName"),
      machineInstanceName: slug(to.machineInstanceName, "the ref's machineInstanceName") };
  }
  if (typeof to !== "string") return undefined;
  const parent = holder.r && holder.r.parent;
  if (to === "#_parent" && parent && !holder.service.parent) {
    return { machineName: parent.machineName, machineInstanceName: parent.instanceName };
  }
  if (holder.children.has(to) && !holder.service.children.has(to)) return holder.children.get(to);
  return undefined;
}

function sendOutbox(holder, event, target, delay, sendId) {
  const r = holder.r;
  const id = sendId === undefined ? `bs.send:${crypto.randomUUID()}` : String(sendId);
  outbox(r, id, event, delay, { kind: "send", machine: target.machineName, instance: target.machineInstanceName });
}

function mapData(data, context, event) {
  if (typeof data === "function") return data(context, event);
  if (!data || typeof data !== "object") return data;
  const out = {};
  for (const key of Object.keys(data)) {
    out[key] = typeof data[key] === "function" ? data[key](context, event) : data[key];
  }
  return out;
}

function invokePersistent(holder, activity, context, _event) {
  const src = activity.src;
  const named = typeof src.machineInstanceName === "string" && !loadTimeUuids.has(src.machineInstanceName);
  const target = {
    machineName: slug(src.machineName, "machineName"),
    machineInstanceName: named ? slug(src.machineInstanceName, "machineInstanceName") : crypto.randomUUID(),
  };
  const data = activity.data ? mapData(activity.data, context, _event.data) : undefined;
  persistentChild(holder.r, String(activity.id), target, src.machineVersionId, data, String(activity.id));
}

// done.invoke.<id> for the parent of an invoked persistent child that reached its final state,
// with the data of that final state, as xstate's interpreter computes it for a child machine.
function doneMessage(state, r) {
  const parent = r.parent;
  if (!parent || parent.invokeId == null) return;
  const root = r.service.machine;
  const final = [...state.configuration].find((sn) => sn.type === "final" && sn.parent === root);
  const data = final && final.doneData ? mapData(final.doneData, state.context, state._event.data) : undefined;
  const event = data === undefined ? { type: `done.invoke.${parent.invokeId}` }
    : { type: `done.invoke.${parent.invokeId}`, data };
  outbox(r, `bs.done:${crypto.randomUUID()}`, event, 0,
    { kind: "send", machine: parent.machineName, instance: parent.instanceName, trusted: true });
}

// ---- ephemeral children of a bundle that inlined its own xstate ----------------------------
//
// spawn() inside assign asks its own copy of xstate which interpreter is running. A bundle built
// with xstate inlined (smply 0.1.18) has a copy the runtime's interpreter is not: its spawn()
// finds none and returns a "deferred" actor that nothing ever starts. The runtime adopts those
// as the machine's actions or its next state see them: a deferred machine carries the machine
// (its initial state's), which the running interpreter spawns under the same id, in place of
// the deferred ref in the context. A deferred callback, promise or observable keeps nothing to
// start: that fails loudly.

const inlinedXstate = !(machine instanceof StateNode);

function isDeferred(value) {
  return !!value && typeof value === "object" && value.deferred === true &&
    typeof value.id === "string" && typeof value.send === "function";
}

// Deferred refs anywhere in the context's plain objects and arrays (`refs: [...refs, spawn()]`).
function adoptDeferred(service, context) {
  if (inlinedXstate) adoptWithin(service, context);
}

function adoptWithin(service, container) {
  if (!container || typeof container !== "object" || typeof container.send === "function") return;
  const proto = Object.getPrototypeOf(container);
  if (!Array.isArray(container) && proto !== Object.prototype && proto !== null) return;
  for (const key of Object.keys(container)) {
    const value = container[key];
    if (!isDeferred(value)) {
      adoptWithin(service, value);
      continue;
    }
    let child = service.children.get(value.id);
    if (!child) {
      const machineOf = value.state && value.state.machine;
      if (!machineOf) {
        fail("not-supported", `spawn() of a callback, promise or observable ("${value.id}") is not supported ` +
          "by this backstate server when the bundle inlines its own copy of xstate: spawn a machine, " +
          "use spawnEphemeralInstance from @statebacked/machine, or build the bundle with xstate external");
      }
      child = service.spawnMachine(machineOf, { id: value.id });
      // Its initial actions' sends wait in its outgoing queue: xstate sends them at once from
      // the initial state, but recognizes that state by its own copy's init event.
      for (let item = child._outgoingQueue.shift(); item; item = child._outgoingQueue.shift()) {
        item[0].send(item[1]);
      }
    }
    container[key] = child;
  }
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

function persistable(state, children) {
  // Actions are stripped so a restore never re-runs effects (delayed sends live in the host's
  // timer table instead). `history`, the previous State that XState keeps one level of, is
  // dropped too: no transition reads it, and it doubled the cost of every save and restore.
  // `bsChildren` is ours: the names this instance gave its persistent children (sendTo by name).
  const json = state.toJSON();
  json.actions = [];
  delete json.history;
  if (children && children.size) json.bsChildren = Object.fromEntries(children);
  return json;
}

function restore(config) {
  // The host splices the persisted JSON into the request as an object: parsed once, here.
  config.actions = [];
  delete config.bsChildren;
  return State.create(config);   // interpreters and machines resolve it against the machine
}

function childrenOf(config) {
  return new Map(Object.entries((config && config.bsChildren) || {}));
}

function checkJson(value, path) {
  // Persisted context must survive a JSON round trip unchanged (toJSON objects, such as actor
  // refs, are accepted as JSON serialises them). Every macrostep checks the whole context: the
  // walk builds no paths, and only a context it refuses is walked again to name the first value
  // JSON cannot hold.
  if (!jsonSafe(value)) checkJsonAt(value, path);
}

// Whether checkJsonAt would accept `value`. A false "no" only costs the second walk (an array's
// holes, which forEach skips, are refused here). Strings, booleans and finite numbers, most of
// a context, are accepted where they are met, without a call each.
function jsonSafe(value) {
  if (value === null) return true;
  const type = typeof value;
  if (type === "string" || type === "boolean") return true;
  if (type === "number") return Number.isFinite(value);
  if (type !== "object") return false;
  return objectSafe(value);
}

function objectSafe(value) {
  if (typeof value.toJSON === "function") return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const type = typeof item;
      if (type === "string" || type === "boolean") continue;
      if (type === "number" ? !Number.isFinite(item) : !jsonSafe(item)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const item = value[keys[i]];
    const type = typeof item;
    if (type === "string" || type === "boolean" || type === "undefined") continue;
    if (type === "number" ? !Number.isFinite(item) : !jsonSafe(item)) return false;
  }
  return true;
}

function checkJsonAt(value, path) {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail("invalid-context", `context${path} is ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value !== "object") fail("invalid-context", `context${path} is a ${typeof value}, which JSON cannot hold`);
  if (typeof value.toJSON === "function") return;
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJsonAt(item, `${path}[${i}]`));
    return;
  }
  if (proto !== Object.prototype && proto !== null) {
    const kind = (value.constructor && value.constructor.name) || "object";
    fail("invalid-context", `context${path} is a ${kind}, which JSON cannot hold`);
  }
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined) checkJsonAt(value[key], `${path}.${key}`);
  }
}

function view(state) {
  const ctx = state.context;
  const out = { value: state.value, tags: [...state.tags].sort(), done: !!state.done };
  if (ctx && typeof ctx === "object" && ctx.public !== undefined) out.publicContext = ctx.public;
  return out;
}

// ---- interpreters and the steps they run -----------------------------------------------------
//
// An interpreter's hooks write into the recorder of the step it is running (`holder.r`), so one
// interpreter can serve several steps: warm VMs keep it between an instance's events (`live`).

let run = null;   // the recorder of the current step: its interpreter and what it produced

// Instance key -> the interpreter holder of its last step, when that step settled cleanly and
// the host asked to keep it (warm VMs, runtime/pool.py). The host's registry is the authority:
// it sends `warm` only for a key it knows this VM keeps at the row's sequence number, and names
// the keys to forget in `drop`.
const live = new Map();

function startInterpreter(initial, isCreate, children) {
  const holder = { service: interpret(machineFor(initial), { deferEvents: true }), r: null,
    children: children || new Map() };
  const service = holder.service;
  // Delayed sends to self become durable timer rows; other delayed sends stay in-window.
  // Within one macrostep the host applies cancels before arms, so an arm-then-cancel pair must
  // not reach it as both (the cancelled event would still fire); a cancel-then-arm (snooze)
  // must. A send whose id is already armed replaces it: the earlier one never fires.
  service.defer = (action) => {
    const r = holder.r;
    const to = action.to;
    const target = persistentTarget(holder, to);
    if (target) {
      sendOutbox(holder, action._event.data, target, Number(action.delay) || 0, action.id);
    } else if (to === undefined || to === "#_internal") {
      const id = String(action.id);
      r.touched.add(id);
      r.timers = r.timers.filter((t) => t.id !== id);
      r.timers.push({ id, event: action._event.data, delay: Number(action.delay) || 0 });
    } else {
      setTimeout(() => service.sendTo(action._event, to), action.delay);
    }
  };
  service.cancel = (sendId) => {
    const r = holder.r;
    if (r.stopping) return;
    const id = String(sendId);
    r.touched.add(id);
    r.timers = r.timers.filter((t) => t.id !== id);
    r.cancels.push(id);
  };
  const sendTo = service.sendTo;
  service.sendTo = (event, to, immediate) => {
    if (isDeferred(to) && service.children.has(to.id)) to = service.children.get(to.id);
    const target = persistentTarget(holder, to);
    if (!target) return sendTo(event, to, immediate);
    sendOutbox(holder, event.data, target, 0, undefined);
  };
  // An invoke whose src is persistentInvocableSource(...) starts no service in this VM: it
  // records the child to create (xstate itself would find no service and silently do nothing).
  const exec = service._exec;
  service._exec = (action, context, _event, actionMap) => {
    adoptDeferred(service, context);
    const activity = action && action.type === "xstate.start" ? action.activity : undefined;
    if (!activity || activity.type !== "xstate.invoke" || !activity.src || activity.src.type !== PERSISTENT_INVOKE) {
      return exec(action, context, _event, actionMap);
    }
    if (service.status !== 1) return undefined;   // InterpreterStatus.Running
    if (!service.machine.config.predictableActionArguments && !service.state.activities[activity.id]) return undefined;
    invokePersistent(holder, activity, context, _event);
    return undefined;
  };
  const send = service.send;
  service.send = (event, payload) => {
    try {
      return send(event, payload);
    } catch (err) {
      if (!holder.r.error) holder.r.error = err;
      throw err;
    }
  };
  service.onTransition((state) => {
    const r = holder.r;
    if (r.stopping || (!r.started && !isCreate)) return;   // restoring is not a transition
    adoptDeferred(service, state.context);
    r.macrosteps.push(record(state, r));
  });
  return holder;
}

function beginStep(holder, key, parent) {
  const r = { holder, service: holder.service, key, parent: parent || null, macrosteps: [], timers: [],
    cancels: [], fetches: [], error: null, started: false, stopping: false,
    // Send ids this step armed, re-armed or cancelled: a timer of the batch among them was
    // superseded by an earlier event of it (see deliverOne).
    touched: new Set() };
  holder.r = r;
  run = r;
  return r;
}

function normalized(event) {
  return typeof event === "string" ? { type: event } : event;
}

function authorizeEvent(delivery, state, instanceName) {
  if (delivery.trusted) return;
  const event = normalized(delivery.event);
  if (INTERNAL_EVENT.test(event.type)) {
    fail("invalid-event", `events of type "${event.type}" are internal to the machine and cannot be sent`);
  }
  authorize(bundle.allowWrite, "allowWrite", {
    type: "event", machineInstanceName: instanceName, state: state.value,
    context: state.context, event, authContext: delivery.authContext,
  });
}

// A later event of a batch: its macrosteps' count, or its error after undoing it. A due timer
// (`sendId`) that an earlier event of the batch cancelled or re-armed, or that a final state
// dropped, is not delivered: those commits delete its row, as they would before a delivery of
// its own.
function deliverOne(delivery, instanceName) {
  const r = run;
  if (delivery.sendId !== undefined && (r.touched.has(delivery.sendId) || r.service.state.done)) {
    return { superseded: true };
  }
  const before = { state: r.service.state, steps: r.macrosteps.length, timers: r.timers.slice(),
    cancels: r.cancels.slice(), fetches: __bs.takeFetches(), children: new Map(r.holder.children),
    touched: new Set(r.touched) };
  try {
    authorizeEvent(delivery, r.service.state, instanceName);
  } catch (err) {   // refused before anything ran: nothing to undo
    r.fetches.push(...before.fetches);
    return { error: errorInfo(err) };
  }
  try {
    r.service.send(normalized(delivery.event));
    if (r.error) throw r.error;
  } catch (err) {
    undo(r, before);
    return { error: errorInfo(err) };
  }
  r.fetches.push(...before.fetches);
  return { steps: r.macrosteps.length - before.steps };
}

// Back to the state before a failed event, on a new interpreter (the failed one may have
// stopped mid-transition): its macrosteps, timers and fetches are forgotten.
function undo(r, before) {
  __bs.takeFetches();   // the failed event's: never performed
  r.fetches.push(...before.fetches);
  r.stopping = true;
  try { r.service.stop(); } catch (err) { /* its exit actions belong to the undone event */ }
  const holder = startInterpreter({ context: undefined }, false, before.children);
  holder.r = r;
  Object.assign(r, { holder, service: holder.service, error: null, started: false, stopping: false,
    timers: before.timers, cancels: before.cancels, touched: before.touched });
  r.macrosteps.length = before.steps;
  holder.service.start(restore(persistable(before.state)));
  r.started = true;
}

function machineFor(initial) {
  return initial.context === undefined ? machine : machine.withContext(initial.context);
}

function record(state, r) {
  const outer = phases && phases.to("checkJson");
  if (state.context !== undefined) checkJson(state.context, "");
  if (phases) phases.to("persistable");
  const persisted = persistable(state, r.holder.children);
  if (phases) phases.to("view");
  const shown = view(state);
  if (phases) phases.to("record");
  const step = {
    event: state._event ? state._event.data : state.event,
    state: persisted,
    view: shown,
    timers: r.timers.splice(0),
    cancels: r.cancels.splice(0),
    logs: __bs.takeLogs(),
    clearTimers: false,
    // Services running once this macrostep is committed. The host stores them with the
    // state, so a crash before the step ends still leaves the list of services to fail.
    running: [...r.service.children.keys()],
  };
  if (state.done) {
    // A machine in its top-level final state stops, and XState drops its delayed events; what
    // it sent to other instances on the way is delivered, and its parent learns it is done.
    step.timers = step.timers.filter((t) => t.delivery);
    step.clearTimers = true;
    doneMessage(state, r);
    step.timers.push(...r.timers.splice(0));
  }
  if (phases) phases.to(outer);
  return step;
}

function begin(args) {
  __bs.now = args.now;
  __bs.reseed(args.seed);
}

// ---- where an event's time goes (bench/guest_profile.py) ------------------------------------
//
// Off unless a request carries `profile: true` (only the benchmark sends it): then every phase
// boundary adds the time since the last one to the phase being left, and `ops.profile` answers
// the last profiled call's totals. Off, each boundary is one null check. The clock is the
// engine's own performance.now (WASI's monotonic clock, sub-microsecond), captured at load;
// Date.now is milliseconds only, and only the fallback for a bundle that took `performance`
// away at its top level (which must not stop it loading).

const hrtime = globalThis.performance && typeof performance.now === "function"
  ? performance.now.bind(performance) : Date.now;
let phases = null;        // the recorder of the call being profiled
let lastPhases = null;    // what the last profiled call recorded

class Phases {
  constructor(first) {
    this.ms = {};
    this.current = first;
    this.start = this.at = hrtime();
  }

  // Enter `name`; the phase left, so a nested phase can return to it.
  to(name) {
    const now = hrtime();
    this.ms[this.current] = (this.ms[this.current] || 0) + (now - this.at);
    this.at = now;
    const left = this.current;
    this.current = name;
    return left;
  }

  done() {
    this.to("");
    return { totalMs: this.at - this.start, ms: this.ms };
  }
}

// ---- operations ----------------------------------------------------------------------------

const ops = {
  create(args) {
    forget(args);
    if (phases) phases.to("authorize");
    const base = machine.context;
    const context = args.context == null ? base
      : { ...(base && typeof base === "object" ? base : {}), ...args.context };
    authorize(bundle.allowWrite, "allowWrite", {
      type: "initialization", machineInstanceName: args.instanceName, context, authContext: args.authContext,
    });
    if (phases) phases.to("start");
    const r = beginStep(startInterpreter({ context }, true), args.key, args.parent);
    r.service.start();
    r.started = true;
    return poll();
  },

  // One or more events, delivered in order on one interpreter (`args.events`, each
  // {event, authContext, trusted}). A single event that fails fails the op, as it always did.
  // In a batch an event that fails fails alone: its transition is undone (the interpreter starts
  // again from the state before it, its fetches are dropped) and the next event goes on. An
  // event that leaves a service running ends the batch: the events after it are not run
  // (`outcomes` is shorter than `events`), and the host delivers them in a later step.
  send(args) {
    forget(args);
    const kept = args.warm ? live.get(args.key) : undefined;
    if (args.warm && !kept) fail("internal-error", "the host asked for a live state this VM does not keep");
    if (args.key !== undefined) live.delete(args.key);   // this step's end decides again
    if (phases) phases.to("restore");
    const children = kept ? kept.children : childrenOf(args.state);
    const current = kept ? kept.service.state : restore(args.state);
    const [first, ...rest] = args.events;
    if (phases) phases.to("authorize");
    authorizeEvent(first, current, args.instanceName);
    if (phases) phases.to("start");
    let r;
    if (kept) {
      r = beginStep(kept, args.key, args.parent);
    } else {
      r = beginStep(startInterpreter({ context: undefined }, false, children), args.key, args.parent);
      r.service.start(current);
    }
    r.started = true;
    if (phases) phases.to("send");
    for (const id of args.cutOff || []) {
      r.service.send({ type: `error.platform.${id}`, data: { message: `service "${id}" was stopped before it finished` } });
    }
    r.service.send(normalized(first.event));
    if (!rest.length) return poll();
    const outcomes = [{ steps: r.macrosteps.length }];
    for (const delivery of rest) {
      if (r.error || r.service.children.size > 0) break;   // the step goes on with services
      outcomes.push(deliverOne(delivery, args.instanceName));
    }
    return { ...poll(), outcomes };
  },

  read(args) {
    const current = machine.resolveState(restore(args.state));
    authorize(bundle.allowRead, "allowRead", {
      machineInstanceName: args.instanceName, state: current.value, context: current.context,
      authContext: args.authContext,
    });
    return { allowed: true, logs: __bs.takeLogs() };
  },

  // allowRead for several readers of one state in one call (the realtime feed): the state is
  // restored once; each reader is given its own copy, so one authorizer call cannot change
  // what the next one sees.
  readMany(args) {
    const current = machine.resolveState(restore(args.state));
    const seen = JSON.stringify({ state: current.value, context: current.context });
    const verdicts = args.authContexts.map((authContext) => {
      try {
        authorize(bundle.allowRead, "allowRead", {
          machineInstanceName: args.instanceName, ...JSON.parse(seen), authContext,
        });
        return null;
      } catch (err) {
        return errorInfo(err);
      }
    });
    return { verdicts, logs: __bs.takeLogs() };
  },

  // The phases of the last call that carried `profile` (bench/guest_profile.py).
  profile() {
    return lastPhases;
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
    if (run.key !== undefined) live.delete(run.key);
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

  // The machine's structure for the dashboard's chart, read from machine.definition once when a
  // version is finalized (runtime/definitions.py documents the shape). Only names and structure
  // leave the VM: no functions, no context, no meta.
  definition() {
    try {
      return { format: 1, root: describeNode(machine.definition) };
    } catch (err) {
      return { format: 1, unavailable: `reading the machine's definition threw ${describe(err)}` };
    }
  },
};

function forget(args) {
  for (const key of args.drop || []) live.delete(key);
}

// ---- the definition, JSON-safe -------------------------------------------------------------

function describeNode(node) {
  const out = { id: String(node.id), key: String(node.key), type: String(node.type) };
  if (node.initial !== undefined) out.initial = String(node.initial);
  if (node.type === "history") out.history = node.history === "deep" ? "deep" : "shallow";
  if (typeof node.description === "string") out.description = node.description;
  out.tags = names(node.tags);
  out.entry = names((node.entry || node.onEntry || []).filter((a) => !isAfterTimer(a)));
  out.exit = names((node.exit || node.onExit || []).filter((a) => !isAfterTimer(a)));
  out.invoke = (node.invoke || []).map((inv) => ({ id: String(inv.id), src: srcName(inv.src) }));
  out.on = (node.transitions || []).map(describeTransition);
  out.states = Object.keys(node.states || {}).map((key) => describeNode(node.states[key]));
  return out;
}

function describeTransition(t) {
  const event = String(t.eventType);
  const out = { event, kind: eventKind(event) };
  out.targets = (t.target || []).map((target) => String(typeof target === "string" ? target : target.id));
  out.internal = !!t.internal;
  const guard = guardName(t.cond);
  if (guard !== undefined) out.guard = guard;
  if (out.kind === "after") out.delay = typeof t.delay === "number" ? t.delay : String(t.delay);
  out.actions = names(t.actions);
  return out;
}

// The send and cancel that xstate adds to a node's entry and exit for each `after` delay: the
// delayed transition already says it.
function isAfterTimer(action) {
  const id = action && (action.type === "xstate.cancel" ? action.sendId : action.type === "xstate.send" ? action.id : undefined);
  return typeof id === "string" && id.startsWith("xstate.after(");
}

function eventKind(type) {
  if (type === "") return "always";
  if (type === "*") return "wildcard";
  if (type.startsWith("xstate.after(")) return "after";
  if (type.startsWith("done.")) return "done";
  if (type.startsWith("error.")) return "error";
  return "event";
}

function guardName(cond) {
  if (cond === undefined || cond === null) return undefined;
  // An inline function gets xstate's default guard type and the function's own name, which is
  // the property it was written in ("cond") when it has none: then it is just "guarded" ("").
  if (cond.type === "xstate.guard") {
    const name = typeof cond.name === "string" ? cond.name : "";
    return name === "cond" ? "" : clip(name);
  }
  return clip(String(cond.type));
}

function srcName(src) {
  if (typeof src === "string") return clip(src);
  if (src && typeof src.type === "string") return clip(src.type);
  if (typeof src === "function") return clip(src.name) || "inline";
  return "inline";
}

function names(list) {
  if (!list) return [];
  const items = Array.isArray(list) ? list : [...list];
  return items.map((item) => {
    if (typeof item === "string") return clip(item);
    if (item && typeof item.exec === "function" && item.type === String(item.exec)) {
      return clip(item.exec.name) || "inline";   // xstate names an anonymous action by its source
    }
    if (item && typeof item.type === "string") return clip(item.type);
    return "inline";
  });
}

function clip(name) {
  const text = String(name || "");
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

// The version's side of upgrades to it and from it (upgrade.js; runtime/migrations.py).
Object.assign(ops, upgradeOps(machine, { restore, persistable, view, checkJson, fail }));

function poll() {
  if (phases) phases.to("poll");
  const r = run;
  const out = {
    macrosteps: r ? r.macrosteps.splice(0) : [],
    fetches: r ? r.fetches.splice(0).concat(__bs.takeFetches()) : __bs.takeFetches(),
    aborted: __bs.abortedFetches(),
    pendingFetches: __bs.pendingFetches(),
    nextTimerDue: __bs.nextTimerDue(),
    running: r ? [...r.service.children.keys()] : [],
    logs: __bs.takeLogs(),
  };
  if (r && r.error) out.error = errorInfo(r.error);
  if (r && r.key !== undefined) {
    // Kept only while settled cleanly: no error, no service running, nothing spawned alive.
    if (!r.error && !r.stopping && r.service.children.size === 0) live.set(r.key, r.holder);
    else live.delete(r.key);
  }
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
  return args.profile ? profiled(json) : entry(args);
};

function entry(args) {
  try {
    if (args.seed !== undefined) begin(args);
    else if (args.now !== undefined) __bs.now = args.now;
    if (phases) phases.to("op");
    const ok = ops[args.op](args);
    if (phases) phases.to("encode");
    return JSON.stringify({ ok });
  } catch (err) {
    const info = errorInfo(err);
    info.logs = __bs.takeLogs();
    return JSON.stringify({ error: info });
  }
}

// One call with its phases recorded. The request is parsed again, timed: the first parse ran
// before the flag was known (the host counts that one as part of the call's overhead).
function profiled(json) {
  phases = new Phases("decode");
  try {
    const args = JSON.parse(json);
    phases.to("begin");
    return entry(args);
  } finally {
    lastPhases = phases.done();
    phases = null;
  }
}

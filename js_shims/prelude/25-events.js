// Event and EventTarget (one target, no propagation path), and AbortController/AbortSignal on
// top of them. onAbort() lets fetch register abort algorithms that user code cannot see or
// remove; AbortSignal.timeout uses the timers of 20-timers.js.

let setEventTarget;
let isImmediatelyStopped;

class Event {
  #type;
  #target = null;
  #bubbles;
  #cancelable;
  #composed;
  #canceled = false;
  #stopped = false;
  #timeStamp = performance.now();

  constructor(type, init = undefined) {
    if (arguments.length === 0) throw new TypeError("Event: the type argument is required");
    this.#type = String(type);
    this.#bubbles = Boolean(init?.bubbles);
    this.#cancelable = Boolean(init?.cancelable);
    this.#composed = Boolean(init?.composed);
  }

  get type() { return this.#type; }
  get target() { return this.#target; }
  get currentTarget() { return this.#target; }
  get srcElement() { return this.#target; }
  get bubbles() { return this.#bubbles; }
  get cancelable() { return this.#cancelable; }
  get composed() { return this.#composed; }
  get defaultPrevented() { return this.#canceled; }
  get timeStamp() { return this.#timeStamp; }
  get isTrusted() { return false; }
  get eventPhase() { return this.#target ? 2 : 0; }
  composedPath() { return this.#target ? [this.#target] : []; }
  preventDefault() { if (this.#cancelable) this.#canceled = true; }
  stopPropagation() {}
  stopImmediatePropagation() { this.#stopped = true; }

  static {
    setEventTarget = (event, target) => { event.#target = target; };
    isImmediatelyStopped = (event) => event.#stopped;
  }
}

const listenerOptions = (options) =>
  typeof options === "boolean"
    ? { capture: options, once: false, signal: undefined }
    : { capture: Boolean(options?.capture), once: Boolean(options?.once), signal: options?.signal };

class EventTarget {
  #listeners = new Map();   // type -> [{callback, capture, once, removed}]

  addEventListener(type, callback, options = undefined) {
    if (callback === null || callback === undefined) return;
    const { capture, once, signal } = listenerOptions(options);
    if (signal !== undefined && !isAbortSignal(signal)) {
      throw new TypeError("addEventListener: options.signal must be an AbortSignal");
    }
    if (signal?.aborted) return;
    const list = this.#listeners.get(String(type)) ?? [];
    if (list.some((l) => l.callback === callback && l.capture === capture)) return;
    list.push({ callback, capture, once, removed: false });
    this.#listeners.set(String(type), list);
    if (signal) onAbort(signal, () => this.removeEventListener(type, callback, { capture }));
  }

  removeEventListener(type, callback, options = undefined) {
    const { capture } = listenerOptions(options);
    const list = this.#listeners.get(String(type)) ?? [];
    const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
    if (i < 0) return;
    list[i].removed = true;
    list.splice(i, 1);
  }

  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError("dispatchEvent: expected an Event");
    setEventTarget(event, this);
    for (const l of [...(this.#listeners.get(event.type) ?? [])]) {
      if (l.removed) continue;
      if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
      invokeListener(this, l.callback, event);
      if (isImmediatelyStopped(event)) break;
    }
    return !event.defaultPrevented;
  }
}

// A throwing listener is reported, and the other listeners still run.
function invokeListener(target, callback, event) {
  try {
    if (typeof callback === "function") callback.call(target, event);
    else if (typeof callback?.handleEvent === "function") callback.handleEvent(event);
  } catch (error) {
    reportError(error);
  }
}

// ------------------------------------------------------------------------------ abort

let signalAbort;
let onAbort;
let isAbortSignal;

const abortError = () => new DOMException("This operation was aborted", "AbortError");

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  #onabort = null;
  // Run before the abort event, and invisible to user code (fetch uses them).
  #algorithms = new Set();

  constructor(key) {
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
    super();
  }

  get aborted() { return this.#aborted; }
  get reason() { return this.#reason; }
  get onabort() { return this.#onabort; }
  set onabort(handler) { this.#onabort = typeof handler === "function" ? handler : null; }

  throwIfAborted() {
    if (this.#aborted) throw this.#reason;
  }

  static abort(reason = undefined) {
    const signal = new AbortSignal(INTERNAL);
    signalAbort(signal, reason);
    return signal;
  }

  static timeout(ms) {
    const signal = new AbortSignal(INTERNAL);
    const timedOut = () =>
      signalAbort(signal, new DOMException("The operation timed out.", "TimeoutError"));
    addTimer(timedOut, ms, [], false);
    return signal;
  }

  static any(signals) {
    const signal = new AbortSignal(INTERNAL);
    const list = [...signals];
    const done = list.find((s) => s.aborted);
    if (done) signalAbort(signal, done.reason);
    else for (const s of list) onAbort(s, () => signalAbort(signal, s.reason));
    return signal;
  }

  static {
    isAbortSignal = (x) => typeof x === "object" && x !== null && #aborted in x;
    onAbort = (signal, algorithm) => {
      signal.#algorithms.add(algorithm);
      return () => signal.#algorithms.delete(algorithm);
    };
    signalAbort = (signal, reason) => {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined ? abortError() : reason;
      const algorithms = [...signal.#algorithms];
      signal.#algorithms.clear();
      for (const algorithm of algorithms) invokeListener(signal, algorithm, undefined);
      const event = new Event("abort");
      setEventTarget(event, signal);
      if (signal.#onabort) invokeListener(signal, signal.#onabort, event);
      signal.dispatchEvent(event);
    };
  }
}

class AbortController {
  #signal = new AbortSignal(INTERNAL);
  get signal() { return this.#signal; }
  abort(reason = undefined) { signalAbort(this.#signal, reason); }
}

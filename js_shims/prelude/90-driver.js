// globalThis.__bs, the protocol object through which the Python driver (runtime/step.py, via
// js_shims/harness.js) moves the clock, takes logs and fetches, fires timers and settles
// fetches. It gathers the queues of the earlier parts; its methods cannot be replaced.

// The protocol with the Python driver (js_shims/harness.js and runtime/step.py use it):
//   now                      epoch ms, set by the driver before every slice of JS; timers
//                            and log timestamps read it (Date.now() stays native)
//   reseed(hex)              seed Math.random with 32 bytes (64 hex digits)
//   takeLogs()               [{ts, stream, text}] recorded since the last call
//   nextTimerDue()           the earliest due time of the pending timers, or null
//   fireDueTimers()          run timers due at `now`, in (due, id) order; returns how many
//   pendingTimers()          how many timers are pending
//   takeFetches()            [{id, url, method, headers: [[k, v]], body: base64 | null}]
//   fetchDone(id, response)  {status, statusText, url, headers: [[k, v]], body: base64}
//   fetchFailed(id, message) reject that fetch with TypeError(message)
//   pendingFetches()         fetches not settled yet (aborted ones excluded)
//   abortedFetches()         ids of taken fetches aborted since the last call
//   takeLoadUuids()          the Set of UUIDs crypto.randomUUID made so far; stops recording
// Unknown or already settled fetch ids are ignored. The methods cannot be replaced.
const bs = { now: Date.now() };

const bsMethods = {
  reseed,
  takeLogs() {
    const taken = logs;
    logs = [];
    return taken;
  },
  nextTimerDue,
  fireDueTimers,
  pendingTimers: () => timers.size,
  takeFetches,
  fetchDone,
  fetchFailed,
  pendingFetches: () => fetches.size,
  abortedFetches,
  takeLoadUuids,
};

for (const [name, fn] of Object.entries(bsMethods)) {
  Object.defineProperty(bs, name, { value: fn, enumerable: true });
}
Object.preventExtensions(bs);
Object.defineProperty(globalThis, "__bs", { value: bs, enumerable: false });

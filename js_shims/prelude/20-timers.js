// setTimeout/setInterval and their clear functions on the driver's clock: the driver advances
// __bs.now and calls __bs.fireDueTimers(), which runs due callbacks in (due, id) order.

// Timers run on the driver's clock (__bs.now): the driver advances it and calls
// __bs.fireDueTimers(), so tests and replays need no real sleeping.
const timers = new Map();   // id -> {id, due, callback, args, interval (ms) or null}
let lastTimerId = 0;

function addTimer(callback, delay, args, repeat) {
  if (typeof callback !== "function") {
    throw new TypeError("Timer callback must be a function (strings are not evaluated)");
  }
  // Whole milliseconds; NaN, negative, missing and infinite delays mean "now" (browsers wrap
  // huge delays around to 0 as well, but a finite one is kept: the driver's clock has room).
  let ms = Math.trunc(Number(delay));
  if (!(ms > 0) || ms === Infinity) ms = 0;
  // A zero interval would be due again at once, forever, without the clock moving.
  if (repeat) ms = Math.max(ms, 1);
  const id = ++lastTimerId;
  timers.set(id, { id, due: bs.now + ms, callback, args, interval: repeat ? ms : null });
  return id;
}

function setTimeout(callback, delay = 0, ...args) {
  return addTimer(callback, delay, args, false);
}

function setInterval(callback, delay = 0, ...args) {
  return addTimer(callback, delay, args, true);
}

// The two clear functions are interchangeable, as in browsers.
function clearTimeout(id) {
  timers.delete(Number(id));
}

function clearInterval(id) {
  timers.delete(Number(id));
}

function nextTimerDue() {
  let due = null;
  for (const t of timers.values()) if (due === null || t.due < due) due = t.due;
  return due;
}

function fireDueTimers() {
  const now = bs.now;
  // Chosen before any callback runs: timers they add are left for the next call, so a
  // setTimeout(f, 0) chain cannot spin inside one call.
  const due = [...timers.values()].filter((t) => t.due <= now);
  due.sort((a, b) => a.due - b.due || a.id - b.id);
  let fired = 0;
  for (const t of due) {
    if (timers.get(t.id) !== t) continue;   // cleared by an earlier callback
    if (t.interval === null) timers.delete(t.id);
    else t.due = now + t.interval;
    fired++;
    try {
      t.callback.apply(undefined, t.args);
    } catch (error) {
      reportError(error);
    }
  }
  return fired;
}

// Eventless (`always`) transitions with guards: resolved at creation, chained through several
// transient states in one macrostep, and re-checked after a context change.
import { createMachine, assign } from "xstate";

const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });

export default createMachine({
  id: "thermo",
  predictableActionArguments: true,
  initial: "check",
  context: { temp: 20, log: [] },
  states: {
    check: {
      entry: log("check"),
      always: [
        { target: "hot", cond: (ctx) => ctx.temp > 25 },
        { target: "cold", cond: (ctx) => ctx.temp < 15 },
        { target: "ok" },
      ],
    },
    hot: { tags: ["alert"], entry: log("hot"), on: { SET: { target: "check", actions: "setTemp" } } },
    cold: {
      entry: log("cold"),
      always: { target: "freezing", cond: (ctx) => ctx.temp < 0 },
      on: { SET: { target: "check", actions: "setTemp" } },
    },
    freezing: { tags: ["alert"], entry: log("freezing"), on: { SET: { target: "check", actions: "setTemp" } } },
    ok: {
      entry: log("ok"),
      on: {
        SET: { target: "check", actions: "setTemp" },
        NUDGE: { actions: assign({ temp: (ctx, e) => ctx.temp + e.by }) }, // no target, yet...
      },
      always: { target: "check", cond: (ctx) => ctx.temp > 25 || ctx.temp < 15 }, // ...re-checked
    },
  },
}, {
  actions: { setTemp: assign({ temp: (_ctx, e) => e.temp }) },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { temp: 30 } } },
  { send: { type: "SET", temp: 20 } },
  { send: { type: "NUDGE", by: 3 } }, // 23: stays ok
  { send: { type: "NUDGE", by: 5 } }, // 28: ok -> check -> hot
  { send: { type: "SET", temp: -4 } }, // check -> cold -> freezing
  { send: { type: "SET", temp: 10 } },
];

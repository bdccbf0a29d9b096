// raise (handled in the same macrostep, before anything sent) versus send to self without delay
// (queued as a separate macrostep, after the current one completes), including from the
// initial state's entry at creation.
import { createMachine, assign, raise, send } from "xstate";

const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });

export default createMachine({
  id: "rs",
  predictableActionArguments: true,
  initial: "booting",
  context: { log: [] },
  states: {
    booting: {
      entry: [log("entry:booting"), send("BOOTED")],
      on: { BOOTED: { target: "idle", actions: log("got:booted") } },
    },
    idle: { on: { GO: "first" } },
    first: {
      entry: [log("entry:first"), send("FROM_SEND"), raise("FROM_RAISE"), log("entry:first-end")],
      on: {
        FROM_RAISE: { target: "second", actions: log("got:raise") },
        FROM_SEND: { actions: log("got:send-in-first") }, // must not happen
      },
    },
    second: {
      entry: log("entry:second"),
      on: { FROM_SEND: { target: "third", actions: log("got:send") } },
    },
    third: {
      entry: [log("entry:third"), send((ctx) => ({ type: "PING", n: ctx.log.length }))],
      on: {
        PING: { actions: assign({ log: (ctx, e) => [...ctx.log, `ping:${e.n}`] }) },
        AGAIN: { actions: [raise("PING_RAISED"), log("again")] },
        PING_RAISED: { actions: log("got:ping-raised") },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: "GO" },
  { send: "AGAIN" },
];

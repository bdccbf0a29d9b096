// Ephemeral children spawned inside assign: the child's entry sendParent, a send to it by name,
// its answer, and the done.invoke.<id> its final state sends; spawned once into a field and once
// into a list. Run with xstate imported and with xstate inlined in the bundle (smply 0.1.18).
import { createMachine, assign, spawn, send, sendParent } from "xstate";

const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });

const kid = createMachine({
  id: "kid",
  predictableActionArguments: true,
  initial: "idle",
  states: {
    idle: {
      entry: sendParent({ type: "ready" }),
      on: { ping: { target: "over", actions: sendParent((_ctx, e) => ({ type: "pong", n: e.n })) } },
    },
    over: { type: "final" },
  },
});

export default createMachine({
  id: "spawner",
  predictableActionArguments: true,
  initial: "idle",
  context: { ref: null, refs: [], log: [], n: 0 },
  states: {
    idle: {
      on: {
        GO: { actions: [assign({ ref: () => spawn(kid, "kid") }), log("spawned")] },
        GO_LIST: { actions: [assign({ refs: (ctx) => [...ctx.refs, spawn(kid, "kid")] }), log("listed")] },
        ready: {
          actions: [
            assign({ n: (ctx) => ctx.n + 1 }),
            log("ready"),
            send((ctx) => ({ type: "ping", n: ctx.n }), { to: "kid" }),
          ],
        },
        pong: { actions: assign({ log: (ctx, e) => [...ctx.log, `pong ${e.n}`] }) },
        "done.invoke.kid": { actions: log("kid done") },
        FINISH: "done",
      },
    },
    done: { type: "final" },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: "GO" },
  { send: "GO_LIST" },
  { send: "FINISH" },
];

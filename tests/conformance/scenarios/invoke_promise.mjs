// Invoked promises: resolving (onDone, event.data), rejecting with a plain value and with an
// Error (onError, event.data), a named service from the machine options, an async function, a
// promise resolved from a microtask, and an invocation in the initial state (settled at create).
import { createMachine, assign } from "xstate";

const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });

export default createMachine(
  {
    id: "fetcher",
    predictableActionArguments: true,
    initial: "loading",
    context: { input: 21, result: null, error: null, log: [] },
    states: {
      loading: {
        tags: ["busy"],
        invoke: {
          id: "double",
          src: (ctx) => Promise.resolve(ctx.input * 2),
          onDone: { target: "loaded", actions: [assign({ result: (_ctx, e) => e.data }), log("done:double")] },
          onError: "failed",
        },
      },
      loaded: {
        on: { REJECT: "rejecting", THROW: "throwing", ASYNC: "async", MICRO: "micro" },
      },
      rejecting: {
        invoke: {
          id: "refuse",
          src: () => Promise.reject({ code: 42, reason: "nope" }),
          onDone: "loaded",
          onError: { target: "failed", actions: assign({ error: (_ctx, e) => e.data }) },
        },
      },
      throwing: {
        invoke: {
          id: "explode",
          src: "explode",
          onError: {
            target: "failed",
            actions: assign({ error: (_ctx, e) => ({ message: e.data.message, type: e.type }) }),
          },
        },
      },
      async: {
        invoke: {
          id: "sum",
          src: async (ctx) => {
            await null;
            return { total: ctx.result + 1 };
          },
          onDone: { target: "loaded", actions: assign({ result: (_ctx, e) => e.data.total }) },
        },
      },
      micro: {
        invoke: {
          id: "tick",
          src: () => new Promise((resolve) => queueMicrotask(() => resolve("tock"))),
          onDone: { target: "loaded", actions: log("done:tick") },
        },
      },
      failed: { tags: ["error"], on: { RETRY: { target: "loading", actions: assign({ error: null }) } } },
    },
  },
  {
    services: {
      explode: async () => {
        throw new Error("kaboom");
      },
    },
  },
);

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { input: 5 } } },
  { send: "ASYNC" },
  { send: "MICRO" },
  { send: "REJECT" },
  { send: "RETRY" },
  { send: "THROW" },
  { send: "RETRY" },
];

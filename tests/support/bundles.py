"""Machine bundles for tests, written as smply's builds produce them (xstate imported)."""

from __future__ import annotations

import json

COUNTER = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "counter",
  predictableActionArguments: true,
  initial: "counting",
  context: { count: 0, owner: null, public: { count: 0 } },
  states: {
    counting: {
      on: {
        inc: { actions: assign((ctx, e) => {
          const count = ctx.count + (e.by || 1);
          return { count, public: { count } };
        }) },
        finish: "done",
        grow: { actions: assign({ blob: (ctx, e) => "x".repeat(e.size) }) },
        boom: { actions: () => { throw new Error("boom"); } },
      },
    },
    done: { type: "final", tags: ["finished"] },
  },
});
export const allowRead = ({ authContext, context }) =>
  !context.owner || authContext.sub === context.owner || authContext.sub === "admin";
export const allowWrite = ({ type, authContext, context, event }) => {
  if (authContext.sub === "blocked") return false;
  if (type === "initialization") return true;
  return !context.owner || authContext.sub === context.owner;
};
"""

TOGGLER = """
import { createMachine } from "xstate";
export default createMachine({
  id: "toggler",
  initial: "off",
  states: { off: { on: { toggle: "on" } }, on: { on: { toggle: "off" } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

TIMER = """
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "timer",
  predictableActionArguments: true,
  initial: "idle",
  states: {
    idle: { on: { start: "waiting" } },
    waiting: { after: { 60000: "rang" }, on: { stop: "idle" } },
    rang: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

# Prints from actions, guards and both authorizers; `relay` commits three macrosteps for one
# event, `ring` arms a 300 ms timer, `hide` reaches a state allowRead refuses, `grow` makes the
# public context big. Strangers may read nothing, "blocked" may write nothing.
CHATTY = """
import { createMachine, assign, send } from "npm:xstate";
const count = (c) => ({ count: c.count + 1, public: { count: c.count + 1 } });
export default createMachine({
  id: "chatty",
  predictableActionArguments: true,
  initial: "idle",
  context: { count: 0, public: { count: 0 } },
  states: {
    idle: {
      on: {
        inc: { actions: [(c) => console.log("count was " + c.count), assign(count)] },
        relay: "relay1",
        hide: "secret",
        ring: "ringing",
        grow: {
          actions: assign((c, e) => ({ public: { count: c.count, blob: "x".repeat(e.size) } })),
        },
        shout: { actions: () => console.error("shouting") },
        boom: { actions: () => { console.log("about to throw"); throw new Error("boom"); } },
        spin: { actions: () => { console.log("spinning"); for (;;) {} } },
        guarded: {
          cond: () => { console.log("the guard says no"); return false; },
          target: "secret",
        },
      },
    },
    relay1: { entry: send("next"), on: { next: "relay2" } },
    relay2: { entry: send("next"), on: { next: "idle" } },
    secret: { on: { show: "idle" } },
    ringing: { after: { 300: "idle" } },
  },
});
export const allowRead = ({ state, authContext }) => {
  console.log("allowRead for " + authContext.sub);
  return state !== "secret" && authContext.sub !== "stranger";
};
export const allowWrite = ({ authContext }) => {
  console.log("allowWrite for " + authContext.sub);
  return authContext.sub !== "blocked";
};
"""

NOT_A_MACHINE = """
export default { hello: "world" };
export const allowRead = () => true;
export const allowWrite = () => true;
"""

NO_AUTHORIZERS = """
import { createMachine } from "npm:xstate";
export default createMachine({ id: "x", initial: "a", states: { a: {} } });
"""


def quoted(source: str) -> str:
    return json.dumps(source)

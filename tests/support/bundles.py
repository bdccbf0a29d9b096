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

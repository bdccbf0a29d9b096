"""The machines the client's tests deploy."""

from __future__ import annotations

# Nested states (so `states` has paths), tags, a final state, a console line per play, and
# authorizers that keep an owned instance to its owner.
PLAYER = """
import { createMachine, assign } from "xstate";
export default createMachine({
  id: "player",
  predictableActionArguments: true,
  initial: "idle",
  context: { owner: null, plays: 0, public: { plays: 0 } },
  states: {
    idle: { on: { play: { target: "playing", actions: ["count", "log"] } } },
    playing: {
      tags: ["busy"],
      initial: "normal",
      states: { normal: { on: { faster: "fast" } }, fast: {} },
      on: { stop: "idle", finish: "done" },
    },
    done: { type: "final" },
  },
}, {
  actions: {
    count: assign((ctx) => ({ plays: ctx.plays + 1, public: { plays: ctx.plays + 1 } })),
    log: (ctx) => console.log(`play ${ctx.plays}`),
  },
});
export const allowRead = ({ context, authContext }) =>
  !context.owner || context.owner === authContext.sub;
export const allowWrite = ({ type, context, authContext }) =>
  authContext.sub !== "blocked" &&
  (type === "initialization" || !context.owner || context.owner === authContext.sub);
"""

# The same machine with another initial state name, for a second version.
PLAYER_V2 = PLAYER.replace('initial: "idle"', 'initial: "stopped"').replace(
    "idle: {", "stopped: {"
).replace('stop: "idle"', 'stop: "stopped"')

# upgradeState/upgradeContext from PLAYER to PLAYER_V2.
PLAYER_MIGRATION = """
export const upgradeState = (path) => path[0] === "idle" ? ["stopped"] : path;
export const upgradeContext = (oldStates, newStates, context) => context;
"""

BROKEN = "export default 42;"

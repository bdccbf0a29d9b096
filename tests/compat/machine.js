// The machine both drivers deploy. It imports "xstate" as a user's source file does: smply
// bundles it with esbuild (xstate inlined), client_flow.mjs uploads it as written.
import { assign, createMachine } from "xstate";

export default createMachine({
  id: "compat",
  predictableActionArguments: true,
  initial: "idle",
  context: { owner: null, count: 0, public: { count: 0 } },
  states: {
    idle: { on: { start: "running" } },
    running: {
      tags: ["busy"],
      initial: "slow",
      states: { slow: { on: { faster: "fast" } }, fast: {} },
      on: {
        inc: {
          actions: assign((ctx, event) => {
            const count = ctx.count + (event.by ?? 1);
            return { count, public: { count } };
          }),
        },
        finish: "done",
      },
    },
    done: { type: "final" },
  },
});

// Only the owner (if there is one) may read or write; "blocked" may not even create.
export const allowRead = ({ context, authContext }) =>
  !context.owner || context.owner === authContext.sub;

export const allowWrite = ({ type, context, authContext }) => {
  if (authContext.sub === "blocked") return false;
  if (type === "initialization") return true;
  return !context.owner || context.owner === authContext.sub;
};

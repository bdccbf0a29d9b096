// With predictableActionArguments, actions are resolved in order: the send below sees the count
// before the assign that follows it.
import { createMachine, assign, send } from "npm:xstate";

export default createMachine({
  id: "order_predictable",
  predictableActionArguments: true,
  initial: "idle",
  context: { count: 1, reported: [], seen: [] },
  states: {
    idle: {
      on: {
        BUMP: {
          actions: [
            send((ctx) => ({ type: "REPORT", count: ctx.count })),
            assign({ seen: (ctx) => [...ctx.seen, ctx.count] }),
            assign({ count: 5 }),
            assign({ seen: (ctx) => [...ctx.seen, ctx.count] }),
          ],
        },
        REPORT: { actions: assign({ reported: (ctx, e) => [...ctx.reported, e.count] }) },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [{ create: {} }, { send: "BUMP" }, { send: "BUMP" }];

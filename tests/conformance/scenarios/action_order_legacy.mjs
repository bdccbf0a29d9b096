// Without predictableActionArguments, XState 4 applies every assign of a transition before it
// resolves the other actions, so the send below sees count = 5 and the log entry written by the
// action object runs with the final context.
import { createMachine, assign, send } from "xstate";

export default createMachine({
  id: "order_legacy",
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

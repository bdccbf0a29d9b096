// A delayed send armed and then cancelled by the same transition never fires: nothing is pending
// after the step. The reverse order (cancel, then arm the same id) is covered by delayed_send's
// SNOOZE and by after's external self transition.
import { createMachine, assign, actions } from "xstate";

const { cancel, send } = actions;

export default createMachine({
  id: "flicker",
  predictableActionArguments: true,
  initial: "on",
  context: { flickers: 0 },
  states: {
    on: {
      on: {
        FLICKER: {
          actions: [send("FLICKERED", { delay: 50, id: "flicker" }), cancel("flicker")],
        },
        FLICKERED: { actions: assign({ flickers: (ctx) => ctx.flickers + 1 }) },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [{ create: {} }, { send: "FLICKER" }];

// A delayed send armed by a transition (not tied to any state's exit) is still pending when the
// machine reaches its top-level final state; the interpreter stops there and drops it.
import { createMachine, send } from "xstate";

export default createMachine({
  id: "job",
  predictableActionArguments: true,
  initial: "running",
  states: {
    running: {
      on: {
        ARM: { actions: send("NAG", { delay: 30000, id: "nag" }) },
        NAG: "running",
        FINISH: "finished",
      },
    },
    finished: { type: "final" },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [{ create: {} }, { send: "ARM" }, { send: "FINISH" }];

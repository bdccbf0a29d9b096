// `after` timers: armed on entry (also at creation), cancelled on exit (including a nested
// state's timer when its parent is left), several delays in one state, named delays from the
// machine options (a number and a function of context), guarded delayed transitions.
// Written without predictableActionArguments.
import { createMachine, assign } from "xstate";

export default createMachine(
  {
    id: "light",
    initial: "green",
    context: { redMs: 3000, cycles: 0, walkers: 0 },
    states: {
      green: {
        after: { 1000: "yellow" },
        // An external self transition: exit cancels the timer, entry re-arms the same send id.
        on: { EMERGENCY: "red", WAIT: "green" },
      },
      yellow: { after: { YELLOW: "red" } },
      red: {
        entry: assign({ cycles: (ctx) => ctx.cycles + 1 }),
        after: {
          RED: [{ target: "flashing", cond: (ctx) => ctx.cycles >= 2 }, { target: "green" }],
        },
        initial: "stop",
        states: {
          stop: { after: { 200: "walk" } },
          walk: { entry: assign({ walkers: (ctx) => ctx.walkers + 1 }), after: { 100: "stop" } },
        },
      },
      flashing: {
        tags: ["fault"],
        after: { 5000: "off", 60000: "green" },
      },
      off: { on: { RESTART: "green" } },
    },
  },
  { delays: { YELLOW: 500, RED: (ctx) => ctx.redMs } },
);

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { redMs: 4500 } } },
  { send: "EMERGENCY" }, // cancels green's timer; arms red's and red.stop's
  { fire: "xstate.after(200)#light.red.stop" },
  { fire: "xstate.after(100)#light.red.walk" },
  { fire: "xstate.after(RED)#light.red" }, // leaving red cancels red.stop's timer
  { fire: "xstate.after(1000)#light.green" },
  { fire: "xstate.after(YELLOW)#light.yellow" },
  { send: "EMERGENCY" }, // unhandled in red: nothing re-armed
  { fire: "xstate.after(RED)#light.red" }, // second cycle: guarded branch
  { fire: "xstate.after(5000)#light.flashing" }, // cancels the 60000 one
  { send: "RESTART" },
  { send: "WAIT" }, // still exactly one green timer pending
];

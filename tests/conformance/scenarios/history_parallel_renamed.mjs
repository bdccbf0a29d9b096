// history_parallel.mjs with its states renamed (session -> take, mixing -> desk, left -> vox,
// right -> amp, hot -> scorching), events and script unchanged: a scenario in its own right, and
// the version tests/conformance/test_upgrades.py upgrades history_parallel's instances to, at
// every step, checking that they then go on exactly as this machine does under xstate.
import { createMachine, assign } from "xstate";

export default createMachine({
  id: "studio",
  predictableActionArguments: true,
  initial: "take",
  context: { breaks: 0 },
  states: {
    take: {
      initial: "desk",
      on: { BREAK: { target: "pause", actions: assign({ breaks: (ctx) => ctx.breaks + 1 }) } },
      states: {
        resume: { type: "history", history: "deep" },
        recording: {},
        desk: {
          type: "parallel",
          on: { RECORD: "recording" },
          states: {
            vox: {
              initial: "muted",
              states: { muted: { on: { LEFT: "live" } }, live: { tags: ["left-live"], on: { LEFT: "muted" } } },
            },
            amp: {
              initial: "quiet",
              states: {
                quiet: { on: { RIGHT: "loud" } },
                loud: { initial: "warm", states: { warm: { on: { HEAT: "scorching" } }, scorching: {} } },
              },
            },
          },
        },
      },
    },
    pause: { on: { RESUME: "take.resume", RESTART: "take" } },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: "LEFT" },
  { send: "RIGHT" },
  { send: "HEAT" },
  { send: "BREAK" },
  { send: "RESUME" },
  { send: "BREAK" },
  { send: "RESTART" }, // initial states, not history
  { send: "BREAK" },
  { send: "RESUME" },
  { send: "RECORD" },
  { send: "BREAK" },
  { send: "RESUME" },
];

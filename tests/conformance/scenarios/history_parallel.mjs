// Deep history over a parallel state nested in a compound: re-entering restores every region's
// leaf, which needs the whole history value (not just the state value) to survive persistence.
import { createMachine, assign } from "xstate";

export default createMachine({
  id: "studio",
  predictableActionArguments: true,
  initial: "session",
  context: { breaks: 0 },
  states: {
    session: {
      initial: "mixing",
      on: { BREAK: { target: "pause", actions: assign({ breaks: (ctx) => ctx.breaks + 1 }) } },
      states: {
        resume: { type: "history", history: "deep" },
        recording: {},
        mixing: {
          type: "parallel",
          on: { RECORD: "recording" },
          states: {
            left: {
              initial: "muted",
              states: { muted: { on: { LEFT: "live" } }, live: { tags: ["left-live"], on: { LEFT: "muted" } } },
            },
            right: {
              initial: "quiet",
              states: {
                quiet: { on: { RIGHT: "loud" } },
                loud: { initial: "warm", states: { warm: { on: { HEAT: "hot" } }, hot: {} } },
              },
            },
          },
        },
      },
    },
    pause: { on: { RESUME: "session.resume", RESTART: "session" } },
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

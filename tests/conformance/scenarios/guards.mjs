// Guards: inline `cond` functions, named guards from the machine options, guard objects with
// parameters (the third argument's `cond`), first-match-wins among candidates, a fallback
// without guard. Written without predictableActionArguments (the legacy default).
import { createMachine, assign } from "xstate";

export default createMachine(
  {
    id: "gate",
    initial: "locked",
    context: { secret: "0000", attempts: 0, max: 3 },
    states: {
      locked: {
        tags: ["closed"],
        on: {
          CODE: [
            { cond: { type: "tooShort", min: 4 }, actions: "countAttempt" },
            { target: "unlocked", cond: "correctCode" },
            { target: "blocked", cond: (ctx) => ctx.attempts + 1 >= ctx.max, actions: "countAttempt" },
            { actions: "countAttempt" },
          ],
        },
      },
      unlocked: {
        entry: assign({ attempts: 0 }),
        on: { LOCK: "locked", CODE: { actions: "countAttempt" } },
      },
      blocked: { tags: ["closed", "alarm"] },
    },
  },
  {
    guards: {
      correctCode: (ctx, event) => event.code === ctx.secret,
      tooShort: (_ctx, event, { cond }) => event.code.length < cond.min,
    },
    actions: { countAttempt: assign({ attempts: (ctx) => ctx.attempts + 1 }) },
  },
);

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { secret: "4321" } } },
  { send: { type: "CODE", code: "0000" } }, // wrong
  { send: { type: "CODE", code: "12" } }, // too short: counted, first candidate wins
  { send: { type: "CODE", code: "4321" } },
  { send: { type: "CODE", code: "4321" } }, // unlocked handles CODE differently
  { send: "LOCK" },
  { send: { type: "CODE", code: "1111" } },
  { send: { type: "CODE", code: "2222" } },
  { send: { type: "CODE", code: "3333" } }, // third failure: blocked
  { send: { type: "CODE", code: "4321" } }, // unhandled in blocked
];

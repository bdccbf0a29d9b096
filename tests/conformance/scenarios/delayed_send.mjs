// Delayed send with an explicit id, cancel by id, re-arming an id in one macrostep (cancel then
// send), a delay computed from the event, a delayed send whose id defaults to its event type, a
// delayed raise with an id, and payloads carried by delayed events.
import { createMachine, assign, actions, send } from "xstate";

const { cancel, raise } = actions;

export default createMachine({
  id: "reminder",
  predictableActionArguments: true,
  initial: "idle",
  context: { reminded: [], nudges: 0, ticks: 0 },
  states: {
    idle: {
      on: {
        SCHEDULE: {
          target: "waiting",
          actions: send((_ctx, e) => ({ type: "REMIND", what: e.what }), { delay: 60000, id: "remind" }),
        },
      },
    },
    waiting: {
      tags: ["scheduled"],
      on: {
        CANCEL: { target: "idle", actions: cancel("remind") },
        REMIND: { target: "idle", actions: assign({ reminded: (ctx, e) => [...ctx.reminded, e.what] }) },
        SNOOZE: {
          actions: [
            cancel("remind"),
            send({ type: "REMIND", what: "snoozed" }, { delay: (_ctx, e) => e.minutes * 60000, id: "remind" }),
          ],
        },
        NUDGE: { actions: send("NUDGED", { delay: 10 }) },
        NUDGED: { actions: assign({ nudges: (ctx) => ctx.nudges + 1 }) },
        TICK_LATER: { actions: raise("TICK", { delay: 250, id: "tick" }) },
        TICK: { actions: assign({ ticks: (ctx) => ctx.ticks + 1 }) },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: { type: "SCHEDULE", what: "call mum" } },
  { send: "CANCEL" },
  { send: { type: "SCHEDULE", what: "water plants" } },
  { send: { type: "SNOOZE", minutes: 5 } },
  { send: "NUDGE" },
  { send: "TICK_LATER" },
  { fire: "NUDGED" },
  { fire: "tick" },
  { fire: "remind" },
  { send: { type: "SCHEDULE", what: "again" } },
  { fire: "remind" },
];

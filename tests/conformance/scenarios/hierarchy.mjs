// Nested compound states, entry/exit/transition action ordering (through an assigned log),
// child-before-parent event handling, internal vs external self transitions, tags, an unhandled
// event.
import { createMachine, assign } from "xstate";

const log = (line) => assign({ log: (ctx) => [...ctx.log, line] });
const node = (name) => ({ entry: log(`enter:${name}`), exit: log(`exit:${name}`) });

export default createMachine({
  id: "hier",
  predictableActionArguments: true,
  initial: "idle",
  context: { log: [] },
  states: {
    idle: {
      ...node("idle"),
      tags: ["resting"],
      on: { START: { target: "active", actions: log("do:start") } },
    },
    active: {
      ...node("active"),
      tags: ["busy"],
      initial: "a",
      on: {
        STOP: "idle",
        JUMP: ".b",
        RESET: "active", // a sibling target naming itself: an external self transition
        DEEP: "#hier.active.a.a2",
        PING: { actions: log("ping:active") },
      },
      states: {
        a: {
          ...node("a"),
          initial: "a1",
          states: {
            a1: { ...node("a1"), tags: ["first"], on: { NEXT: "a2", PING: { actions: log("ping:a1") } } },
            a2: { ...node("a2"), on: { NEXT: "a1" } },
          },
        },
        b: { ...node("b"), tags: ["busy", "second"] },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { log: ["seed"] } } },
  { send: "START" },
  { send: "PING" }, // a1 handles it before active does
  { send: "NEXT" },
  { send: "PING" }, // a2 does not: active's handler runs
  { send: "JUMP" },
  { send: "BOGUS" }, // unhandled
  { send: "RESET" },
  { send: { type: "DEEP" } },
  { send: "STOP" },
];

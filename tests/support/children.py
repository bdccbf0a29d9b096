"""Machine bundles that create persistent children and message other instances, written as
smply's newer builds produce them: xstate and @statebacked/machine imported, resolved by the
sandbox."""

from __future__ import annotations

# A parent that spawns a persistent child and exchanges events with it: `ping` (immediate,
# by ref or by the name it gave the child), `later` (delayed, cancellable by `cancelLater`), and
# the child's `pong` and `childDone` back. Its allowWrite takes `pong` only from a child.
PARENT = """
import { createMachine, assign, actions } from "npm:xstate";
import { spawnPersistentInstance, sendTo } from "@statebacked/machine";
export default createMachine({
  id: "parent", predictableActionArguments: true, initial: "idle",
  context: { child: null, pongs: 0 },
  states: {
    idle: { on: { start: { target: "running", actions: assign({
      child: (ctx, e) => spawnPersistentInstance(
        { machineName: "child", machineInstanceName: e.name },
        { name: "kid", context: { greeting: "hello" } }),
    }) } } },
    running: { on: {
      ping: { actions: sendTo((ctx) => ctx.child, { type: "ping" }) },
      pingByName: { actions: sendTo("kid", { type: "ping" }) },
      later: { actions: sendTo((ctx) => ctx.child, { type: "ping" },
                               { delay: 60000, id: "later" }) },
      cancelLater: { actions: actions.cancel("later") },
      pong: { actions: assign({ pongs: (ctx) => ctx.pongs + 1 }) },
      childDone: "finished",
    } },
    finished: { type: "final" },
  },
});
export const allowRead = () => true;
export const allowWrite = ({ type, event, authContext }) =>
  type === "initialization" || event.type !== "pong" ||
  (authContext.stateBackedSender || {}).machineName === "child";
"""

# The child: counts pings (only from a `parent` instance), answers each with a pong, and tells
# its parent when it is done. It can only be created by a parent.
CHILD = """
import { createMachine, assign, sendParent } from "npm:xstate";
export default createMachine({
  id: "child", predictableActionArguments: true, initial: "waiting",
  context: { greeting: null, pings: 0 },
  states: {
    waiting: { on: {
      ping: { actions: [assign({ pings: (ctx) => ctx.pings + 1 }), sendParent({ type: "pong" })] },
      finish: "done",
    } },
    done: { type: "final", entry: sendParent({ type: "childDone" }) },
  },
});
export const allowRead = () => true;
export const allowWrite = ({ type, event, authContext }) => {
  const sender = authContext.stateBackedSender;
  if (type === "initialization") return !!sender && sender.machineName === "parent";
  if (event.type === "ping") return !!sender && sender.machineName === "parent";
  return true;
};
"""

# Sends `ping` to any child instance it is told of: the child's allowWrite refuses it.
STRANGER = """
import { createMachine } from "npm:xstate";
import { sendTo } from "@statebacked/machine";
export default createMachine({
  id: "stranger", predictableActionArguments: true, initial: "idle",
  states: { idle: { on: { poke: { actions: sendTo((ctx, e) => (
    { type: "statebacked.instance", id: "x", machineName: "child", machineInstanceName: e.name }),
    { type: "ping" }) } } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

# Two of these bounce a ball to each other (`peer` in their context) until it has been hit
# `limit` times; each keeps count of its own hits.
BOUNCER = """
import { createMachine, assign } from "npm:xstate";
import { sendTo } from "@statebacked/machine";
const peer = (ctx) => ({ type: "statebacked.instance", id: "peer", machineName: "bouncer",
                          machineInstanceName: ctx.peer });
export default createMachine({
  id: "bouncer", predictableActionArguments: true, initial: "playing",
  context: { peer: null, hits: 0, limit: 10 },
  states: { playing: { on: { ball: [
    { cond: (ctx, e) => e.n >= ctx.limit, actions: assign({ hits: (ctx) => ctx.hits + 1 }) },
    { actions: [assign({ hits: (ctx) => ctx.hits + 1 }),
                sendTo(peer, (ctx, e) => ({ type: "ball", n: e.n + 1, serve: e.serve }))] },
  ] } } },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

# A parent that invokes a persistent child and finishes with the child's done data.
INVOKER = """
import { createMachine, assign } from "npm:xstate";
import { persistentInvocableSource, sendTo } from "@statebacked/machine";
export default createMachine({
  id: "invoker", predictableActionArguments: true, initial: "idle",
  context: { result: null },
  states: {
    idle: { on: { go: "working" } },
    working: {
      invoke: {
        id: "worker",
        src: persistentInvocableSource({ machineName: "worker" }),
        data: { task: (ctx, e) => e.task },
        onDone: { target: "finished", actions: assign({ result: (ctx, e) => e.data }) },
      },
      on: { nudge: { actions: sendTo("worker", { type: "work" }) } },
    },
    finished: { type: "final" },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

WORKER = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "worker", predictableActionArguments: true, initial: "ready",
  context: { task: null },
  states: {
    ready: { on: { work: "done" } },
    done: { type: "final", data: (ctx) => ({ finished: ctx.task }) },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

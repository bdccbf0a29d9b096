// Final states: done.state.<id> of a compound (with `data` computed from context), the
// top-level final state making the instance done, and the event type trail via assign.
import { createMachine, assign } from "xstate";

const trail = assign({ trail: (ctx, e) => [...ctx.trail, e.type] });

export default createMachine({
  id: "order",
  predictableActionArguments: true,
  initial: "checkout",
  context: { trail: [], total: 12, receipt: null },
  states: {
    checkout: {
      initial: "cart",
      states: {
        cart: { on: { PAY: { target: "paid", actions: trail } } },
        paid: { type: "final", data: { amount: (ctx) => ctx.total, currency: "EUR" } },
      },
      onDone: { target: "shipping", actions: [trail, assign({ receipt: (_ctx, e) => e.data })] },
    },
    shipping: {
      tags: ["in-transit"],
      on: { DELIVER: { target: "delivered", actions: trail }, LOSE: { actions: trail } },
    },
    delivered: { type: "final", tags: ["closed"] },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { total: 30 } } },
  { send: "PAY" },
  { send: "LOSE" },
  { send: "DELIVER" },
];

// assign in its object form (static values and per-property assigners), its function form
// (whole new context), several assigns in one transition seeing each other's results, event data
// in assigners, nested JSON values, targetless transitions.
import { createMachine, assign } from "xstate";

export default createMachine({
  id: "cart",
  predictableActionArguments: true,
  initial: "shopping",
  context: { items: [], total: 0, note: null, meta: { edits: 0 } },
  states: {
    shopping: {
      on: {
        ADD: {
          actions: [
            assign({
              items: (ctx, e) => [...ctx.items, { sku: e.sku, price: e.price }],
              meta: (ctx) => ({ ...ctx.meta, edits: ctx.meta.edits + 1 }),
            }),
            // sees the item the previous assign added
            assign((ctx) => ({ ...ctx, total: ctx.items.reduce((sum, i) => sum + i.price, 0) })),
          ],
        },
        NOTE: { actions: assign({ note: (_ctx, e) => e.text }) },
        CLEAR: { actions: assign({ items: [], total: 0, note: null }) },
        CHECKOUT: { target: "done", actions: assign((ctx) => ({ receipt: { count: ctx.items.length, total: ctx.total } })) },
      },
    },
    done: { type: "final" },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: { context: { note: "hello" } } },
  { send: { type: "ADD", sku: "apple", price: 3 } },
  { send: { type: "ADD", sku: "pear", price: 4 } },
  { send: { type: "NOTE", text: "gift", extra: { ignored: true } } },
  { send: "CLEAR" },
  { send: { type: "ADD", sku: "plum", price: 5 } },
  { send: "CHECKOUT" }, // the function form replaces the whole context
];

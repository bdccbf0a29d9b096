// choose (guarded action branches, first match, default branch) and pure (actions computed
// from context and event), both mixing assign with raise.
import { createMachine, assign, actions } from "xstate";

const { choose, pure, raise } = actions;

export default createMachine({
  id: "game",
  predictableActionArguments: true,
  initial: "playing",
  context: { score: 0, bonuses: 0, medals: [], players: ["ann", "bob"], greetings: [] },
  states: {
    playing: {
      on: {
        SCORE: {
          actions: [
            assign({ score: (ctx, e) => ctx.score + e.points }),
            choose([
              { cond: (_ctx, e) => e.points >= 10, actions: [raise("BONUS"), assign({ medals: (ctx) => [...ctx.medals, "gold"] })] },
              { cond: (ctx) => ctx.score >= 5, actions: assign({ medals: (ctx) => [...ctx.medals, "silver"] }) },
              { actions: assign({ medals: (ctx) => [...ctx.medals, "none"] }) },
            ]),
          ],
        },
        BONUS: { actions: assign({ bonuses: (ctx) => ctx.bonuses + 1 }) },
        GREET: {
          actions: pure((ctx, e) => [
            ...ctx.players.map((p) => assign({ greetings: (c) => [...c.greetings, `${e.word} ${p}`] })),
            ...(ctx.players.length > 2 ? [raise("CROWD")] : []),
          ]),
        },
        JOIN: { actions: assign({ players: (ctx, e) => [...ctx.players, e.name] }) },
        CROWD: "crowded",
      },
    },
    crowded: { tags: ["full"] },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: { type: "SCORE", points: 2 } }, // default branch
  { send: { type: "SCORE", points: 4 } }, // score now 6: silver
  { send: { type: "SCORE", points: 12 } }, // gold and a raised BONUS
  { send: { type: "GREET", word: "hi" } },
  { send: { type: "JOIN", name: "cy" } },
  { send: { type: "GREET", word: "yo" } }, // three players: pure also raises CROWD
];

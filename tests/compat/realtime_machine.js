// The machine realtime_flow.mjs deploys: a little game only its owner may watch. Moves print to
// the console (for the logs checks); `arm` sets off a timer that moves the game on by itself.
import { assign, createMachine } from "xstate";

export default createMachine({
  id: "game",
  predictableActionArguments: true,
  initial: "playing",
  context: { owner: null, score: 0, public: { score: 0 } },
  states: {
    playing: {
      on: {
        move: {
          actions: [
            (ctx, event) => console.log(`moved by ${event.by} from ${ctx.score}`),
            assign((ctx, event) => {
              const score = ctx.score + event.by;
              return { score, public: { score } };
            }),
          ],
        },
        arm: "armed",
      },
    },
    armed: { after: { 300: { target: "playing", actions: () => console.log("the timer fired") } } },
  },
});

export const allowRead = ({ context, authContext }) => context.owner === authContext.sub;

export const allowWrite = ({ type, context, authContext }) =>
  type === "initialization" || context.owner === authContext.sub;

// Shallow and deep history, left and re-entered; the history value has to survive persistence
// between steps. Also history's default (the parent's initial state) before any visit.
import { createMachine } from "npm:xstate";

export default createMachine({
  id: "player",
  predictableActionArguments: true,
  initial: "off",
  states: {
    off: { on: { POWER: "on.shallow", POWER_DEEP: "on.deep" } },
    on: {
      initial: "radio",
      on: { POWER: "off" },
      states: {
        shallow: { type: "history" },
        deep: { type: "history", history: "deep" },
        radio: {
          initial: "fm",
          on: { SOURCE: "tape" },
          states: { fm: { on: { BAND: "am" } }, am: { on: { BAND: "fm" } } },
        },
        tape: {
          initial: "stopped",
          on: { SOURCE: "radio" },
          states: {
            stopped: { on: { PLAY: "playing" } },
            playing: { tags: ["sound"], on: { PLAY: "stopped" } },
          },
        },
      },
    },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: "POWER_DEEP" }, // no history yet: the default is on's initial state
  { send: "BAND" },
  { send: "POWER" },
  { send: "POWER_DEEP" }, // deep: back to radio.am
  { send: "POWER" },
  { send: "POWER" }, // shallow: radio, at its initial fm
  { send: "SOURCE" },
  { send: "PLAY" },
  { send: "POWER" },
  { send: "POWER_DEEP" }, // deep: tape.playing
  { send: "POWER" },
  { send: "POWER" }, // shallow: tape.stopped
];

// Parallel regions: one event handled in two regions in the same macrostep, an `in:` guard across
// regions, union of tags, toStrings of a parallel value, and done.state.* of a parallel node whose
// regions all reach final states.
import { createMachine, assign } from "npm:xstate";

const count = (key) => assign({ [key]: (ctx) => ctx[key] + 1 });

export default createMachine({
  id: "par",
  predictableActionArguments: true,
  initial: "editing",
  context: { resets: 0, saves: 0, uploads: 0 },
  states: {
    editing: {
      type: "parallel",
      on: { UPLOAD: "upload" },
      states: {
        bold: {
          initial: "off",
          on: { RESET: { target: ".off", actions: count("resets") } },
          states: {
            off: { on: { TOGGLE_BOLD: "on" } },
            on: { tags: ["bold"], on: { TOGGLE_BOLD: "off" } },
          },
        },
        doc: {
          initial: "clean",
          on: { RESET: ".clean" },
          states: {
            clean: { on: { EDIT: "dirty" } },
            dirty: {
              tags: ["unsaved"],
              // Saving is only allowed while bold is off.
              on: { SAVE: { target: "clean", in: "#par.editing.bold.off", actions: count("saves") } },
            },
          },
        },
      },
    },
    upload: {
      type: "parallel",
      tags: ["uploading"],
      onDone: { target: "uploaded", actions: count("uploads") },
      states: {
        file: {
          initial: "sending",
          states: { sending: { on: { FILE_OK: "sent" } }, sent: { type: "final" } },
        },
        meta: {
          initial: "sending",
          states: { sending: { on: { META_OK: "sent" } }, sent: { type: "final" } },
        },
      },
    },
    uploaded: { on: { AGAIN: "editing" } },
  },
});

export const allowRead = () => true;
export const allowWrite = () => true;

export const script = [
  { create: {} },
  { send: "TOGGLE_BOLD" },
  { send: "EDIT" },
  { send: "SAVE" }, // blocked by the in: guard (bold is on)
  { send: "TOGGLE_BOLD" },
  { send: "SAVE" },
  { send: "EDIT" },
  { send: "TOGGLE_BOLD" },
  { send: "RESET" }, // both regions take it
  { send: "UPLOAD" },
  { send: "FILE_OK" },
  { send: "FILE_OK" }, // unhandled: the file region is final
  { send: "META_OK" }, // the last region finishes: done.state.par.upload
  { send: "AGAIN" },
];

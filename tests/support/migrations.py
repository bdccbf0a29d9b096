"""Three versions of one machine and the migrations between them, for the upgrade tests.

`studio` v1 is a parallel state (`mixing`: `left` and `right`) inside a compound one with a
deep history state (`session.resume`), and an `after` timer in `pause`. v2 renames `mixing` to
`mix` and `left` to `vocals` (migration V1_TO_V2); v3 renames `hot` to `blazing`, adds a third
region `drums` and a `version` to the context (migration V2_TO_V3). V2_TO_V1 goes back.
"""

from __future__ import annotations

STUDIO_V1 = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "studio",
  predictableActionArguments: true,
  initial: "session",
  context: { breaks: 0 },
  states: {
    session: {
      initial: "mixing",
      on: { BREAK: { target: "pause", actions: assign({ breaks: (ctx) => ctx.breaks + 1 }) } },
      states: {
        resume: { type: "history", history: "deep" },
        recording: {},
        mixing: {
          type: "parallel",
          on: { RECORD: "recording" },
          states: {
            left: {
              initial: "muted",
              states: {
                muted: { on: { LEFT: "live" } },
                live: { tags: ["left-live"], on: { LEFT: "muted" } },
              },
            },
            right: {
              initial: "quiet",
              states: {
                quiet: { on: { RIGHT: "loud" } },
                loud: { initial: "warm", states: { warm: { on: { HEAT: "hot" } }, hot: {} } },
              },
            },
          },
        },
      },
    },
    pause: {
      after: { 3600000: "session" },
      on: { RESUME: "session.resume", RESTART: "session", WAIT: "waiting" },
    },
    waiting: { after: { 3600000: "pause" }, on: { BACK: "pause" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

STUDIO_V2 = (
    STUDIO_V1.replace('initial: "mixing"', 'initial: "mix"')
    .replace("mixing: {", "mix: {")
    .replace("left: {", "vocals: {")
    .replace("LEFT", "VOCALS")
)

DRUMS = 'drums: { initial: "silent", states: { silent: {}, playing: {} } },'
STUDIO_V3 = (
    STUDIO_V2.replace("hot: {}", "blazing: {}")
    .replace('HEAT: "hot"', 'HEAT: "blazing"')
    .replace("            vocals: {", f"            {DRUMS}\n            vocals: {{")
    .replace("context: { breaks: 0 }", "context: { breaks: 0, version: 3 }")
)

# Also how smply's users write them: plain functions, no imports.
V1_TO_V2 = """
const RENAMES = { mixing: "mix", left: "vocals" };
export const upgradeState = (path, context) => {
  console.log("v1->v2 state", JSON.stringify(path));
  return path.map((key) => RENAMES[key] ?? key);
};
export const upgradeContext = (oldPaths, newPaths, context) =>
  ({ ...context, moved: [oldPaths, newPaths] });
"""

V2_TO_V3 = """
export const upgradeState = (path) => path.map((key) => (key === "hot" ? "blazing" : key));
export const upgradeContext = (oldPaths, newPaths, context) => {
  console.log("v2->v3 context");
  const { moved, ...rest } = context;
  return { ...rest, version: 3, upgrades: (context.upgrades ?? 0) + 1 };
};
"""

V2_TO_V1 = """
const RENAMES = { mix: "mixing", vocals: "left" };
export const upgradeState = (path) => path.map((key) => RENAMES[key] ?? key);
export const upgradeContext = (oldPaths, newPaths, context) => ({ breaks: context.breaks });
"""


def migration(upgrade_state: str, upgrade_context: str = "(o, n, context) => context") -> str:
    """A migration bundle from two function expressions."""
    return (
        f"export const upgradeState = {upgrade_state};\n"
        f"export const upgradeContext = {upgrade_context};\n"
    )

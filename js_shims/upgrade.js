// The machine version's side of an upgrade (runtime/migrations.py drives it; the migrations
// themselves run in their own VMs, see migration.js). Compiled once into the base snapshot as
// the module "backstate:upgrade"; harness.js adds these ops to every version's driver:
//
//   upgradeLeaves {state}   the persisted state as a migration sees it: the leaf paths of its
//                           configuration and of every value its history remembers
//   upgradeBuild {current, history, context, event, timers}
//                           the state a migration's answer describes, made by this version's
//                           machine: value resolved, history rebuilt, context checked; which
//                           pending `after` timers it can no longer take
//
// Leaves: `current` is the leaf paths (root to leaf, state keys) of the configuration;
// `history` lists, deepest node first, one group of leaf paths per node of xstate's
// `historyValue` tree (the value that node had when it was last active).
import { State, toSCXMLEvent } from "npm:xstate";

const AFTER = /^xstate\.after\((.*)\)#(.+)$/;

export function upgradeOps(machine, h) {
  const nodeLeaves = (nodes) =>
    nodes.filter((node) => node.type === "atomic" || node.type === "final").map((node) => node.path);

  function leavesOf(state) {
    const groups = [];
    // The root's remembered value is the current one; below it, every node's own.
    const walk = (hist, node, depth) => {
      for (const [key, sub] of Object.entries((hist && hist.states) || {})) {
        const child = node.states[key];
        if (!sub || !child || !sub.current) continue;
        groups.push({ depth, paths: nodeLeaves(child.getStateNodes(sub.current)) });
        walk(sub, child, depth + 1);
      }
    };
    walk(state.historyValue, machine, 1);
    groups.sort((a, b) => b.depth - a.depth);   // stable: siblings keep their order
    return { current: nodeLeaves(state.configuration), history: groups.map((g) => g.paths) };
  }

  // A state value from leaf paths, each checked against this machine; a path may stop at a
  // compound or parallel state (its initial states are taken, as xstate resolves a target).
  // Unresolved, the value names only what the paths name (what a history update needs).
  function valueOf(paths, what) {
    const tree = Object.create(null);
    for (const path of paths) {
      let node = machine;
      let level = tree;
      path.forEach((key, depth) => {
        const child = Object.prototype.hasOwnProperty.call(node.states, key) ? node.states[key] : undefined;
        const shown = JSON.stringify(path.slice(0, depth + 1));
        if (!child) h.fail("invalid-upgrade", `${what} ${JSON.stringify(path)}: the new version has no state ${shown}`);
        if (child.type === "history") h.fail("invalid-upgrade", `${what} ${JSON.stringify(path)}: ${shown} is a history pseudo-state, not a state`);
        const other = Object.keys(level).find((k) => k !== key);
        if (node.type !== "parallel" && other !== undefined) {
          const first = JSON.stringify([...path.slice(0, depth), other]);
          h.fail("invalid-upgrade", `${what} includes both ${first} and ${shown}, which cannot be active together`);
        }
        level = level[key] || (level[key] = Object.create(null));
        node = child;
      });
    }
    return toValue(machine, tree);
  }

  function toValue(node, tree) {
    const keys = Object.keys(tree);
    if (node.type === "parallel") {   // regions not named take their initial states
      const value = {};
      for (const key of keys) {
        if (Object.keys(tree[key]).length) value[key] = toValue(node.states[key], tree[key]);
      }
      return value;
    }
    const [key] = keys;
    if (key === undefined) return undefined;
    return Object.keys(tree[key]).length ? { [key]: toValue(node.states[key], tree[key]) } : key;
  }

  // xstate's own history update (utils.updateHistoryValue, not exported): every node named in
  // `value` remembers its part of it; the others keep what they remembered.
  function remember(hist, value) {
    const states = {};
    for (const [key, sub] of Object.entries(hist.states || {})) {
      const current = (typeof value === "string" ? undefined : value[key]) || (sub ? sub.current : undefined);
      states[key] = sub && current ? remember(sub, current) : undefined;
    }
    return { current: value, states };
  }

  // Deepest groups first, the current value last: a node's history is never newer than its
  // parent's, so each node ends with what it last held (as xstate's own updates leave it).
  function historyOf(groups, value) {
    let hist = machine.historyValue();
    for (const paths of groups) {
      const remembered = valueOf(paths, "the remembered state");
      if (remembered !== undefined) hist = remember(hist, remembered);
    }
    return remember(hist, value);
  }

  // Why a pending `after` timer cannot be delivered after the upgrade (null: it can). xstate
  // cancels a state's delayed transitions when it leaves the state; the upgrade leaves it if
  // the state is gone, not active, or has no such delayed transition any more.
  function undeliverable(type, state) {
    const match = AFTER.exec(type);
    if (!match) return null;
    let node;
    try {
      node = machine.getStateNodeById(match[2]);
    } catch (err) {
      return `the state "${match[2]}" does not exist in the new version`;
    }
    if (!state.configuration.includes(node)) return `the state "${match[2]}" is not active after the upgrade`;
    if (!(node.on[type] || []).length) return `the state "${match[2]}" has no such delayed transition in the new version`;
    return null;
  }

  return {
    upgradeLeaves(args) {
      return leavesOf(machine.resolveState(h.restore(args.state)));
    },

    upgradeBuild(args) {
      const context = args.context;
      if (context === null || typeof context !== "object" || Array.isArray(context)) {
        h.fail("invalid-upgrade", "upgradeContext must return an object");
      }
      h.checkJson(context, "");
      const value = machine.resolve(valueOf(args.current, "the state"));
      const historyValue = args.history.length ? historyOf(args.history, value) : undefined;
      const state = machine.resolveState(State.create({
        value, context, historyValue, _event: toSCXMLEvent(args.event), _sessionid: null,
        actions: [], activities: {}, meta: {}, events: [], configuration: [], transitions: [],
        children: {}, done: false, tags: new Set(),
      }));
      state.meta = {};   // as a transition sets it: each active state node's `meta`, by id
      for (const node of [machine, ...state.configuration]) {
        if (node.meta !== undefined) state.meta[node.id] = node.meta;
      }
      const drop = [];
      for (const timer of args.timers) {
        const reason = undeliverable(timer.type, state);
        if (reason) drop.push({ id: timer.id, type: timer.type, reason });
      }
      return { state: h.persistable(state), view: h.view(state), leaves: leavesOf(state), drop };
    },
  };
}

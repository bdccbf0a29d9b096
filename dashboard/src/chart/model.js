// Reading a version's definition (runtime/definitions.py documents its format) against an
// instance's state: which nodes are active, which events it accepts now.

export function nodesById(root) {
  const byId = new Map();
  const walk = (node, parent) => {
    byId.set(node.id, { node, parent });
    for (const child of node.states) walk(child, node);
  };
  walk(root, null);
  return byId;
}

// The ids of the nodes a state value activates: the root, and along each path of the value
// ({"locked": {"a": "x", "b": "y"}} -> locked, locked.a, locked.a.x, locked.b, locked.b.y).
export function activeIds(root, value) {
  const active = new Set([root.id]);
  const walk = (node, sub) => {
    if (sub === undefined || sub === null) return;
    const entries = typeof sub === "string" ? [[sub, undefined]] : Object.entries(sub);
    for (const [key, deeper] of entries) {
      const child = node.states.find((s) => s.key === key);
      if (!child) continue;
      active.add(child.id);
      walk(child, deeper);
    }
  };
  walk(root, value);
  return active;
}

const INTERNAL = /^(xstate\.|done\.|error\.)/;

// The events an instance in `value` accepts: those of its active nodes' `event` transitions,
// deepest first, once each; guarded ones say so (the guard runs on the server).
export function acceptedEvents(root, value) {
  const active = activeIds(root, value);
  const byId = nodesById(root);
  const depth = (id) => { let d = 0; for (let p = byId.get(id).parent; p; p = byId.get(p.id).parent) d += 1; return d; };
  const ordered = [...active].sort((a, b) => depth(b) - depth(a));
  const found = new Map();
  let wildcard = false;
  for (const id of ordered) {
    for (const t of byId.get(id).node.on) {
      if (t.kind === "wildcard") wildcard = true;
      if (t.kind !== "event" || INTERNAL.test(t.event)) continue;
      const seen = found.get(t.event);
      const guarded = t.guard !== undefined;
      if (!seen) found.set(t.event, { type: t.event, guarded, sources: [id] });
      else { seen.guarded = seen.guarded && guarded; seen.sources.push(id); }
    }
  }
  return { events: [...found.values()], wildcard };
}

// "OPEN [mayOpen]", "after 1 s", "always [isEmpty]", "done: watcher"
export function transitionLabel(t) {
  let text;
  if (t.kind === "after") text = `after ${delayText(t.delay)}`;
  else if (t.kind === "always") text = "always";
  else if (t.event.startsWith("done.invoke.")) text = `done: ${t.event.slice(12)}`;
  else if (t.event.startsWith("error.platform.")) text = `error: ${t.event.slice(15)}`;
  else if (t.event.startsWith("done.state.")) text = "done";
  else text = t.event;
  if (t.guard !== undefined) text += t.guard ? ` [${t.guard}]` : " [guarded]";
  return text;
}

function delayText(delay) {
  if (typeof delay !== "number") return String(delay);
  if (delay % 3_600_000 === 0 && delay) return `${delay / 3_600_000} h`;
  if (delay % 60_000 === 0 && delay) return `${delay / 60_000} min`;
  if (delay % 1000 === 0 && delay) return `${delay / 1000} s`;
  return `${delay} ms`;
}

// A definition as an ELK graph, and its layout by elkjs (the layered algorithm Stately's own
// visualizer uses), run in elkjs's worker so a large chart does not freeze the page.
//
// Every state is an ELK node; a compound or parallel state holds its children, with room at the
// top for its name and details. Transitions with targets are edges labelled with their event
// (and guard, or delay); a transition without a target is a line inside its state. Each
// compound state's initial child gets an edge from a small dot, as in UML and Stately's charts.

import ELK from "elkjs/lib/elk-api.js";
import { transitionLabel } from "./model.js";

export const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
export const TITLE_FONT = `600 13px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif`;
export const LINE = 16;
export const TITLE = 20;
export const PAD = 8;
const HISTORY_SIZE = 30;
const DOT = 10;

let elk = null;

function engine() {
  if (!elk) {
    const workerUrl = new URL("elk-worker.min.js", document.baseURI).href;
    elk = new ELK({ workerUrl });
  }
  return elk;
}

let canvas = null;
export function measure(text, font = FONT) {
  if (!canvas) canvas = document.createElement("canvas").getContext("2d");
  canvas.font = font;
  return Math.ceil(canvas.measureText(text).width);
}

// The lines a state shows under its name.
export function detailLines(node) {
  const lines = [];
  if (node.tags.length) lines.push({ text: `tags: ${node.tags.join(", ")}`, kind: "tags" });
  for (const inv of node.invoke) lines.push({ text: `invoke: ${inv.src}`, kind: "invoke" });
  if (node.entry.length) lines.push({ text: `entry / ${node.entry.join(", ")}`, kind: "action" });
  if (node.exit.length) lines.push({ text: `exit / ${node.exit.join(", ")}`, kind: "action" });
  for (const t of node.on) {
    if (t.targets.length === 0) {
      lines.push({ text: `${transitionLabel(t)} ⟲`, kind: "event", event: t.kind === "event" ? t.event : undefined });
    }
  }
  return lines;
}

export function buildGraph(definition) {
  const edges = [];
  const info = new Map();   // edge id -> what it draws

  const toElk = (node, parent) => {
    const lines = detailLines(node);
    const textWidth = Math.max(measure(titleOf(node, parent), TITLE_FONT), ...lines.map((l) => measure(l.text)), 40);
    const out = { id: node.id, labels: [], layoutOptions: {} };
    if (node.type === "history") {
      Object.assign(out, { width: HISTORY_SIZE, height: HISTORY_SIZE });
    } else if (node.states.length === 0) {
      Object.assign(out, { width: textWidth + 2 * PAD + 8, height: PAD + TITLE + lines.length * LINE + PAD });
    } else {
      const top = PAD + TITLE + lines.length * LINE + 6;
      out.layoutOptions["elk.padding"] = `[top=${top},left=14,bottom=14,right=14]`;
      out.layoutOptions["elk.nodeSize.minimum"] = `(${textWidth + 2 * PAD + 8}, ${top + 20})`;
      out.layoutOptions["elk.nodeSize.constraints"] = "MINIMUM_SIZE";
      out.children = node.states.map((child) => toElk(child, node));
      if (node.initial !== undefined && node.type !== "parallel") {
        const initial = node.states.find((s) => s.key === node.initial);
        if (initial) {
          const dot = `${node.id}::initial`;
          out.children.unshift({ id: dot, width: DOT, height: DOT });
          const id = `initial:${node.id}`;
          edges.push({ id, sources: [dot], targets: [initial.id] });
          info.set(id, { initial: true });
        }
      }
    }
    node.on.forEach((t, i) => {
      t.targets.forEach((target, j) => {
        const id = `t:${node.id}:${i}:${j}`;
        const text = transitionLabel(t);
        edges.push({ id, sources: [node.id], targets: [target],
          labels: [{ id: `${id}:label`, text, width: measure(text) + 10, height: LINE + 2 }] });
        info.set(id, { source: node.id, transition: t, text });
      });
    });
    return out;
  };

  const root = toElk(definition.root, null);
  const graph = {
    id: "chart",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.layered.spacing.nodeNodeBetweenLayers": "40",
      "elk.spacing.nodeNode": "28",
      "elk.spacing.edgeLabel": "4",
      "elk.spacing.edgeNode": "16",
      "elk.edgeLabels.placement": "CENTER",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.padding": "[top=8,left=8,bottom=8,right=8]",
    },
    children: [root],
    edges,
  };
  return { graph, info };
}

export function titleOf(node, parent) {
  if (!parent) return node.id;
  if (node.type === "history") return node.history === "deep" ? "H*" : "H";
  return node.key;
}

export async function layout(definition) {
  const { graph, info } = buildGraph(definition);
  const laid = await engine().layout(graph);
  return { laid, info };
}

// The laid-out chart as SVG, and the live parts of it: the active states highlighted, and the
// events the instance accepts now clickable (on edge labels and on targetless lines).

import { activeIds, nodesById } from "./model.js";
import { LINE, PAD, TITLE, detailLines, layout, titleOf } from "./layout.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

function text(attrs, content) {
  const el = s("text", attrs);
  el.textContent = content;
  return el;
}

export class Chart {
  // Lays out `definition` (in the worker) and draws it into `container`.
  static async draw(container, definition, { onEvent, label } = {}) {
    const { laid, info } = await layout(definition);
    const chart = new Chart(definition, laid, info, onEvent, label);
    container.replaceChildren(chart.svg);
    return chart;
  }

  constructor(definition, laid, info, onEvent, label) {
    this.definition = definition;
    this.byId = nodesById(definition.root);
    this.onEvent = onEvent;
    this.abs = new Map([[laid.id, { x: 0, y: 0 }]]);
    this.stateEls = new Map();
    this.eventEls = [];   // [{el, source, event}]
    const width = Math.ceil(laid.width);
    const height = Math.ceil(laid.height);
    this.svg = s("svg", { class: "chart-svg", viewBox: `0 0 ${width} ${height}`, width, height,
      role: "img", "aria-label": label || `state chart of ${definition.root.id}` });
    this.svg.append(s("defs", null,
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
    const nodes = s("g", { class: "nodes" });
    const edges = s("g", { class: "edges" });
    this.svg.append(nodes, edges);
    for (const child of laid.children || []) this._node(nodes, child, laid.id);
    this._edges(edges, laid, info);
  }

  _node(layer, laidNode, parentId) {
    const origin = this.abs.get(parentId);
    const x = origin.x + laidNode.x;
    const y = origin.y + laidNode.y;
    this.abs.set(laidNode.id, { x, y });
    if (laidNode.id.endsWith("::initial")) {
      layer.append(s("circle", { class: "initial-dot", cx: x + laidNode.width / 2, cy: y + laidNode.height / 2, r: laidNode.width / 2 }));
      return;
    }
    const { node, parent } = this.byId.get(laidNode.id);
    const kinds = [node.type];
    if (parent && parent.type === "parallel") kinds.push("region");
    const group = s("g", { class: `state ${kinds.join(" ")}`, "data-state-id": node.id });
    const w = laidNode.width;
    const h = laidNode.height;
    if (node.type === "history") {
      group.append(s("circle", { class: "frame", cx: x + w / 2, cy: y + h / 2, r: w / 2 }),
        text({ class: "title", x: x + w / 2, y: y + h / 2 + 4, "text-anchor": "middle" }, titleOf(node, parent)));
    } else {
      group.append(s("rect", { class: "frame", x, y, width: w, height: h, rx: 8 }));
      if (node.type === "final") group.append(s("rect", { class: "inner", x: x + 3, y: y + 3, width: w - 6, height: h - 6, rx: 6 }));
      group.append(text({ class: "title", x: x + PAD, y: y + PAD + 12 }, titleOf(node, parent)));
      detailLines(node).forEach((line, i) => {
        const el = text({ class: `line ${line.kind}`, x: x + PAD, y: y + PAD + TITLE + 12 + i * LINE }, line.text);
        group.append(el);
        if (line.event) this.eventEls.push({ el, source: node.id, event: line.event });
      });
    }
    layer.append(group);
    this.stateEls.set(node.id, group);
    for (const child of laidNode.children || []) this._node(layer, child, laidNode.id);
  }

  _edges(layer, laid, info) {
    const all = [];
    const collect = (n) => {
      for (const e of n.edges || []) all.push(e);
      for (const c of n.children || []) collect(c);
    };
    collect(laid);
    for (const edge of all) {
      const what = info.get(edge.id);
      const origin = this.abs.get(edge.container || laid.id) || { x: 0, y: 0 };
      const group = s("g", { class: what.initial ? "edge initial" : `edge ${what.transition.kind}` });
      for (const section of edge.sections || []) {
        const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
        const d = points.map((p, i) => `${i ? "L" : "M"} ${origin.x + p.x} ${origin.y + p.y}`).join(" ");
        group.append(s("path", { d, "marker-end": "url(#arrow)" }));
      }
      for (const lab of edge.labels || []) {
        const x = origin.x + lab.x;
        const y = origin.y + lab.y;
        const box = s("g", { class: "edge-label" },
          s("rect", { x, y, width: lab.width, height: lab.height, rx: 4 }),
          text({ x: x + 5, y: y + lab.height - 5 }, lab.text));
        group.append(box);
        if (what.transition && what.transition.kind === "event") {
          this.eventEls.push({ el: box, source: what.source, event: what.transition.event });
        }
      }
      layer.append(group);
    }
  }

  // Highlight the states of `value` and make the events they accept clickable.
  setState(value, { clickable = true } = {}) {
    const active = value === undefined ? new Set() : activeIds(this.definition.root, value);
    // The root is always active: only the states under it are highlighted.
    for (const [id, el] of this.stateEls) el.classList.toggle("active", active.has(id) && id !== this.definition.root.id);
    for (const item of this.eventEls) {
      const live = clickable && !!this.onEvent && active.has(item.source);
      item.el.classList.toggle("clickable", live);
      if (live) {
        item.el.setAttribute("role", "button");
        item.el.setAttribute("tabindex", "0");
        item.el.setAttribute("data-event", item.event);
        item.el.setAttribute("aria-label", `send ${item.event}`);
        if (!item.wired) {
          item.wired = true;
          const fire = (e) => {
            if (!item.el.classList.contains("clickable")) return;
            if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return;
            e.preventDefault();
            this.onEvent(item.event);
          };
          item.el.addEventListener("click", fire);
          item.el.addEventListener("keydown", fire);
        }
      } else {
        for (const name of ["role", "tabindex", "data-event", "aria-label"]) item.el.removeAttribute(name);
      }
    }
  }
}

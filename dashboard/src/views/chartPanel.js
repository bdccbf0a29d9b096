// A version's chart, drawn from its definition (GET /machines/<m>/v/<id>/definition).

import { Chart } from "../chart/render.js";
import { h, replace, spinner } from "../dom.js";
import { errorBox, note } from "../ui.js";

const definitions = new Map();   // version id -> definition: versions never change

export async function loadDefinition(api, machine, versionId) {
  if (!definitions.has(versionId)) {
    const body = await api.get(`machines/${machine}/v/${versionId}/definition`);
    definitions.set(versionId, body.definition);
  }
  return definitions.get(versionId);
}

// Draws into `box`; resolves to the Chart, or null (with the reason shown) when there is none.
export async function drawChart(box, api, machine, versionId, { onEvent } = {}) {
  replace(box, spinner("Laying out the chart…"));
  let definition;
  try {
    definition = await loadDefinition(api, machine, versionId);
  } catch (err) {
    replace(box, errorBox(err, "Could not read the version's chart"));
    return null;
  }
  if (definition.unavailable) {
    replace(box, note(`This version has no chart: ${definition.unavailable}`));
    return null;
  }
  const canvas = h("div", { class: "chart-canvas" });
  const zoom = h("button", { class: "small", "aria-pressed": "false", onclick: () => {
    const natural = canvas.classList.toggle("natural");
    zoom.setAttribute("aria-pressed", String(natural));
    zoom.textContent = natural ? "Fit to width" : "Actual size";
  } }, "Actual size");
  replace(box, h("div", { class: "chart" }, h("div", { class: "chart-tools" }, zoom), canvas));
  try {
    return await Chart.draw(canvas, definition, { onEvent, label: `state chart of ${machine}` });
  } catch (err) {
    replace(box, errorBox(err, "Could not lay out the chart"));
    return null;
  }
}

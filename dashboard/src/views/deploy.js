// Deploying a version: a bundle (an ES module as smply builds it), or one machine file that
// the server bundles as `smply machines create --node` does (POST /machines/<m>/bundle). Then
// the three steps every client takes: a provisional version, the code's upload, finalize.

import { field, h, replace } from "../dom.js";
import { errorBox } from "../ui.js";

export function deployPanel(api, machine, { onDeployed }) {
  const kind = (value, label, checked) => h("label", { class: "check" },
    h("input", { type: "radio", name: `deploy-kind-${machine}`, value, checked }), ` ${label}`);
  const kinds = h("fieldset", { class: "kinds" }, h("legend", null, "What you have"),
    kind("file", "One machine file (TypeScript or JavaScript importing xstate): the server bundles it like smply --node", true),
    kind("bundle", "A bundle (an ES module exporting the machine, allowRead and allowWrite)", false));
  const code = h("textarea", { name: "code", rows: 12, spellcheck: false, class: "code", "aria-label": "machine code",
    placeholder: 'import { createMachine } from "xstate";\nexport default createMachine({ ... });\nexport const allowRead = () => true;\nexport const allowWrite = () => true;' });
  let fileName = null;
  const file = h("input", { type: "file", accept: ".js,.mjs,.ts,.mts,.jsx,.tsx", "aria-label": "upload a file" });
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    fileName = chosen.name;
    code.value = await chosen.text();
  });
  code.addEventListener("input", () => { fileName = null; });
  const clientInfo = h("input", { name: "clientInfo", placeholder: "e.g. 1.0.0", spellcheck: false });
  const makeCurrent = h("input", { type: "checkbox", name: "makeCurrent", checked: true });
  const out = h("div", { class: "outcome", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Deploy");

  const step = (text) => replace(out, h("span", { class: "muted", role: "status" }, text));

  async function deploy() {
    const source = code.value;
    if (!source.trim()) throw Object.assign(new Error("there is no code to deploy"), { words: "There is no code to deploy: paste it or choose a file." });
    let bundle = source;
    if (kinds.querySelector("input:checked").value === "file") {
      step("Bundling on the server…");
      const built = await api.post(`machines/${machine}/bundle`, { source, fileName: fileName || undefined });
      bundle = built.code;
    }
    step("Creating the version…");
    const made = await api.post(`machines/${machine}/v`);
    step("Uploading the code…");
    await api.upload(made, bundle, `${machine}.js`);
    step("Checking it in the sandbox…");
    const body = { clientInfo: clientInfo.value.trim() || undefined, makeCurrent: makeCurrent.checked };
    const done = await api.put(`machines/${machine}/v/${made.machineVersionId}`, body);
    return done.machineVersionId;
  }

  const form = h("form", {
    class: "stack",
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        const id = await deploy();
        replace(out, h("span", { class: "ok", role: "status" }, `Deployed ${id}${makeCurrent.checked ? ", now current" : ""}.`));
        onDeployed(id);
      } catch (err) {
        replace(out, errorBox(err, "Could not deploy"));
      } finally {
        submit.disabled = false;
      }
    },
  }, kinds, field("Code", code), h("div", { class: "row wrap" }, file),
  h("div", { class: "row wrap" }, field("Version reference", clientInfo, "Shown as the version's client info."),
    h("label", { class: "check" }, makeCurrent, " Make it the current version")),
  h("div", { class: "row" }, submit), out);
  return form;
}

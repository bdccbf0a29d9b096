// A few DOM helpers: the dashboard builds its pages from plain elements.

// h("button", { class: "primary", onclick }, "Send") -> <button class="primary">Send</button>
// Props starting with "on" are listeners; `dataset` and `style` objects are merged; DOM
// properties are set (false too), other props are attributes (false: left out); false, null
// and undefined children are skipped; arrays are flattened. Text is always text, never HTML.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (value === false && !(name in el)) continue;   // an absent attribute; a property is set
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), guarded(value));
    } else if (name === "dataset" || name === "style") {
      Object.assign(el[name], value);
    } else if (name in el && typeof el[name] !== "function" && !name.includes("-") && name !== "list") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Listeners may be async: a rejected promise is shown, never left unhandled in the console.
export function guarded(fn) {
  return (event) => {
    try {
      const result = fn(event);
      if (result && typeof result.catch === "function") result.catch(reportUnexpected);
    } catch (err) {
      reportUnexpected(err);
    }
  };
}

export function reportUnexpected(err) {
  const box = document.getElementById("unexpected") || document.body.appendChild(
    h("div", { id: "unexpected", class: "error floating", role: "alert" }),
  );
  box.textContent = `Something went wrong in the dashboard: ${err && err.message ? err.message : err}`;
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", null, title) : null, ...children);
}

let fieldCount = 0;

// A labelled input; the hint is its description, not part of its name.
export function field(label, input, hint) {
  fieldCount += 1;
  if (!input.id) input.id = `field-${fieldCount}`;
  const hintEl = hint ? h("span", { class: "hint", id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { class: "label", for: input.id }, label), input, hintEl);
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}`.trim() }, text);
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function spinner(text) {
  return h("p", { class: "muted loading", role: "status" }, text || "Loading…");
}

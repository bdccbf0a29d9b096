// Module resolution hooks for the oracle (registered with `module.register`).
//
// Scenario bundles import "xstate" or "npm:xstate", the two spellings backstate's sandbox
// accepts. Node knows neither from tests/conformance/, so both are resolved to the pinned copy in
// js_shims/node_modules: the oracle and every scenario then share one xstate instance.

let shimsURL;

export function initialize(data) {
  shimsURL = data.shimsURL;
}

export function resolve(specifier, context, nextResolve) {
  if (specifier === "xstate" || specifier === "npm:xstate") {
    return nextResolve("xstate", { ...context, parentURL: shimsURL });
  }
  return nextResolve(specifier, context);
}

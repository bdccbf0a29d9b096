// The driver of a migration bundle inside its VM (runtime/migrations.py loads the bundle as the
// module "migration", evaluates this, snapshots the VM, and talks to it through __bs_entry as
// runtime/step.py does to harness.js). A migration bundle exports, as State Backed's do:
//
//   upgradeState(oldLeafPath, context) -> newLeafPath     once per distinct leaf path
//   upgradeContext(oldLeafPaths, newLeafPaths, context) -> newContext     once
//
// ops: inspect; upgrade {current, history, context} -> {current, history, context, logs}, the
// leaf paths (see upgrade.js) and context mapped. Each call gets its own copy of its arguments.
import * as migration from "migration";

function fail(code, message) {
  const err = new Error(message);
  err.bsCode = code;
  throw err;
}

function describe(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

const copy = (value) => JSON.parse(JSON.stringify(value));

function invoke(name, args, shown) {
  let result;
  try {
    result = migration[name](...args.map(copy));
  } catch (err) {
    fail("migration-threw", `${name}(${shown}) threw ${describe(err)}`);
  }
  if (result && typeof result.then === "function") {
    fail("invalid-upgrade", `${name} must return its result synchronously, not a Promise`);
  }
  return result;
}

function upgradedPath(path, context) {
  const shown = JSON.stringify(path);
  const out = invoke("upgradeState", [path, context], `${shown}, context`);
  // [] names the machine itself (its initial states), as a path may stop at any state.
  if (!Array.isArray(out) || !out.every((key) => typeof key === "string" && key)) {
    let got;
    try { got = JSON.stringify(out); } catch (err) { got = String(out); }
    fail("invalid-upgrade", `upgradeState(${shown}, context) returned ${got}; it must return an array of state names`);
  }
  return out.slice();
}

// The new context must survive JSON unchanged, as a machine's context must (harness.js checks
// it again against the new version, after JSON has already dropped what it cannot hold).
function checkJson(value, path) {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail("invalid-upgrade", `upgradeContext returned context${path} = ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value !== "object") fail("invalid-upgrade", `upgradeContext returned context${path} as a ${typeof value}, which JSON cannot hold`);
  if (typeof value.toJSON === "function") return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}[${i}]`));
    return;
  }
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined) checkJson(value[key], `${path}.${key}`);
  }
}

const ops = {
  inspect() {
    return {
      exports: Object.keys(migration),
      upgradeState: typeof migration.upgradeState,
      upgradeContext: typeof migration.upgradeContext,
    };
  },

  upgrade(args) {
    const mapped = new Map();   // one upgradeState call per distinct leaf path
    const upgrade = (path) => {
      const key = JSON.stringify(path);
      if (!mapped.has(key)) mapped.set(key, upgradedPath(path, args.context));
      return mapped.get(key);
    };
    const current = args.current.map(upgrade);
    const history = args.history.map((group) => group.map(upgrade));
    const context = invoke("upgradeContext", [args.current, current, args.context], "oldPaths, newPaths, context");
    if (context === null || typeof context !== "object" || Array.isArray(context)) {
      fail("invalid-upgrade", "upgradeContext must return an object (the new context)");
    }
    checkJson(context, "");
    return { current, history, context, logs: __bs.takeLogs() };
  },
};

globalThis.__bs_entry = (json) => {
  const args = JSON.parse(json);
  try {
    if (args.seed !== undefined) __bs.reseed(args.seed);
    if (args.now !== undefined) __bs.now = args.now;
    return JSON.stringify({ ok: ops[args.op](args) });
  } catch (err) {
    const info = {
      code: (err && err.bsCode) || "migration-threw",
      message: err && err.bsCode ? err.message : describe(err),
      logs: __bs.takeLogs(),
    };
    return JSON.stringify({ error: info });
  }
};

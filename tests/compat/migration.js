// The migration both drivers deploy between two versions of machine.js (the same states, so
// every leaf path stays as it is); the context records that it ran.
export const upgradeState = (oldLeafPath) => oldLeafPath;

export const upgradeContext = (oldLeafPaths, newLeafPaths, context) => ({ ...context, migrated: true });

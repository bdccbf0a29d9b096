// Builds the dashboard into dist/, which the server serves at /dashboard/ (api/dashboard.py):
// the app bundled by esbuild, its stylesheet, and elkjs's layout worker, copied as published.
// Run by `make setup` (and the Dockerfile) through `npm run build`; nothing is fetched.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  entryPoints: { app: "src/main.js", styles: "src/styles.css" },
  outdir: "dist",
  bundle: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});

const copies = [
  ["src/index.html", "index.html"],
  ["src/icon.svg", "icon.svg"],
  // The layout runs in a worker, off the page's thread; this file is elkjs's own build.
  ["node_modules/elkjs/lib/elk-worker.min.js", "elk-worker.min.js"],
];
for (const [from, to] of copies) {
  await copyFile(new URL(from, import.meta.url), new URL(to, dist));
}

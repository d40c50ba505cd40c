#!/usr/bin/env node
// Bundles the browser app (src/app.ts + the protocol codec) into dist/public with the static
// files. Part of `pnpm build`, so users never run a front-end build themselves and the page
// loads nothing from outside the machine.
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "dist", "public");
mkdirSync(out, { recursive: true });
cpSync(path.join(here, "public"), out, { recursive: true });
await build({
  entryPoints: [path.join(here, "src", "app.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: path.join(out, "app.js"),
  logLevel: "warning",
});

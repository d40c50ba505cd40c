#!/usr/bin/env node
// Builds the self-contained bundle `pifleet install` ships for each role:
//   node scripts/bundle.mjs [pi|fileserver|coordinator ...] [--out DIR]
// Default: every role whose daemon is built, into .artifacts/bundle/<name>/. Needs `pnpm build`.
// The Pi agent's and the fileserver agent's bundles hold no native addon and run on any CPU; the
// coordinator's SQLite addon is copied as built on THIS machine (platform/arch/Node ABI in
// manifest.json).
import path from "node:path";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const lib = path.join(root, "packages/cli/dist/install/bundle.js");
if (!existsSync(lib)) {
  process.stderr.write("bundle: packages/cli is not built: run `pnpm build` first\n");
  process.exit(1);
}
const { buildBundle, defaultBundleDir } = await import(pathToFileURL(lib).href);
const { ROLES } = await import(pathToFileURL(path.join(root, "packages/cli/dist/install/roles.js")).href);

const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = outIndex >= 0 ? args.splice(outIndex, 2)[1] : undefined;
const explicit = args.length > 0;
const roles = explicit ? args : Object.keys(ROLES);
let failed = 0;
for (const name of roles) {
  const role = ROLES[name];
  if (!role) {
    process.stderr.write(`bundle: unknown role "${name}" (pi, fileserver, coordinator)\n`);
    process.exit(2);
  }
  const entry = path.join(root, "packages", role.package, "dist", "main.js");
  if (!explicit && !existsSync(entry)) {
    process.stderr.write(`bundle: ${name}: skipped, ${path.relative(root, entry)} is not built\n`);
    continue;
  }
  const dir = out ? path.join(out, role.name) : defaultBundleDir(role);
  try {
    const m = await buildBundle(role, { outDir: dir });
    const bytes = m.files.reduce((n, f) => n + f.size, 0);
    const natives = m.natives.length > 0 ? `natives ${m.natives.join(", ")} for ${m.platform}-${m.arch}, Node ABI ${m.nodeModulesAbi}` : "no native addon: any CPU";
    process.stdout.write(`${name}: ${path.relative(process.cwd(), dir) || dir} (${m.files.length} files, ${(bytes / 1e6).toFixed(1)} MB; Node ${m.minNode}+, ${natives})\n`);
  } catch (err) {
    failed++;
    process.stderr.write(`bundle: ${name}: ${err.message}\n`);
  }
}
process.exit(failed ? 1 : 0);

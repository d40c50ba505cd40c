import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildBundle } from "../../../packages/cli/src/install/bundle.js";
import { ROLES, type RoleName } from "../../../packages/cli/src/install/roles.js";
import { cached, fileHash, recipeHash, repoRoot } from "./cache.js";
import { ext4Image } from "./disk.js";

/** A pifleet program to ship into a VM. */
export interface AppProgram {
  /** Command name inside the VM: /opt/pifleet/bin/<name>. */
  name: string;
  /** The install role whose bundle recipe (natives, package) applies. */
  role: RoleName;
  /** Built JavaScript entry, relative to the repository, e.g. `packages/fileserver-agent/dist/cli.js`. */
  entry: string;
}

export interface AppImage {
  /** ext4 image to attach with serial `pifleet-app`; the lab's autorun mounts it at /opt/pifleet. */
  image: string;
  programs: string[];
}

/** The host's Node 20 binary: one self-contained executable needing only glibc and libstdc++. */
function nodeBinary(): string {
  return realpathSync(existsSync("/usr/bin/node") ? "/usr/bin/node" : process.execPath);
}

/**
 * pifleet as a VM runs it: /opt/pifleet/bin/node (the host's), and per program the very bundle
 * `pifleet install` ships (packages/cli's buildBundle: esbuild output + native addons +
 * manifest) in /opt/pifleet/<name>/, started by the wrapper /opt/pifleet/bin/<name>. Built from
 * the workspace's dist (run `tsc -b` first); the image is cached by the bundles' content.
 */
export async function pifleetApp(programs: AppProgram[]): Promise<AppImage> {
  const stage = path.join(os.tmpdir(), `pifleet-lab-app-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(path.join(stage, "bin"), { recursive: true });
    for (const p of programs) {
      const entry = path.join(repoRoot, p.entry);
      if (!existsSync(entry)) throw new Error(`lab: ${p.entry} does not exist (build it: pnpm exec tsc -b)`);
      await buildBundle(ROLES[p.role], { outDir: path.join(stage, p.name), entry });
      const wrapper = path.join(stage, "bin", p.name);
      writeFileSync(wrapper, `#!/bin/sh\nexec /opt/pifleet/bin/node /opt/pifleet/${p.name}/main.js "$@"\n`);
      chmodSync(wrapper, 0o755);
    }
    const node = nodeBinary();
    const contents = hashTree(stage);
    const dir = await cached("pifleet-app", { node: fileHash(node), contents }, async (out) => {
      cpSync(node, path.join(stage, "bin/node"));
      chmodSync(path.join(stage, "bin/node"), 0o755);
      await ext4Image(stage, path.join(out, "app.ext4"), { label: "pifleet-app" });
    });
    return { image: path.join(dir, "app.ext4"), programs: programs.map((p) => p.name) };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function hashTree(dir: string): string {
  const entries: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) entries[path.relative(dir, p)] = fileHash(p);
    }
  };
  walk(dir);
  return recipeHash(entries);
}

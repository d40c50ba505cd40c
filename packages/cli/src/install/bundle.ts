import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { layoutOf, NOTIFY_EXEC, SYSTEMD_DIR, WORKSPACE_ROOT, type Role } from "./roles.js";

/**
 * One self-contained folder per role: main.js (the daemon and every pure-JS dependency, bundled
 * by esbuild for the role's oldest Node), package.json (marks main.js as ESM: Node 18 does not
 * guess), notify-exec.pl (the unit starts the daemon through it, see systemd/notify-exec.pl),
 * node_modules/ holding only native addons, which cannot be inlined (the coordinator's SQLite;
 * the Pi agent and the fileserver agent have none, so their bundles run on any CPU), and
 * manifest.json naming every file with its sha256 and, when there are addons, the platform they
 * were built for. Output is deterministic (no timestamps), so an unchanged tree installs as
 * "no changes".
 */

export interface BundleFile {
  /** Relative to the bundle folder, '/'-separated. */
  path: string;
  sha256: string;
  size: number;
}

export interface BundleManifest {
  format: 2;
  role: string;
  package: string;
  /** The oldest Node major it runs on; main.js is built for it (esbuild target `node<minNode>`). */
  minNode: number;
  /**
   * Where native addons load: a .node built for x64 / Node ABI 115 fails elsewhere. All three are
   * null when the bundle has no addon: it runs on any CPU and any Node from minNode on.
   */
  platform: string | null;
  arch: string | null;
  nodeModulesAbi: string | null;
  builtWithNode: string;
  natives: string[];
  files: BundleFile[];
}

export class BundleError extends Error {
  override name = "BundleError";
}

/** Build-time helpers that native packages list as dependencies but never load at run time. */
const BUILD_ONLY = new Set(["prebuild-install", "nan", "node-gyp", "node-addon-api", "node-gyp-build-optional-packages"]);
const SKIP_DIRS = new Set(["deps", "src", "test", "tests", "docs", "doc", "benchmark", "benchmarks", "example", "examples", ".github", "node_modules", "build"]);
const KEEP_EXT = /\.(c?js|mjs|json)$/;

export interface BuildOptions {
  outDir: string;
  /** Defaults to packages/<role.package>/dist/main.js. */
  entry?: string;
}

export async function buildBundle(role: Role, options: BuildOptions): Promise<BundleManifest> {
  const packageDir = path.join(WORKSPACE_ROOT, "packages", role.package);
  const entry = options.entry ?? path.join(packageDir, "dist", "main.js");
  if (!existsSync(entry)) {
    throw new BundleError(`no ${path.relative(process.cwd(), entry)}: build it first (pnpm exec tsc -b packages/${role.package})`);
  }
  const { build } = await import("esbuild");
  rmSync(options.outDir, { recursive: true, force: true });
  mkdirSync(options.outDir, { recursive: true });
  const result = await build({
    entryPoints: [entry],
    outfile: path.join(options.outDir, "main.js"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: `node${role.minNode}`,
    external: [...role.natives, ...(role.packages ?? [])],
    metafile: true,
    logLevel: "silent",
    legalComments: "none",
    banner: {
      js: [
        // CommonJS dependencies inside an ESM bundle still call require(); give them one that
        // resolves beside main.js, where node_modules/ holds the native addons.
        'import { createRequire as __pifleetRequire } from "node:module";',
        "const require = __pifleetRequire(import.meta.url);",
        // pino-pretty is not shipped: bundled daemons always log JSON lines, as journald wants.
        'process.env.PIFLEET_LOG_FORMAT ??= "json";',
      ].join("\n"),
    },
  });
  for (const warning of result.warnings) {
    if (warning.text.includes("Could not resolve")) throw new BundleError(`esbuild: ${warning.text}`);
  }

  // Native addons: the package folder with its JS, package.json and compiled .node, plus the
  // run-time dependencies they require (e.g. `bindings`), flattened into node_modules/.
  // A dependency goes to the top node_modules/ unless another version holds that place; then it
  // is nested under the package that needs it, where Node's resolution finds it first.
  /** Source folder of what each target folder holds. */
  const placed = new Map<string, string>();
  const roots = [packageDir, path.join(WORKSPACE_ROOT, "packages", "core")];
  const top = path.join(options.outDir, "node_modules");
  // What ties the bundle to this machine: the compiled addons and what they load.
  const machineBound = new Set<string>();
  const queue = [...role.natives, ...(role.packages ?? [])].map((name) => ({ name, from: roots, parent: undefined as string | undefined, addon: false }));
  while (queue.length > 0) {
    const item = queue.shift()!;
    const { name, from, parent } = item;
    const dir = resolvePackageDir(name, from);
    const addon = item.addon || existsSync(path.join(dir, "binding.gyp"));
    let target = path.join(top, name);
    const atTop = placed.get(target);
    if (atTop !== undefined && atTop !== dir) {
      if (parent === undefined) throw new BundleError(`two versions of ${name} would share node_modules/${name}: ${atTop} and ${dir}`);
      target = path.join(parent, "node_modules", name);
    }
    const there = placed.get(target);
    if (there !== undefined) {
      if (there !== dir) throw new BundleError(`two versions of ${name} would share ${path.relative(options.outDir, target)}: ${there} and ${dir}`);
      continue;
    }
    placed.set(target, dir);
    if (addon) machineBound.add(name);
    copyPackage(dir, target);
    const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      // Type packages are listed as dependencies by some (etcd3: @types/node) but never loaded.
      if (!BUILD_ONLY.has(dep) && !dep.startsWith("@types/")) queue.push({ name: dep, from: [dir], parent: target, addon });
    }
  }

  // Node 18 runs a .js file as CommonJS unless a package.json says otherwise (20.19 would guess).
  writeFileSync(path.join(options.outDir, "package.json"), `${JSON.stringify({ type: "module", private: true })}\n`);
  cpSync(path.join(SYSTEMD_DIR, NOTIFY_EXEC), path.join(options.outDir, NOTIFY_EXEC));

  for (const asset of role.assets ?? []) {
    const from = path.join(WORKSPACE_ROOT, asset.from);
    if (!existsSync(from)) throw new Error(`bundle ${role.name}: ${asset.from} is missing (run pnpm build)`);
    cpSync(from, path.join(options.outDir, asset.to), { recursive: true });
  }

  const files = listFiles(options.outDir).map((rel) => {
    const data = readFileSync(path.join(options.outDir, rel));
    return { path: rel, sha256: sha256(data), size: data.length };
  });
  const native = machineBound.size > 0;
  const manifest: BundleManifest = {
    format: 2,
    role: role.role,
    package: role.package,
    minNode: role.minNode,
    platform: native ? process.platform : null,
    arch: native ? process.arch : null,
    nodeModulesAbi: native ? process.versions.modules : null,
    builtWithNode: process.versions.node.split(".")[0],
    natives: [...machineBound].sort(),
    files,
  };
  writeFileSync(path.join(options.outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Reads a bundle folder and checks every file against its manifest: a partial copy is refused. */
export function loadBundle(dir: string, role: Role): BundleManifest {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as BundleManifest;
  } catch (err) {
    throw new BundleError(`${dir}: no readable manifest.json (${(err as NodeJS.ErrnoException).code ?? String(err)}): build it with scripts/bundle.mjs`);
  }
  if ((manifest.format as number) === 1) throw new BundleError(`${dir}/manifest.json: an older bundle format (1): rebuild it with scripts/bundle.mjs`);
  if (manifest.format !== 2 || !Array.isArray(manifest.files)) throw new BundleError(`${dir}/manifest.json: not a pifleet bundle manifest`);
  if (manifest.role !== role.role) throw new BundleError(`${dir} is a bundle for role ${manifest.role}, not ${role.role}`);
  for (const f of manifest.files) {
    const file = path.join(dir, f.path);
    if (!existsSync(file) || sha256(readFileSync(file)) !== f.sha256) throw new BundleError(`${dir}: ${f.path} is missing or differs from manifest.json`);
  }
  return manifest;
}

/** Every file the installer puts under the role's lib dir: the manifest's files and manifest.json itself. */
export function bundleFiles(dir: string, manifest: BundleManifest): { rel: string; data: Buffer }[] {
  return [...manifest.files.map((f) => f.path), "manifest.json"].map((rel) => ({ rel, data: readFileSync(path.join(dir, rel)) }));
}

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function resolvePackageDir(name: string, from: string[]): string {
  for (const base of from) {
    try {
      const req = createRequire(path.join(base, "package.json"));
      return realpathSync(path.dirname(req.resolve(`${name}/package.json`)));
    } catch {
      // Try the next root; some packages hide package.json behind "exports": walk up from main.
      try {
        const req = createRequire(path.join(base, "package.json"));
        let dir = path.dirname(req.resolve(name));
        while (!existsSync(path.join(dir, "package.json")) && dir !== path.dirname(dir)) dir = path.dirname(dir);
        return realpathSync(dir);
      } catch {
        /* not resolvable from this root */
      }
    }
  }
  throw new BundleError(`cannot find the package ${name} (looked from ${from.join(", ")}): run pnpm install`);
}

function copyPackage(from: string, to: string): void {
  // A native addon keeps its compiled .node and its JS; a plain JS package (etcd3, grpc) is
  // copied whole but for nested node_modules, since it may read .proto and other files at run time.
  const native = existsSync(path.join(from, "binding.gyp"));
  const keep = native ? keepInPackage : (_relDir: string, entry: string) => !(entry === "node_modules" || entry.startsWith(".") || /\.(d\.ts|map)$/.test(entry));
  for (const rel of listFiles(from, (relDir, entry) => keep(relDir, entry))) {
    const target = path.join(to, rel);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, readFileSync(path.join(from, rel)));
  }
}

function keepInPackage(relDir: string, entry: string): boolean | "descend" {
  const top = relDir === "";
  if (relDir === "build/Release") return entry.endsWith(".node") && !entry.startsWith("test");
  if (top && entry === "build") return "descend";
  if (relDir === "build") return entry === "Release" ? "descend" : false;
  if (SKIP_DIRS.has(entry) || entry.startsWith(".")) return false;
  if (top && /^(LICEN[CS]E|COPYING)/i.test(entry)) return true;
  return KEEP_EXT.test(entry) || "descend";
}

/** Files under `root` ('/'-separated relative paths, sorted); `filter` may prune directories. */
function listFiles(root: string, filter?: (relDir: string, entry: string) => boolean | "descend"): string[] {
  const out: string[] = [];
  const walk = (relDir: string) => {
    for (const entry of readdirSync(path.join(root, relDir)).sort()) {
      const rel = relDir ? `${relDir}/${entry}` : entry;
      const isDir = statSync(path.join(root, rel)).isDirectory();
      const verdict = filter ? filter(relDir, entry) : true;
      if (isDir) {
        if (verdict !== false) walk(rel);
      } else if (verdict === true) {
        out.push(rel);
      }
    }
  };
  walk("");
  return out.filter((rel) => rel !== "manifest.json");
}

export function defaultBundleDir(role: Role): string {
  return path.join(WORKSPACE_ROOT, ".artifacts", "bundle", layoutOf(role).libDir.split("/").pop()!);
}

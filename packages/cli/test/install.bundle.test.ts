import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { buildBundle, loadBundle } from "../src/install/bundle.js";
import { ROLES, type Role } from "../src/install/roles.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const tmp = mkdtempSync(path.join(os.tmpdir(), "pifleet-bundle-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Daemons are written by several people at once: cover each role whose entry point exists in the
// sources (then `tsc -b` must have built it; a missing dist/main.js fails the test).
const roles = Object.values(ROLES).filter((r) => existsSync(path.join(repo, "packages", r.package, "src", "main.ts")));

describe("self-contained bundles", () => {
  it("covers at least the Pi agent", () => {
    expect(roles.map((r) => r.role)).toContain("pi");
  });

  it("ships the dashboard with the coordinator", () => {
    expect(ROLES.coordinator.assets).toEqual([{ from: "packages/dashboard/dist/public", to: "dashboard" }]);
  });

  for (const role of roles) {
    it(`${role.role}: the daemon runs from a copy far from the workspace, native addons included`, async () => {
      const built = path.join(tmp, `built-${role.name}`);
      const manifest = await buildBundle(role, { outDir: built });
      expect(manifest.natives).toEqual(expect.arrayContaining(role.natives));
      expect(manifest.minNode).toBe(role.minNode);
      // Addons tie a bundle to this machine; without any it runs anywhere.
      expect(manifest.arch).toBe(role.natives.length > 0 ? process.arch : null);
      expect(manifest.nodeModulesAbi).toBe(role.natives.length > 0 ? process.versions.modules : null);
      // Build-time helpers and the native addon's C sources stay behind (plain JS packages, such
      // as etcd3's grpc, are shipped whole: they read files beside their code at run time).
      const paths = manifest.files.map((f) => f.path);
      expect(paths.filter((p) => /node_modules\/(nan|prebuild-install)\//.test(p) || /node_modules\/better-sqlite3\/(deps|src)\//.test(p))).toEqual([]);
      expect(paths).toContain("main.js");
      // Every unit starts its daemon through the wrapper; Node 18 needs package.json to run main.js as ESM.
      expect(readFileSync(path.join(built, "notify-exec.pl"), "utf8")).toBe(readFileSync(path.join(repo, "systemd/notify-exec.pl"), "utf8"));
      expect(JSON.parse(readFileSync(path.join(built, "package.json"), "utf8"))).toMatchObject({ type: "module" });
      for (const asset of role.assets ?? []) expect(paths).toContain(`${asset.to}/index.html`);

      // Same input, same bytes: what makes a reinstall a no-op.
      const again = await buildBundle(role, { outDir: path.join(tmp, `again-${role.name}`) });
      expect(again.files).toEqual(manifest.files);

      // Copied to a folder with no node_modules above it, as on the target.
      const copy = path.join(tmp, "target", role.name);
      cpSync(built, copy, { recursive: true });
      expect(loadBundle(copy, role).files.length).toBe(manifest.files.length);
      const run = spawnSync(process.execPath, [path.join(copy, "main.js"), "--config", "/nonexistent/pifleet.yaml"], { cwd: "/", encoding: "utf8", timeout: 15_000 });
      expect(run.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)|Dynamic require/);
      expect(run.status).not.toBe(0);
      expect(`${run.stdout}${run.stderr}`).toContain("/nonexistent/pifleet.yaml");

      for (const addon of role.natives) expect(loadsFrom(copy, addon)).toBe("ok");
    });
  }

  it("the Pi agent's bundle holds no native addon at all (one bundle for arm64 and armhf) and targets Node 18", async () => {
    const dir = path.join(tmp, "pi-portable");
    const manifest = await buildBundle(ROLES.pi, { outDir: dir });
    expect(manifest).toMatchObject({ minNode: 18, natives: [], platform: null, arch: null, nodeModulesAbi: null });
    const all = execFileSync("find", [dir, "-type", "f"], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(all.filter((f) => f.endsWith(".node"))).toEqual([]);
    expect(all.some((f) => f.includes("/node_modules/"))).toBe(false);
    // No ELF object of any kind: nothing in it is tied to a CPU.
    for (const f of all) expect(readFileSync(f).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])), f).toBe(false);
    expect(manifest.files.map((f) => f.path).sort()).toEqual(["main.js", "notify-exec.pl", "package.json"]);
  });

  it("the fileserver's one main.js is also pifleet-fileserver: a subcommand runs the CLI, --config alone the daemon", async () => {
    const copy = path.join(tmp, "target", "fileserver-cli");
    await buildBundle(ROLES.fileserver, { outDir: path.join(tmp, "fileserver-cli") });
    cpSync(path.join(tmp, "fileserver-cli"), copy, { recursive: true });
    const sandbox = mkdtempSync(path.join(tmp, "fs-sandbox-"));
    const fleet = path.join(repo, "examples/seed-8.yaml");
    const run = (...args: string[]) => spawnSync(process.execPath, [path.join(copy, "main.js"), ...args], { cwd: "/", encoding: "utf8", timeout: 30_000 });

    const help = run("plan", "--help");
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("Usage: pifleet-fileserver plan");
    expect(run("init-sandbox", "--fleet", fleet, "--root-prefix", sandbox).status).toBe(0);
    // Options after the subcommand, as the README tells operators to type them.
    const apply = run("apply", "--fleet", fleet, "--root-prefix", sandbox, "--json");
    expect(apply.status, apply.stderr).toBe(0);
    expect(JSON.parse(apply.stdout)).toMatchObject({ result: { ok: true } });
    expect(readFileSync(path.join(sandbox, "export/10.46.189.2/etc/hostname"), "utf8")).toBe("pi01\n");
    const check = run("--fleet", fleet, "--root-prefix", sandbox, "plan", "--check");
    expect(check.status, check.stdout).toBe(0);
    expect(check.stdout).toContain("drift: none");

    // The daemon is what --config alone (the unit's command line) still starts.
    const daemon = run("--config", "/nonexistent/fileserver.yaml");
    expect(daemon.status).toBe(2);
    expect(daemon.stderr).toContain("pifleet fileserver agent: /nonexistent/fileserver.yaml");
  });

  it("refuses a bundle whose files do not match its manifest", async () => {
    const role: Role = ROLES.pi;
    const dir = path.join(tmp, "tampered");
    await buildBundle(role, { outDir: dir });
    const main = path.join(dir, "main.js");
    cpSync(path.join(repo, "package.json"), main);
    expect(() => loadBundle(dir, role)).toThrow(/main\.js is missing or differs from manifest\.json/);
    expect(() => loadBundle(dir, ROLES.coordinator)).toThrow(/is a bundle for role pi, not coordinator/);
  });
});

/** Loads a shipped addon the way the bundle does (require beside main.js) and exercises it. */
function loadsFrom(dir: string, addon: string): string {
  const probe: Record<string, string> = {
    "unix-dgram": 'const s = r("unix-dgram").createSocket("unix_dgram"); s.close();',
    "better-sqlite3": 'const db = new (r("better-sqlite3"))(":memory:"); if (db.prepare("select 41 + 1 as x").get().x !== 42) throw new Error("sqlite");',
  };
  const code = `const r = require("node:module").createRequire(${JSON.stringify(path.join(dir, "main.js"))}); ${probe[addon] ?? `r(${JSON.stringify(addon)});`} process.stdout.write("ok");`;
  const run = spawnSync(process.execPath, ["-e", code], { cwd: "/", encoding: "utf8" });
  return run.status === 0 ? run.stdout : `${addon} failed to load: ${run.stderr}`;
}

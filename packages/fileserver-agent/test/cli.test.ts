import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, repo, tempDir } from "./helpers.js";

const cli = path.join(repo, "packages/fileserver-agent/dist/cli.js");
const fleet = path.join(repo, "examples/seed-8.yaml");
let t: ReturnType<typeof tempDir>;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, "--fleet", fleet, "--root-prefix", t.dir, ...args], { encoding: "utf8", env: { ...process.env, PIFLEET_LOG_LEVEL: "silent" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  await ensureBuilt();
  t = tempDir("cli");
}, 120_000);
afterAll(() => t?.cleanup());

describe("pifleet-fileserver on a sandbox folder", () => {
  it("plans, applies, converges, syncs a site, refuses a powered rebuild and rebuilds an unpowered one", () => {
    expect(run("init-sandbox").out).toMatch(/srv\/pifleet\/golden/);

    const plan = run("plan", "--check");
    expect(plan.code).toBe(3);
    expect(plan.out).toMatch(/live: network emulate, nfs emulate\n {2}note: sandbox .*this machine's network and NFS server are not touched/);
    expect(plan.out).toContain("ip link add link eth0 name eth0.10 type vlan id 10\n");

    const dry = run("apply", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`cp --reflink=auto -a -T ${t.dir}/srv/pifleet/golden ${t.dir}/export/.10.46.189.2.building\n`);
    expect(dry.out).toMatch(/dry run: nothing changed\n$/);
    expect(readdirSync(path.join(t.dir, "export"))).toEqual([]);

    const apply = run("apply");
    expect(apply.code, apply.err).toBe(0);
    expect(apply.out).toMatch(/done: 18 actions/);
    const again = run("plan", "--check");
    expect(again.code).toBe(0);
    expect(again.out).toContain("drift: none");
    expect(run("apply").out).toMatch(/nothing to do\n$/);

    const site = path.join(t.dir, "site");
    mkdirSync(site);
    writeFileSync(path.join(site, "index.html"), "hello from the fleet");
    expect(run("sync-content", site).out).toMatch(/done: 17 actions \(site [0-9a-f]{16}\)/);
    expect(readFileSync(path.join(t.dir, "export/10.46.189.30/var/www/html/index.html"), "utf8")).toBe("hello from the fleet");
    expect(run("sync-content", site).out).toMatch(/nothing to do \(site [0-9a-f]{16}\)/);

    const refused = run("rebuild", "pi01");
    expect(refused.code).toBe(4);
    expect(refused.err).toMatch(/refused: refusing to rebuild pi01's root: the Pi may be powered/);
    const unknown = run("rebuild", "pi42", "--pi-powered=no");
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/no Pi "pi42" in fleet seed/);

    const rebuild = run("rebuild", "10.46.189.2", "--pi-powered=no", "--json");
    expect(rebuild.code).toBe(0);
    const json = JSON.parse(rebuild.out);
    expect(json.result).toEqual({ ok: true, done: 1, failed: null });
    expect(json.actions[0].commands).toContain(`mv -T ${t.dir}/export/10.46.189.2 ${t.dir}/export/.10.46.189.2.prev`);
    expect(existsSync(path.join(t.dir, "export/.10.46.189.2.prev"))).toBe(true);
    // The rebuilt root came with the current site.
    expect(readFileSync(path.join(t.dir, "export/10.46.189.2/var/www/html/index.html"), "utf8")).toBe("hello from the fleet");

    const report = JSON.parse(run("report").out);
    expect(report).toMatchObject({ fileserver: "fileserver", healthy: true, nfsServerRunning: true });
    expect(report.roots.find((r: { pi: string }) => r.pi === "pi01")).toMatchObject({ present: true, hasPrevious: true });
  });

  it("names the fleet file and field at fault", () => {
    const bad = path.join(t.dir, "bad.yaml");
    writeFileSync(bad, readFileSync(fleet, "utf8").replace("exportRoot: /export", "exportRoot: export"));
    const r = spawnSync(process.execPath, [cli, "--fleet", bad, "--root-prefix", t.dir, "plan"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}: fileserver.exportRoot: must be an absolute path`);
  });
});

import { readFileSync, statSync, writeFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderExports } from "@pifleet/core";
import { Fileserver, type Live } from "@pifleet/fileserver-agent";
import { FakeRunner, fixture, seedPlan, seedPlanWith, tempDir } from "./helpers.js";
import { initSandbox } from "@pifleet/fileserver-agent";

const NFS_ONLY: Live = { network: "off", nfs: "host", notes: [] };
let t: ReturnType<typeof tempDir>;
const FOREIGN = "# the backup server, not pifleet's\n/export/10.46.189.2 192.168.7.7(ro,no_subtree_check)\n";

beforeEach(() => {
  t = tempDir("exports");
  initSandbox(t.dir, seedPlan());
  writeFileSync(path.join(t.dir, "etc/exports.d/backup.exports"), FOREIGN);
});
afterEach(() => t.cleanup());

describe("NFS exports", () => {
  it("writes only pifleet's own file, leaves other exports.d files alone, and runs exportfs -ra only when that file changed", async () => {
    const foreignBefore = statSync(path.join(t.dir, "etc/exports.d/backup.exports"));
    let runner = new FakeRunner().state("[]", "[]", "");
    let fs = new Fileserver({ plan: seedPlan(), runner, live: NFS_ONLY, prefix: t.dir });
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(runner.changes()).toEqual(["exportfs -ra"]);
    expect(readFileSync(path.join(t.dir, "etc/exports.d/pifleet.exports"), "utf8")).toBe(renderExports(seedPlan()));
    expect(readdirSync(path.join(t.dir, "etc/exports.d")).sort()).toEqual(["backup.exports", "pifleet.exports"]);
    const foreignAfter = statSync(path.join(t.dir, "etc/exports.d/backup.exports"));
    expect(readFileSync(path.join(t.dir, "etc/exports.d/backup.exports"), "utf8")).toBe(FOREIGN);
    expect(foreignAfter.mtimeMs).toBe(foreignBefore.mtimeMs);
    expect(foreignAfter.ino).toBe(foreignBefore.ino);

    // Same file, live table already has every export: no exportfs -ra.
    runner = new FakeRunner().state("[]", "[]", fixture("exportfs-v-seed8.txt"));
    fs = new Fileserver({ plan: seedPlan(), runner, live: NFS_ONLY, prefix: t.dir });
    expect((await fs.apply()).diff.actions).toEqual([]);
    expect(runner.changes()).toEqual([]);

    // The plan changes (other export options): the file is rewritten and re-exported.
    const changed = seedPlanWith((f) => (f.fileserver.exportOptions = "rw,async,no_subtree_check,no_root_squash"));
    runner = new FakeRunner().state("[]", "[]", fixture("exportfs-v-seed8.txt"));
    fs = new Fileserver({ plan: changed, runner, live: NFS_ONLY, prefix: t.dir });
    await fs.apply();
    expect(runner.changes()).toEqual(["exportfs -ra"]);
    expect(readFileSync(path.join(t.dir, "etc/exports.d/pifleet.exports"), "utf8")).toContain("10.46.189.2(rw,async,");
    expect(readFileSync(path.join(t.dir, "etc/exports.d/backup.exports"), "utf8")).toBe(FOREIGN);
  });

  it("re-exports when the file is right but the live table lost a Pi's export", async () => {
    const runner = new FakeRunner().state("[]", "[]", "");
    const fs = new Fileserver({ plan: seedPlan(), runner, live: NFS_ONLY, prefix: t.dir });
    await fs.apply();
    const missingOne = fixture("exportfs-v-seed8.txt").replace(/\/export\/10\.46\.189\.14\n[^\n]*\n/, "");
    const r2 = new FakeRunner().state("[]", "[]", missingOne);
    const fs2 = new Fileserver({ plan: seedPlan(), runner: r2, live: NFS_ONLY, prefix: t.dir });
    const p = await fs2.planApply();
    expect(p.diff.drift).toEqual([{ kind: "export", subject: "/export/10.46.189.14", detail: "not exported to 10.46.189.14" }]);
    await fs2.apply();
    expect(r2.changes()).toEqual(["exportfs -ra"]);
  });

  it("reports foreign exports of paths under the export root, and touches none of them", async () => {
    const runner = new FakeRunner().state("[]", "[]", fixture("exportfs-v-seed8-foreign.txt"));
    const fs = new Fileserver({ plan: seedPlan(), runner, live: NFS_ONLY, prefix: t.dir });
    await fs.apply();
    const p = await fs.planApply();
    const foreign = p.diff.drift.filter((d) => d.kind === "foreign_export");
    expect(foreign.map((d) => `${d.subject} ${d.detail.split(" by ")[0]}`).sort()).toEqual([
      "/export/10.46.189.6 exported to <world>",
      "/export/shared exported to 10.46.189.0/24",
    ]);
    expect(foreign.find((d) => d.subject === "/export/10.46.189.6")!.detail).toMatch(/others could mount this root/);
    expect(p.diff.actions).toEqual([]);
    expect(runner.changes()).toEqual(["exportfs -ra"]);
  });
});

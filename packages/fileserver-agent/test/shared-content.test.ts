import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderExports } from "@pifleet/core";
import { initSandbox, openFileserver, type Fileserver } from "@pifleet/fileserver-agent";
import { seedPlan, seedPlanWith, tempDir } from "./helpers.js";

// `fileserver.content: shared`: one master copy of the site, exported read-only to every Pi,
// which mounts it and serves `current` from it. A content update is one copy into the store;
// no Pi's root is written while it runs.

const sharedPlan = () => seedPlanWith((f) => (f.fileserver.content = "shared"));

let t: ReturnType<typeof tempDir>;
let fs: Fileserver;

function site(name: string, text: string): string {
  const dir = path.join(t.dir, "sites", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "index.html"), text);
  return dir;
}

const roots = () => fs.plan.pis.map((p) => path.join(fs.layout.exportRoot, p.piAddress));

/** Every entry under a directory with its inode, mode, size and mtime: equal listings = nothing written. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      out.push(`${path.relative(dir, p)} ${st.ino} ${st.mode} ${st.size} ${st.mtimeMs}${st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : ""}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

beforeEach(async () => {
  t = tempDir("shared");
  initSandbox(t.dir, sharedPlan());
  fs = await openFileserver({ plan: sharedPlan(), prefix: t.dir, live: "emulate" });
});
afterEach(() => t.cleanup());

describe("shared content: one read-only export every Pi mounts", () => {
  it("exports the store read-only and root-squashed to each Pi, and builds each root to mount it", async () => {
    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    const exportsText = readFileSync(path.join(t.dir, "etc/exports.d/pifleet.exports"), "utf8");
    expect(exportsText).toBe(renderExports(sharedPlan()));
    for (const p of fs.plan.pis) expect(exportsText).toContain(`\n/export/.pifleet/content ${p.piAddress}(ro,sync,no_subtree_check,root_squash)\n`);
    // The copy mode's file is unchanged: no content line there.
    expect(renderExports(seedPlan())).not.toMatch(/\.pifleet\/content/);
    expect(lstatSync(fs.layout.contentStore).isDirectory()).toBe(true);

    for (const p of fs.plan.pis) {
      const root = path.join(fs.layout.exportRoot, p.piAddress);
      const unit = readFileSync(path.join(root, "etc/systemd/system/srv-pifleet-site.mount"), "utf8");
      // Mounted from the fileserver's end of that Pi's own /30, over its private VLAN.
      expect(unit).toContain(`What=${p.fileserverAddress}:/export/.pifleet/content\nWhere=/srv/pifleet/site\nType=nfs\nOptions=ro,`);
      expect(readlinkSync(path.join(root, "etc/systemd/system/remote-fs.target.wants/srv-pifleet-site.mount"))).toBe("/etc/systemd/system/srv-pifleet-site.mount");
      expect(readFileSync(path.join(root, "etc/systemd/system/apache2.service.d/pifleet-site.conf"), "utf8")).toBe("[Unit]\nRequiresMountsFor=/srv/pifleet/site\n");
      expect(lstatSync(path.join(root, "srv/pifleet/site")).isDirectory()).toBe(true);
      expect(readlinkSync(path.join(root, "var/www/html"))).toBe("/srv/pifleet/site/current");
      // The golden image's own page is kept, not deleted.
      expect(readFileSync(path.join(root, "var/www/.pifleet-original-html/index.html"), "utf8")).toMatch(/golden image's default page/);
    }
    // The emulated kernel NFS server has both: each root to its Pi, the store to every Pi.
    const again = await fs.planApply();
    expect(again.diff.drift).toEqual([]);
    expect(again.diff.actions).toEqual([]);
  });

  it("a content update is one copy into the store: no root is written, not even one whose var/www a Pi swapped for a symlink", async () => {
    await fs.apply();
    const victim = roots()[2];
    const outside = path.join(t.dir, "outside");
    mkdirSync(outside);
    writeFileSync(path.join(outside, "shadow"), "secret");
    rmSync(path.join(victim, "var/www"), { recursive: true });
    symlinkSync(outside, path.join(victim, "var/www"));
    const before = roots().map(listing);

    const out = await fs.syncContent(site("v1", "<h1>v1</h1>"));
    expect(out.result?.ok).toBe(true);
    expect(out.skipped).toEqual([]);
    expect(out.diff.actions.map((a) => a.subject)).toEqual(["store"]);
    expect(roots().map(listing)).toEqual(before);
    expect(readdirSync(outside)).toEqual(["shadow"]);
    // What every Pi's /srv/pifleet/site/current now resolves to, on the fileserver.
    const current = readlinkSync(path.join(fs.layout.contentStore, "current"));
    expect(readFileSync(path.join(fs.layout.contentStore, current, "index.html"), "utf8")).toBe("<h1>v1</h1>");

    const v2 = await fs.syncContent(site("v2", "<h1>v2</h1>"));
    expect(readlinkSync(path.join(fs.layout.contentStore, "current"))).toBe(v2.version);
    expect(readlinkSync(path.join(fs.layout.contentStore, "previous"))).toBe(current);
    expect(roots().map(listing)).toEqual(before);
  });

  it("a root that still serves its own copy is drift, moved by a rebuild and never written while its Pi runs", async () => {
    // Built in copy mode, with a site in it…
    const copyFs = await openFileserver({ plan: seedPlan(), prefix: t.dir, live: "emulate" });
    await copyFs.apply();
    await copyFs.syncContent(site("old", "OLD"));
    // …then the fleet moves to shared content.
    const before = roots().map(listing);
    const p = await fs.planApply();
    for (const pi of fs.plan.pis) {
      expect(p.diff.drift).toContainEqual({ kind: "content", subject: pi.name, detail: expect.stringMatching(/serves its own copy of site [0-9a-f]+, not the shared content export; rebuild .* root to move it/) });
    }
    expect(p.diff.actions.filter((a) => a.kind === "content" || a.kind === "root")).toEqual([]);
    await fs.apply();
    expect(roots().map(listing)).toEqual(before);

    const pi = fs.plan.pis[0];
    const rebuilt = await fs.rebuild(pi.name, { piPowered: false });
    expect(rebuilt.result?.ok).toBe(true);
    expect(readlinkSync(path.join(fs.layout.exportRoot, pi.piAddress, "var/www/html"))).toBe("/srv/pifleet/site/current");
    const after = await fs.planApply();
    expect(after.diff.drift.map((d) => d.subject)).not.toContain(pi.name);
  });
});

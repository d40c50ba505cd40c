import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync, lstatSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createLayout,
  formatActions,
  initSandbox,
  openFileserver,
  PathError,
  RefusedError,
  UnknownPiError,
  type Fileserver,
} from "@pifleet/fileserver-agent";
import { checkAbsolute, checkName, checkRelative } from "../src/safety.js";
import { executeStep } from "../src/reconcile/steps.js";
import { ExecRunner } from "@pifleet/fileserver-agent";
import { seedPlan, tempDir } from "./helpers.js";

let t: ReturnType<typeof tempDir>;
let fs: Fileserver;
let exportRoot: string;
const root = (a = "10.46.189.2") => path.join(exportRoot, a);
const OFF = { piPowered: false };

beforeEach(async () => {
  t = tempDir("rootfs");
  initSandbox(t.dir, seedPlan());
  fs = await openFileserver({ plan: seedPlan(), prefix: t.dir, live: "emulate" });
  exportRoot = fs.layout.exportRoot;
});
afterEach(() => t.cleanup());

describe("root filesystems on the real filesystem", () => {
  it("creates every root from the golden image, leaving the golden image as it was", async () => {
    const goldenBefore = readdirSync(fs.layout.golden, { recursive: true }).sort();
    expect((await fs.apply()).result?.ok).toBe(true);
    for (const pi of fs.plan.pis) {
      // The golden image's tree, plus the Pi's identity (hostname and hosts are the golden's own names).
      const identity = ["etc/hosts", "etc/network", "etc/network/interfaces.d", `etc/network/interfaces.d/${pi.publicInterface}`];
      expect(readdirSync(path.join(exportRoot, pi.piAddress), { recursive: true }).sort()).toEqual([...goldenBefore, ...identity].sort());
    }
    expect(readdirSync(fs.layout.golden, { recursive: true }).sort()).toEqual(goldenBefore);
    expect(readdirSync(exportRoot).filter((n) => n.includes(".building") || n.includes(".new"))).toEqual([]);
  });

  it("refuses to rebuild or roll back while the Pi may be powered, unless forced", async () => {
    await fs.apply();
    writeFileSync(path.join(root(), "marker"), "pi wrote this");
    await expect(fs.rebuild("pi01", {})).rejects.toThrow(RefusedError);
    await expect(fs.rebuild("pi01", { piPowered: true })).rejects.toThrow(/the Pi is powered/);
    await expect(fs.planRollback("pi01", {})).rejects.toThrow(RefusedError);
    expect(readFileSync(path.join(root(), "marker"), "utf8")).toBe("pi wrote this");
    expect(existsSync(path.join(exportRoot, ".10.46.189.2.prev"))).toBe(false);
    expect((await fs.rebuild("pi01", { piPowered: true, force: true })).result?.ok).toBe(true);
    expect(existsSync(path.join(root(), "marker"))).toBe(false);
    await expect(fs.rebuild("pi99", OFF)).rejects.toThrow(UnknownPiError);
  });

  it("rebuilds beside the old root, swaps by rename and keeps the old one as .prev; rollback swaps back", async () => {
    await fs.apply();
    writeFileSync(path.join(root(), "marker"), "broken state");
    const oldIno = statSync(root()).ino;
    const planned = await fs.planRebuild("10.46.189.2", OFF);
    const text = formatActions(planned.diff.actions);
    expect(text).toContain(`cp --reflink=auto -a -T ${fs.layout.golden} ${exportRoot}/.10.46.189.2.building\n`);
    expect(text).toContain(`mv -T ${exportRoot}/10.46.189.2 ${exportRoot}/.10.46.189.2.prev\nmv -T ${exportRoot}/.10.46.189.2.new ${exportRoot}/10.46.189.2\n`);

    expect((await fs.rebuild("pi01", OFF)).result?.ok).toBe(true);
    expect(existsSync(path.join(root(), "marker"))).toBe(false);
    expect(readFileSync(path.join(root(), "etc/hostname"), "utf8")).toBe("pi01\n");
    // The old root is the same directory, renamed: not a copy.
    expect(statSync(path.join(exportRoot, ".10.46.189.2.prev")).ino).toBe(oldIno);
    expect(readFileSync(path.join(exportRoot, ".10.46.189.2.prev/marker"), "utf8")).toBe("broken state");
    const report = (await fs.planApply()).observed.roots.find((r) => r.pi.name === "pi01")!;
    expect(report.hasPrevious).toBe(true);

    // A second rebuild replaces .prev with the first rebuild's root; no trash is left.
    const firstRebuiltIno = statSync(root()).ino;
    await fs.rebuild("pi01", OFF);
    expect(statSync(path.join(exportRoot, ".10.46.189.2.prev")).ino).toBe(firstRebuiltIno);
    expect(readdirSync(exportRoot).filter((n) => n.startsWith(".10.46.189.2.")).sort()).toEqual([".10.46.189.2.prev"]);

    // Rollback trades places; a second rollback undoes the first.
    const current = statSync(root()).ino;
    await fs.rollback("pi01", OFF);
    expect(statSync(root()).ino).toBe(firstRebuiltIno);
    expect(statSync(path.join(exportRoot, ".10.46.189.2.prev")).ino).toBe(current);
    await fs.rollback("pi01", OFF);
    expect(statSync(root()).ino).toBe(current);
    // Other Pis' roots are untouched throughout.
    expect(readdirSync(root("10.46.189.6")).sort()).toEqual(readdirSync(fs.layout.golden).sort());
  });

  it("refuses a rollback with nothing to roll back to", async () => {
    await fs.apply();
    await expect(fs.rollback("pi02", OFF)).rejects.toThrow(/no previous root/);
  });

  it("finishes a swap interrupted between its two renames instead of building again", async () => {
    await fs.apply();
    writeFileSync(path.join(root(), "marker"), "the fresh root");
    renameSync(root(), path.join(exportRoot, ".10.46.189.2.new"));
    const p = await fs.planApply();
    expect(formatActions(p.diff.actions)).toContain(`mv -T ${exportRoot}/.10.46.189.2.new ${exportRoot}/10.46.189.2\n`);
    expect(formatActions(p.diff.actions)).not.toContain(".10.46.189.2.building");
    await fs.apply();
    expect(readFileSync(path.join(root(), "marker"), "utf8")).toBe("the fresh root");
  });
});

describe("path safety", () => {
  it("rejects .., absolute paths where a name is expected, and unnormalised paths", () => {
    expect(() => checkAbsolute("/export/../etc", "export root")).toThrow(PathError);
    expect(() => checkAbsolute("export", "export root")).toThrow(/must be an absolute path/);
    expect(() => checkRelative("../../etc/passwd", "file")).toThrow(/must not contain "\.\."/);
    expect(() => checkRelative("/etc/passwd", "file")).toThrow(/must be a relative path/);
    expect(() => checkName("a/b", "name")).toThrow(/single file name/);
    expect(() => checkName("..", "name")).toThrow(/single file name/);
    const p = seedPlan();
    p.fileserver.exportRoot = "/export/../etc";
    expect(() => createLayout(p, t.dir)).toThrow(/\/export\/\.\.\/etc: fileserver\.exportRoot must not contain "\.\."/);
  });

  it("refuses a symlink placed where a root should be, and never writes through it", async () => {
    const outside = path.join(t.dir, "outside");
    mkdirSync(outside);
    mkdirSync(exportRoot, { recursive: true });
    symlinkSync(outside, root());
    const p = await fs.planApply();
    expect(p.diff.drift).toContainEqual({ kind: "root", subject: "pi01", detail: `${root()} is a symlink (to ${outside}); refused, left for a person` });
    expect(p.diff.actions.some((a) => a.subject === "pi01")).toBe(false);
    await fs.apply();
    await expect(fs.rebuild("pi01", OFF)).rejects.toThrow(/refuses to follow a symlinked root/);
    await expect(fs.rollback("pi01", { force: true })).rejects.toThrow();
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(root()).isSymbolicLink()).toBe(true);
  });

  it("refuses a step whose path escapes its base, lexically or through a symlink", async () => {
    const ctx = { runner: new ExecRunner() };
    const base = path.join(t.dir, "base");
    const outside = path.join(t.dir, "outside");
    mkdirSync(base);
    mkdirSync(outside);
    await expect(executeStep({ op: "write", path: path.join(base, "../outside/x"), content: "x", within: base }, ctx)).rejects.toThrow(/outside/);
    symlinkSync(outside, path.join(base, "var"));
    await expect(executeStep({ op: "write", path: path.join(base, "var/x"), content: "x", within: base }, ctx)).rejects.toThrow(/resolves to .*outside .*a symlink on the way points out/);
    await expect(executeStep({ op: "mkdir", path: path.join(base, "var/www"), within: base, parents: true }, ctx)).rejects.toThrow(PathError);
    await expect(executeStep({ op: "copy", from: fs.layout.golden, to: path.join(base, "var/copy"), within: base }, ctx)).rejects.toThrow(PathError);
    expect(readdirSync(outside)).toEqual([]);
  });

  it("refuses an export root that leads out of the sandbox", async () => {
    const elsewhere = tempDir("elsewhere");
    try {
      renameSync(exportRoot, `${exportRoot}.orig`);
      symlinkSync(elsewhere.dir, exportRoot);
      const p = await fs.planApply();
      expect(p.diff.drift).toContainEqual(expect.objectContaining({ kind: "root", subject: exportRoot, detail: expect.stringMatching(/outside the root prefix/) }));
      expect(p.diff.actions.some((a) => a.kind === "root")).toBe(false);
      await fs.apply();
      await expect(fs.rebuild("pi01", OFF)).rejects.toThrow(/outside the root prefix/);
      expect(readdirSync(elsewhere.dir)).toEqual([]);
    } finally {
      elsewhere.cleanup();
    }
  });
});

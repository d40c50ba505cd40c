import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashTree, initSandbox, openFileserver, type Fileserver } from "@pifleet/fileserver-agent";
import { executeStep } from "../src/reconcile/steps.js";
import { ExecRunner } from "@pifleet/fileserver-agent";
import { seedPlan, tempDir } from "./helpers.js";

let t: ReturnType<typeof tempDir>;
let fs: Fileserver;

function site(name: string, text: string): string {
  const dir = path.join(t.dir, "sites", name);
  mkdirSync(path.join(dir, "img"), { recursive: true });
  writeFileSync(path.join(dir, "index.html"), text);
  // Some weight, so a copy takes a moment (the seed's 3 MB image upload, scaled down).
  writeFileSync(path.join(dir, "img/photo.jpg"), Buffer.alloc(512 * 1024, text));
  return dir;
}

const roots = () => fs.plan.pis.map((p) => path.join(fs.layout.exportRoot, p.piAddress));
const html = (root: string) => path.join(root, "var/www/html");

beforeEach(async () => {
  t = tempDir("content");
  initSandbox(t.dir, seedPlan());
  fs = await openFileserver({ plan: seedPlan(), prefix: t.dir, live: "emulate" });
  await fs.apply();
});
afterEach(() => t.cleanup());

describe("site content sync to 8 roots", () => {
  it("puts the version in every root, switches html to it and keeps the previous one until the next sync", async () => {
    const v1 = site("v1", "<h1>v1</h1>");
    const out1 = await fs.syncContent(v1);
    expect(out1.result?.ok).toBe(true);
    const version1 = await hashTree(v1);
    expect(out1.version).toBe(version1);
    for (const r of roots()) {
      expect(readlinkSync(html(r))).toBe(`.pifleet-content-${version1}`);
      expect(readFileSync(path.join(html(r), "index.html"), "utf8")).toBe("<h1>v1</h1>");
      // The golden image's own page is kept aside, not deleted.
      expect(readFileSync(path.join(r, "var/www/.pifleet-original-html/index.html"), "utf8")).toMatch(/golden image/);
    }
    const v2 = site("v2", "<h1>v2</h1>");
    const version2 = (await fs.syncContent(v2)).version!;
    const v3 = site("v3", "<h1>v3</h1>");
    const version3 = (await fs.syncContent(v3)).version!;
    for (const r of roots()) {
      expect(readFileSync(path.join(html(r), "index.html"), "utf8")).toBe("<h1>v3</h1>");
      expect(readdirSync(path.join(r, "var/www")).filter((n) => n.startsWith(".pifleet-content-")).sort()).toEqual(
        [`.pifleet-content-${version2}`, `.pifleet-content-${version3}`].sort(),
      );
    }
    expect(readdirSync(fs.layout.contentStore).sort()).toEqual([version2, version3, "current", "previous"].sort());
    // The report carries the version each root serves.
    expect((await fs.planApply()).observed.roots.map((r) => r.content.version)).toEqual(Array(8).fill(version3));
  });

  it("a second sync of the same tree does nothing", async () => {
    const v1 = site("v1", "<h1>v1</h1>");
    await fs.syncContent(v1);
    const before = roots().map((r) => lstatSync(html(r), { bigint: true }).ctimeNs);
    const copy = path.join(t.dir, "sites/v1-again");
    cpSync(v1, copy, { recursive: true });
    const again = await fs.syncContent(copy);
    expect(again.diff.actions).toEqual([]);
    expect(again.result).toBeUndefined();
    expect(roots().map((r) => lstatSync(html(r), { bigint: true }).ctimeNs)).toEqual(before);
  });

  it("switches with one rename: a reader during the sync sees the old site or the new one, never a gap or a mix", async () => {
    await fs.syncContent(site("old", "OLD"));
    const target = roots()[7];
    // A separate thread reads the page in a tight loop, as Apache would, while the main thread syncs.
    const worker = new Worker(
      `const { readFileSync, readlinkSync } = require("node:fs");
       const { parentPort, workerData } = require("node:worker_threads");
       const seen = {}; const errors = []; let stop = false;
       parentPort.on("message", () => { stop = true; });
       const loop = () => {
         for (let i = 0; i < 200; i++) {
           try {
             // Either read failing (ENOENT, ENOTDIR) would be the gap a non-atomic switch leaves.
             readlinkSync(workerData.html);
             const text = readFileSync(workerData.html + "/index.html", "utf8");
             seen[text] = (seen[text] || 0) + 1;
           } catch (e) { errors.push(e.code || String(e)); }
         }
         if (stop) parentPort.postMessage({ seen, errors }); else setImmediate(loop);
       };
       parentPort.postMessage("started"); loop();`,
      { eval: true, workerData: { html: html(target) } },
    );
    await new Promise((resolve) => worker.once("message", resolve));
    const done = new Promise<{ seen: Record<string, number>; errors: string[] }>((resolve) => worker.on("message", resolve));
    const newSite = site("new", "NEW");
    const out = await fs.syncContent(newSite);
    await new Promise((r) => setTimeout(r, 50));
    worker.postMessage("stop");
    const { seen, errors } = await done;
    await worker.terminate();
    expect(errors).toEqual([]);
    expect(Object.keys(seen).sort()).toEqual(["NEW", "OLD"]);
    // Every root was staged before any switched: the switches come last, together.
    const kinds = out.diff.actions.map((a) => a.why.split(" ")[0]);
    expect(kinds).toEqual(["keep", ...Array(8).fill("stage"), ...Array(8).fill("switch")]);
    // And in each root the only step that touches html is one rename of a fresh symlink onto it.
    for (const a of out.diff.actions.filter((x) => x.why.startsWith("switch"))) {
      const h = html(path.join(fs.layout.exportRoot, fs.plan.pis.find((p) => p.name === a.subject)!.piAddress));
      const touching = a.steps.filter((s) => ("path" in s && s.path === h) || ("to" in s && s.to === h) || ("from" in s && s.from === h));
      expect(touching).toEqual([{ op: "rename", from: path.join(path.dirname(h), ".html.pifleet-tmp"), to: h, within: path.dirname(path.dirname(path.dirname(h))) }]);
    }
  });

  it("refuses a root whose var/www leads outside it, and still serves the others", async () => {
    const outside = path.join(t.dir, "host-etc");
    mkdirSync(outside);
    writeFileSync(path.join(outside, "shadow"), "secret");
    const victim = roots()[2];
    // A Pi's root user can plant this: absolute on the Pi, but on the fileserver it points out of the root.
    const rmVar = path.join(victim, "var");
    rmSync(rmVar, { recursive: true });
    mkdirSync(rmVar);
    symlinkSync(outside, path.join(rmVar, "www"));
    const out = await fs.syncContent(site("v1", "v1"));
    expect(out.result?.ok).toBe(true);
    expect(out.skipped.join("\n")).toMatch(new RegExp(`pi03: .*var/www.*outside ${victim.replace(/\./g, "\\.")}.*refused`));
    expect(readdirSync(outside)).toEqual(["shadow"]);
    for (const r of roots().filter((r) => r !== victim)) expect(readFileSync(path.join(html(r), "index.html"), "utf8")).toBe("v1");
  });
});

describe("content versions", () => {
  it("hash names, modes, contents and symlink targets — not where the tree lives", async () => {
    const a = site("a", "same");
    const b = path.join(t.dir, "elsewhere/b");
    cpSync(a, b, { recursive: true });
    expect(await hashTree(a)).toBe(await hashTree(b));
    chmodSync(path.join(b, "index.html"), 0o755);
    const modeChanged = await hashTree(b);
    expect(modeChanged).not.toBe(await hashTree(a));
    symlinkSync("index.html", path.join(b, "home.html"));
    expect(await hashTree(b)).not.toBe(modeChanged);
    expect(await hashTree(b)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("a copy that does not hash to the version is refused (the source changed mid-copy)", async () => {
    const a = site("a", "one");
    const v = await hashTree(a);
    writeFileSync(path.join(a, "index.html"), "two");
    await expect(executeStep({ op: "verify", path: a, version: v }, { runner: new ExecRunner() })).rejects.toThrow(/the source changed while it was copied/);
    expect(existsSync(a)).toBe(true);
  });
});

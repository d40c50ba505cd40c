import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileserverView, goalMet, loadFleet, plan, type BenchRow, type FileserverView } from "@pifleet/core";
import { Fileserver } from "../fileserver.js";
import { initSandbox } from "../sandbox.js";
import { ExecRunner } from "../runner.js";

const MB = 1024 * 1024;
const OFF = { network: "off", nfs: "off", notes: [] } as const;
const examples = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../../../examples");

/**
 * A golden image of `totalMb`: a Debian-like mass of small files (4–16 KiB, in 200 directories)
 * and a few large ones (libraries, locale archives…). Data is varied so no layer can cheat by
 * compressing or skipping zeros.
 */
function makeGolden(dir: string, totalMb: number): { files: number; bytes: number } {
  const block = Buffer.alloc(MB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  let bytes = 0;
  let files = 0;
  const smallBudget = Math.floor(totalMb * 0.2) * MB;
  for (let d = 0; bytes < smallBudget; d++) {
    const sub = path.join(dir, "usr/share", `pkg${d % 200}`);
    mkdirSync(sub, { recursive: true });
    const size = 4096 + ((d * 7919) % 12288);
    block.writeUInt32LE(d, 0);
    writeFileSync(path.join(sub, `f${d}`), block.subarray(0, size));
    bytes += size;
    files++;
  }
  const large = 8;
  const each = Math.floor((totalMb * MB - bytes) / large);
  mkdirSync(path.join(dir, "usr/lib"), { recursive: true });
  for (let i = 0; i < large; i++) {
    const file = path.join(dir, "usr/lib", `big${i}.so`);
    writeFileSync(file, "");
    for (let off = 0; off < each; off += MB) {
      block.writeUInt32LE(i * 100_000 + off / MB, 8);
      writeFileSync(file, block.subarray(0, Math.min(MB, each - off)), { flag: "a" });
    }
    bytes += each;
    files++;
  }
  mkdirSync(path.join(dir, "var/www/html"), { recursive: true });
  writeFileSync(path.join(dir, "var/www/html/index.html"), "golden\n");
  return { files: files + 1, bytes };
}

function fsTypeOf(dir: string): string {
  try {
    return execFileSync("findmnt", ["-no", "FSTYPE", "-T", dir]).toString().trim();
  } catch {
    return "local filesystem";
  }
}

function usedBytes(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

async function timeRebuild(prefix: string, p: FileserverView): Promise<{ ms: number; extraBytes: number }> {
  const fs = new Fileserver({ plan: p, runner: new ExecRunner(), live: { ...OFF, notes: [] }, prefix });
  await fs.apply();
  execFileSync("sync");
  const used = usedBytes(prefix);
  const t0 = performance.now();
  const out = await fs.rebuild(p.pis[0].name, { piPowered: false });
  if (!out.result?.ok) throw new Error(`rebuild failed: ${out.result?.failed?.error}`);
  // Timed until the new root is on disk, not just in the page cache.
  execFileSync("sync");
  return { ms: performance.now() - t0, extraBytes: usedBytes(prefix) - used };
}

function onePi(): FileserverView {
  const view = fileserverView(plan(loadFleet(path.join(examples, "seed-8.yaml"))));
  return { ...view, pis: view.pis.slice(0, 1), fileserver: { ...view.fileserver, interfaces: view.fileserver.interfaces.slice(0, 1) } };
}

/** A loop-mounted XFS with reflink (or btrfs), or why there cannot be one here. */
function reflinkMount(work: string): { dir: string; fs: string; cleanup: () => void } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: "needs root to loop-mount a filesystem" };
  const img = path.join(work, "reflink.img");
  const dir = path.join(work, "mnt");
  mkdirSync(dir);
  const reasons: string[] = [];
  for (const [fsName, mkfs, args] of [
    ["xfs", "mkfs.xfs", ["-q", "-m", "reflink=1", img]],
    ["btrfs", "mkfs.btrfs", ["-q", img]],
  ] as const) {
    try {
      execFileSync("truncate", ["-s", "3G", img]);
      execFileSync(mkfs, [...args], { stdio: "pipe" });
      execFileSync("mount", ["-o", "loop", img, dir], { stdio: "pipe" });
      return {
        dir,
        fs: fsName,
        cleanup: () => {
          execFileSync("umount", [dir]);
          rmSync(img, { force: true });
        },
      };
    } catch (err) {
      reasons.push(`${fsName}: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split("\n")[0]}`);
      rmSync(img, { force: true });
    }
  }
  return { reason: reasons.join("; ") };
}

async function contentSync(prefix: string, mb: number, mode: "copy" | "shared"): Promise<{ ms: number; roots: number }> {
  const fleet = loadFleet(path.join(examples, "shelf-96.yaml"));
  for (const f of fleet.fileservers) f.content = mode;
  const p = fileserverView(plan(fleet));
  initSandbox(prefix, p);
  const fs = new Fileserver({ plan: p, runner: new ExecRunner(), live: { ...OFF, notes: [] }, prefix });
  await fs.apply();
  // The seed's case: a WordPress upload of a few images, one big.
  const site = path.join(prefix, "upload");
  mkdirSync(path.join(site, "wp-content/uploads"), { recursive: true });
  writeFileSync(path.join(site, "index.php"), "<?php echo 'hello';\n");
  const img = Buffer.alloc(mb * MB);
  for (let i = 0; i < img.length; i += 4) img.writeUInt32LE((i * 40503) >>> 0, i);
  writeFileSync(path.join(site, "wp-content/uploads/photo.jpg"), img);
  execFileSync("sync");
  const t0 = performance.now();
  const out = await fs.syncContent(site);
  execFileSync("sync");
  const ms = performance.now() - t0;
  if (!out.result?.ok) throw new Error(`sync failed: ${out.result?.failed?.error}`);
  return { ms, roots: p.pis.length };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const work = mkdtempSync(path.join(tmpdir(), "pifleet-rootfs-bench-"));
  const sizeMb = Number(process.env.PIFLEET_BENCH_GOLDEN_MB ?? 1024);
  try {
    // Copy: the golden image and the roots on the machine's own filesystem.
    const copyPrefix = path.join(work, "copy");
    const p = onePi();
    initSandbox(copyPrefix, p);
    const g = makeGolden(path.join(copyPrefix, "srv/pifleet/golden"), sizeMb);
    const fsType = fsTypeOf(work);
    const copy = await timeRebuild(copyPrefix, p);
    rows.push({
      name: `rebuild a root from a ${sizeMb} MiB golden image, copy (${fsType})`,
      value: copy.ms / 1000,
      unit: "s",
      goal: goalMet(`≤ ${(2 * sizeMb) / 1024} s`, copy.ms <= (2000 * sizeMb) / 1024),
      note: `${g.files} files; ${((g.bytes / MB / copy.ms) * 1000).toFixed(0)} MiB/s; ${(copy.extraBytes / MB).toFixed(0)} MiB more disk used`,
    });
    rmSync(copyPrefix, { recursive: true, force: true });

    const mount = reflinkMount(work);
    if ("reason" in mount) {
      rows.push({ name: `rebuild a root from a ${sizeMb} MiB golden image, reflink`, value: "unavailable", note: mount.reason });
    } else {
      try {
        const prefix = path.join(mount.dir, "sandbox");
        initSandbox(prefix, p);
        makeGolden(path.join(prefix, "srv/pifleet/golden"), sizeMb);
        const r = await timeRebuild(prefix, p);
        // Same filesystem, reflink off: separates the technique from the (slower, loop-backed) filesystem.
        const used = usedBytes(prefix);
        const t0 = performance.now();
        execFileSync("cp", ["--reflink=never", "-a", "-T", path.join(prefix, "srv/pifleet/golden"), path.join(prefix, "plain-copy")]);
        execFileSync("sync");
        const plainMs = performance.now() - t0;
        const plainBytes = usedBytes(prefix) - used;
        rows.push({
          name: `rebuild a root from a ${sizeMb} MiB golden image, reflink (loop ${mount.fs})`,
          value: r.ms / 1000,
          unit: "s",
          goal: goalMet(`≤ ${sizeMb / 1024} s`, r.ms <= (1000 * sizeMb) / 1024),
          note: `${(plainMs / r.ms).toFixed(1)}× faster than a copy on the same filesystem; ${(r.extraBytes / MB).toFixed(0)} MiB more disk used`,
        });
        rows.push({
          name: `copy the same image on loop ${mount.fs}, --reflink=never`,
          value: plainMs / 1000,
          unit: "s",
          note: `${(plainBytes / MB).toFixed(0)} MiB more disk used`,
        });
        rmSync(prefix, { recursive: true, force: true });
      } finally {
        mount.cleanup();
      }
    }

    const mb = 3;
    const c = await contentSync(path.join(work, "content"), mb, "copy");
    rows.push({
      name: `sync-content ${mb} MiB to ${c.roots} roots, content: copy (${fsType})`,
      value: c.ms / 1000,
      unit: "s",
      goal: goalMet("≤ 1 s", c.ms <= 1000),
      note: `${((mb * c.roots) / (c.ms / 1000)).toFixed(0)} MiB/s written; the seed's 100 Mbit/s link would need ${((mb * MB * 8 * c.roots) / 100e6).toFixed(0)} s`,
    });
    const s = await contentSync(path.join(work, "content-shared"), mb, "shared");
    rows.push({
      name: `sync-content ${mb} MiB for ${s.roots} Pis, content: shared (${fsType})`,
      value: s.ms / 1000,
      unit: "s",
      goal: goalMet("≤ 1 s", s.ms <= 1000),
      note: `one copy into the read-only export, ${(c.ms / s.ms).toFixed(0)}× less than a copy per root; every Pi serves it once its NFS client revalidates (actimeo=2: ≤ 2 s more)`,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

import { lstat, readdir, realpath } from "node:fs/promises";
import path from "node:path";
import { netbootedPis, tftpFallbackRoot, type FileserverView, type PiPlan } from "@pifleet/core";
import type { Layout } from "../layout.js";
import { rootPaths } from "../layout.js";
import { readOrNull } from "../read-or-null.js";
import type { CommandRunner } from "../runner.js";
import { isInside, PathError } from "../safety.js";
import type { DnsmasqOptions } from "./options.js";

/** A file of the Pi's own boot folder that its TFTP folder serves. */
export interface BootFile {
  /** Name in the TFTP folder (`overlays/x.dtbo` for an overlay). */
  name: string;
  /** Host path to copy from, in the Pi's root (a symlink already resolved, and checked inside the root). */
  from: string;
  size: number;
  mtimeMs: number;
}

export interface PresentFile {
  size: number;
  mtimeMs: number;
  symlink: boolean;
  /** Read only for the small files pifleet writes itself. */
  text?: string;
}

export interface TftpPiObservation {
  pi: PiPlan;
  /** Host paths of the Pi's TFTP folder and its VLAN's TFTP root. */
  dir: string;
  interfaceRoot: string;
  /** The Pi's real root: the base every boot file must resolve inside. */
  rootReal?: string;
  /** The boot folder found in the root (`<root>/boot/firmware` or `<root>/boot`). */
  bootDir?: string;
  bootFiles: BootFile[];
  /** Why the Pi's boot files cannot be taken (no root yet, a symlink out of it…), each naming the path. */
  problems: string[];
  dirExists: boolean;
  interfaceRootExists: boolean;
  /** What the folder holds now, by name (files directly in it, and in `overlays/`). */
  present: Map<string, PresentFile>;
  /** What the VLAN's root holds besides the Pi's folder (`bootcode.bin` for a Pi 3). */
  rootPresent: Map<string, PresentFile>;
}

export interface NetbootObservation {
  options: DnsmasqOptions;
  /** Host paths (below the root prefix). */
  confFile: string;
  hostsFile: string;
  tftpRoot: string;
  confText: string | null;
  hostsText: string | null;
  tftpRootExists: boolean;
  fallbackExists: boolean;
  dnsmasqInstalled: boolean;
  pis: TftpPiObservation[];
  /** Folders directly under the TFTP root that no netbooted Pi's VLAN uses any more. */
  staleRoots: string[];
}

/** Boot files a Pi's firmware or a PXE kernel line asks for; the root's own config.txt/cmdline.txt are not among them. */
const BOOT_FILE = /^(bootcode\.bin|start[a-z0-9_]*\.elf|fixup[a-z0-9_]*\.dat|kernel[a-z0-9_]*\.img|vmlinuz[A-Za-z0-9._+-]*|initrd\.img[A-Za-z0-9._+-]*|initramfs[A-Za-z0-9._+-]*|[A-Za-z0-9._+-]+\.dtb)$/;
const OVERLAY = /^[A-Za-z0-9._+-]+\.dtbo$/;

export function under(layout: Layout, p: string): string {
  return layout.prefix ? path.join(layout.prefix, p) : p;
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw err;
  }
}

async function listPresent(dir: string, withText: Set<string>): Promise<Map<string, PresentFile>> {
  const present = new Map<string, PresentFile>();
  const st = await lstatOrNull(dir);
  if (!st || !st.isDirectory()) return present;
  const walk = async (d: string, prefix: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const name = `${prefix}${e.name}`;
      if (e.isDirectory()) {
        if (prefix === "" && e.name === "overlays") await walk(path.join(d, e.name), "overlays/");
        else if (prefix === "") present.set(`${name}/`, { size: 0, mtimeMs: 0, symlink: false });
        continue;
      }
      const s = await lstat(path.join(d, e.name));
      const f: PresentFile = { size: s.size, mtimeMs: s.mtimeMs, symlink: s.isSymbolicLink() };
      if (withText.has(name) && s.isFile()) f.text = (await readOrNull(path.join(d, e.name))) ?? undefined;
      present.set(name, f);
    }
  };
  await walk(dir, "");
  return present;
}

/**
 * A boot file in the Pi's root, resolved. The Pi's root user controls everything there, so a
 * symlink is followed only to see where it lands: outside the root it is refused, naming it.
 */
async function bootFile(rootReal: string, dir: string, entry: string, name: string): Promise<BootFile | string> {
  const p = path.join(dir, entry);
  let real: string;
  try {
    real = await realpath(p);
  } catch (err) {
    return `${p}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "a dangling symlink" : (err as Error).message}; not served`;
  }
  if (!isInside(rootReal, real)) return new PathError(p, `resolves to ${real}, outside the Pi's root ${rootReal}; refused`).message;
  const st = await lstat(real);
  if (!st.isFile()) return `${p}: not a regular file; not served`;
  return { name, from: real, size: st.size, mtimeMs: st.mtimeMs };
}

async function observeBoot(layout: Layout, pi: PiPlan, obs: TftpPiObservation): Promise<void> {
  const root = rootPaths(layout, pi).root;
  const rootSt = await lstatOrNull(root);
  if (!rootSt) return void obs.problems.push(`${root}: the Pi's root does not exist yet, so there is no kernel to serve`);
  if (rootSt.isSymbolicLink()) return void obs.problems.push(`${root}: the Pi's root is a symlink; refused`);
  const rootReal = await realpath(root);
  obs.rootReal = rootReal;
  for (const candidate of pi.netboot!.bootFrom) {
    const dir = under(layout, candidate);
    const st = await lstatOrNull(dir);
    if (!st) continue;
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      obs.problems.push(`${dir}: a dangling symlink; refused`);
      continue;
    }
    if (!isInside(rootReal, real)) {
      obs.problems.push(new PathError(dir, `resolves to ${real}, outside the Pi's root ${rootReal}; refused`).message);
      continue;
    }
    if (!(await lstat(real)).isDirectory()) continue;
    obs.bootDir = real;
    for (const e of await readdir(real, { withFileTypes: true })) {
      if (e.name === "overlays" && e.isDirectory()) {
        for (const o of await readdir(path.join(real, "overlays"))) {
          if (!OVERLAY.test(o)) continue;
          const f = await bootFile(rootReal, path.join(real, "overlays"), o, `overlays/${o}`);
          if (typeof f === "string") obs.problems.push(f);
          else obs.bootFiles.push(f);
        }
        continue;
      }
      if (!BOOT_FILE.test(e.name)) continue;
      const f = await bootFile(rootReal, real, e.name, e.name);
      if (typeof f === "string") obs.problems.push(f);
      else obs.bootFiles.push(f);
    }
    obs.bootFiles.sort((a, b) => a.name.localeCompare(b.name));
    return;
  }
  obs.problems.push(`${pi.netboot!.bootFrom.map((b) => under(layout, b)).join(" and ")}: no boot folder in the Pi's root, so there is no kernel to serve`);
}

/** Reads dnsmasq's two files and every netbooted Pi's TFTP folder and boot source. Read-only. */
export async function observeNetboot(plan: FileserverView, layout: Layout, runner: CommandRunner, options: DnsmasqOptions): Promise<NetbootObservation> {
  const confFile = under(layout, options.confFile);
  const hostsFile = under(layout, options.hostsFile);
  const tftpRoot = under(layout, plan.fileserver.tftpRoot);
  const version = await runner.run(options.binary, ["--version"], { timeoutMs: 5000 });
  const pis: TftpPiObservation[] = [];
  for (const pi of netbootedPis(plan)) {
    const nb = pi.netboot!;
    const o: TftpPiObservation = {
      pi,
      dir: under(layout, nb.tftpDir),
      interfaceRoot: under(layout, nb.tftpInterfaceRoot),
      bootFiles: [],
      problems: [],
      dirExists: (await lstatOrNull(under(layout, nb.tftpDir)))?.isDirectory() === true,
      interfaceRootExists: (await lstatOrNull(under(layout, nb.tftpInterfaceRoot)))?.isDirectory() === true,
      present: await listPresent(under(layout, nb.tftpDir), new Set(["config.txt", "cmdline.txt", "boot.ipxe"])),
      rootPresent: await listPresent(under(layout, nb.tftpInterfaceRoot), new Set()),
    };
    await observeBoot(layout, pi, o);
    pis.push(o);
  }
  const wanted = new Set([".none", ...pis.map((p) => path.basename(p.interfaceRoot))]);
  const rootSt = await lstatOrNull(tftpRoot);
  const staleRoots = rootSt?.isDirectory() ? (await readdir(tftpRoot)).filter((n) => !wanted.has(n)).map((n) => path.join(tftpRoot, n)) : [];
  return {
    options,
    confFile,
    hostsFile,
    tftpRoot,
    confText: await readOrNull(confFile),
    hostsText: await readOrNull(hostsFile),
    tftpRootExists: rootSt?.isDirectory() === true,
    fallbackExists: (await lstatOrNull(under(layout, tftpFallbackRoot(plan))))?.isDirectory() === true,
    dnsmasqInstalled: version.code !== 127,
    pis,
    staleRoots,
  };
}

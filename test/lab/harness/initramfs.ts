import { copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { cached, fileHash, repoRoot } from "./cache.js";
import { newcArchive, type CpioFile } from "./cpio.js";
import { run } from "./exec.js";
import { moduleClosure, type Kernel } from "./kernel.js";

/**
 * Modules of the lab initramfs. Debian builds even virtio and ext4 as modules, so the initramfs
 * carries what a tiny Pi VM uses (network, VLANs, NFS client and server) and what it takes to
 * mount a root disk and hand over to systemd.
 */
export const INITRAMFS_MODULES = [
  "virtio_pci",
  "virtio_net",
  "virtio_blk",
  "ext4",
  "8021q",
  "bridge",
  "nfsv3",
  "nfsv4",
  "nfsd",
  "af_packet",
] as const;

/**
 * Host programs copied in (same path) with their shared libraries. busybox's `ip` applet silently
 * ignores VLAN-filtering options and has no `bridge vlan`: iproute2's are the real ones, and
 * scripts call them by full path, since busybox's shell prefers its own applets.
 */
const PROGRAMS = ["/sbin/ip", "/sbin/bridge"] as const;

export const INIT_SCRIPT = path.join(repoRoot, "test/lab/guest/init.sh");

export interface Initramfs {
  /** gzip-compressed newc archive. */
  path: string;
  modules: string[];
}

/** What differs between the initramfs of one kernel architecture and another's. */
export interface InitramfsVariant {
  /** Cache name: one per architecture, so building one never prunes another's. */
  name: string;
  /** A static busybox for the kernel's CPU. */
  busybox: string;
  /** How this host runs that busybox (to list its applets): e.g. ["qemu-aarch64-static"] for a foreign one. */
  runner: string[];
  /** Host programs copied in with their libraries (only of the host's own CPU). */
  programs: readonly string[];
  modules: readonly string[];
}

/** The x86-64 lab's: the host's busybox and iproute2, network and NFS modules. */
const HOST_VARIANT: InitramfsVariant = { name: "initramfs", busybox: "/bin/busybox", runner: [], programs: PROGRAMS, modules: INITRAMFS_MODULES };

/**
 * A busybox-static + iproute2 initramfs for the given kernel. Its /init either runs a test's
 * `/lab/run.sh` (appended with {@link initrdWithFiles}) and powers off, or — with `lab.root=` on
 * the cmdline — mounts that disk and starts its systemd.
 */
export async function labInitramfs(kernel: Kernel, variant: InitramfsVariant = HOST_VARIANT): Promise<Initramfs> {
  const { busybox, programs } = variant;
  const modules = await moduleClosure(kernel, variant.modules);
  const recipe = {
    kernel: `${kernel.packageName}=${kernel.packageVersion}`,
    modules,
    busybox: fileHash(busybox),
    programs: Object.fromEntries(programs.map((p) => [p, fileHash(p)])),
    init: fileHash(INIT_SCRIPT),
  };
  const dir = await cached(variant.name, recipe, async (out) => {
    const stage = path.join(out, "stage");
    for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "mnt", "newroot", "lab", "etc", "root"]) {
      mkdirSync(path.join(stage, d), { recursive: true });
    }
    copyFileSync(busybox, path.join(stage, "bin/busybox"));
    for (const program of programs) {
      copyFileSync(realpathSync(program), path.join(stage, program));
      await copyLibraries(program, stage);
    }
    const [cmd, ...pre] = [...variant.runner, busybox];
    const applets = (await run(cmd, [...pre, "--list-full"])).stdout.split("\n").filter(Boolean);
    for (const applet of applets) {
      const target = path.join(stage, applet);
      if (existsSync(target)) continue;
      mkdirSync(path.dirname(target), { recursive: true });
      symlinkSync("/bin/busybox", target);
    }
    const modDir = path.join(stage, "lib/modules", kernel.release);
    for (const rel of modules) {
      mkdirSync(path.dirname(path.join(modDir, rel)), { recursive: true });
      copyFileSync(path.join(kernel.modulesDir, rel), path.join(modDir, rel));
    }
    for (const f of ["modules.builtin", "modules.builtin.modinfo", "modules.order"]) {
      if (existsSync(path.join(kernel.modulesDir, f))) copyFileSync(path.join(kernel.modulesDir, f), path.join(modDir, f));
    }
    await run("depmod", ["-b", stage, kernel.release]);
    copyFileSync(INIT_SCRIPT, path.join(stage, "init"));
    await run("chmod", ["0755", path.join(stage, "init")]);
    writeFileSync(path.join(stage, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    writeFileSync(path.join(stage, "etc/group"), "root:x:0:\n");
    await run("sh", ["-c", "find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > ../initramfs.cpio.gz"], { cwd: stage });
    await run("rm", ["-rf", stage]);
  });
  return { path: path.join(dir, "initramfs.cpio.gz"), modules };
}

/** Copies the shared libraries a dynamically linked program needs (as `ldd` lists them) into `stage`. */
async function copyLibraries(program: string, stage: string): Promise<void> {
  const { stdout } = await run("ldd", [program]);
  for (const line of stdout.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const lib = m[1];
    const dest = path.join(stage, lib);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(realpathSync(lib), dest);
  }
}

/**
 * The cached initramfs with a test's files appended (e.g. `lab/run.sh`), written to `out`.
 * Nothing is rebuilt: the kernel unpacks the second archive over the first.
 */
export function initrdWithFiles(base: Initramfs, files: Record<string, CpioFile | string>, out: string): string {
  const compressed = readFileSync(base.path);
  // The kernel reads a cpio header only at a 4-byte boundary, skipping zeros up to it.
  const padding = Buffer.alloc((4 - (compressed.length % 4)) % 4);
  writeFileSync(out, Buffer.concat([compressed, padding, newcArchive(files)]));
  return out;
}

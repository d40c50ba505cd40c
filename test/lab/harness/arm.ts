import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { debianSources, hostCodename } from "./apt-sources.js";
import { foreignBinaries } from "./binfmt.js";
import { cached, repoRoot } from "./cache.js";
import { ext4Image } from "./disk.js";
import { run } from "./exec.js";
import { labInitramfs, type Initramfs } from "./initramfs.js";
import { resolveDebianKernel, type Kernel } from "./kernel.js";
import { stageModules } from "./rootfs.js";

/**
 * The lab's ARM parts: Debian's arm64 kernel, an initramfs for it, an arm64 Debian root with
 * systemd, and Debian user lands of any architecture (a Pi's Node 18, run through qemu-user).
 * Everything comes from the machine's own Debian apt sources through mmdebstrap, which fetches
 * foreign-architecture packages by itself (the host's dpkg needs no foreign architecture).
 */

export interface Arm64Kernel extends Kernel {
  /** busybox-static for arm64, from the same download. */
  busybox: string;
}

/**
 * Debian's arm64 kernel: the package of the same ABI and version as the amd64 one the x86 lab
 * boots (both are built from one linux source upload), with busybox-static, unpacked by
 * `mmdebstrap --variant=extract` (no maintainer scripts: nothing to emulate). Cached.
 */
export async function debianKernelArm64(): Promise<Arm64Kernel> {
  const amd64 = await resolveDebianKernel();
  if (!amd64.packageName.endsWith("-amd64")) throw new Error(`lab: unexpected kernel package name ${amd64.packageName}`);
  const packageName = amd64.packageName.replace(/-amd64$/, "-arm64");
  const version = amd64.version;
  const codename = hostCodename();
  const dir = await cached("kernel-arm64", { packageName, version, codename, with: ["busybox-static"], layout: 1 }, async (out) => {
    const root = path.join(out, "root");
    await run(
      "mmdebstrap",
      ["--mode=root", "--variant=extract", "--architectures=arm64", `--include=${packageName}=${version},busybox-static`, codename, root, ...(await debianSources(codename))],
      { timeoutMs: 10 * 60_000 },
    );
    // Keep the kernel, its modules and busybox; drop the dependencies apt extracted alongside.
    for (const entry of readdirSync(root)) if (!["boot", "lib", "bin"].includes(entry)) rmSync(path.join(root, entry), { recursive: true, force: true });
    for (const entry of readdirSync(path.join(root, "lib"))) if (entry !== "modules") rmSync(path.join(root, "lib", entry), { recursive: true, force: true });
    for (const entry of readdirSync(path.join(root, "bin"))) if (entry !== "busybox") rmSync(path.join(root, "bin", entry), { recursive: true, force: true });
    await run("depmod", ["-b", root, onlyRelease(root)]);
  });
  const root = path.join(dir, "root");
  const release = onlyRelease(root);
  return {
    release,
    packageName,
    packageVersion: version,
    vmlinuz: path.join(root, "boot", `vmlinuz-${release}`),
    root,
    modulesDir: path.join(root, "lib", "modules", release),
    busybox: path.join(root, "bin", "busybox"),
  };
}

function onlyRelease(root: string): string {
  const releases = readdirSync(path.join(root, "lib", "modules"));
  if (releases.length !== 1) throw new Error(`lab: expected one kernel release in ${root}, found ${releases.join(", ")}`);
  return releases[0];
}

/**
 * The lab's initramfs (same /init) for the arm64 kernel: arm64 busybox and what it takes to mount
 * a virtio root disk and start its systemd. The init script's other mode (tiny VMs) needs
 * iproute2, which only exists here for the host's CPU, so arm64 VMs boot root disks only.
 */
export function arm64Initramfs(kernel: Arm64Kernel): Promise<Initramfs> {
  return labInitramfs(kernel, {
    name: "initramfs-arm64",
    busybox: kernel.busybox,
    // A static binary: qemu-user runs it without any binfmt entry.
    runner: ["qemu-aarch64-static"],
    programs: [],
    modules: ["virtio_pci", "virtio_blk", "ext4"],
  });
}

const MASKED = [
  "serial-getty@ttyAMA0.service",
  "getty@tty1.service",
  "console-getty.service",
  "systemd-firstboot.service",
  "e2scrub_reap.service",
  "e2scrub_all.timer",
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.timer",
  "fstrim.timer",
];

/** eth0 on QEMU's user network (see VmOptions.hostLoopback): an address, no gateway, no DNS. */
const HOST_LOOPBACK_NETWORK = "[Match]\nName=eth0\n\n[Network]\nAddress=10.0.2.15/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n";

export interface Arm64RootRecipe {
  /** Cache name. */
  name: string;
  /** Debian packages on top of minbase, systemd, udev, dbus and kmod. */
  packages: string[];
  /** System users to create, as `pifleet install` does (useradd --system --user-group, no home, nologin). */
  systemUsers?: string[];
}

export interface Arm64Root {
  /** A tarball of the tree (mmdebstrap's output): {@link arm64Image} turns it into a disk. */
  tarball: string;
  codename: string;
}

/**
 * An arm64 Debian root booted by systemd: `mmdebstrap --architectures=arm64` with maintainer
 * scripts really run, under qemu-aarch64 through a binfmt_misc entry held for the build. With
 * the kernel's modules, systemd-networkd configuring eth0 for the host-loopback network, no
 * getty on the serial line. Cached by recipe and kernel.
 */
export async function arm64SystemdRoot(kernel: Arm64Kernel, recipe: Arm64RootRecipe): Promise<Arm64Root> {
  const codename = hostCodename();
  const packages = [...new Set(["systemd", "systemd-sysv", "udev", "kmod", "dbus", "iproute2", ...recipe.packages])].sort();
  const key = {
    codename,
    packages,
    systemUsers: recipe.systemUsers ?? [],
    kernel: `${kernel.packageName}=${kernel.packageVersion}`,
    masked: MASKED,
    network: HOST_LOOPBACK_NETWORK,
    layout: 1,
  };
  if (process.getuid?.() !== 0) throw new Error("lab: building the arm64 root filesystem needs root (mmdebstrap root mode, binfmt_misc)");
  const dir = await cached(recipe.name, key, async (out) => {
    const overlay = path.join(out, "overlay");
    await stageModules(kernel, overlay);
    mkdirSync(path.join(overlay, "etc/systemd/network"), { recursive: true });
    writeFileSync(path.join(overlay, "etc/systemd/network/10-eth0.network"), HOST_LOOPBACK_NETWORK);
    writeFileSync(path.join(overlay, "etc/fstab"), "# root is mounted by the lab initramfs\n");
    const users = (recipe.systemUsers ?? []).map(
      (u) => `--customize-hook=chroot "$1" useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin ${u}`,
    );
    const release = await foreignBinaries("aarch64");
    try {
      await run(
        "mmdebstrap",
        [
          "--mode=root",
          "--variant=minbase",
          "--architectures=arm64",
          `--include=${packages.join(",")}`,
          ...["doc", "man", "locale", "info"].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`),
          "--dpkgopt=path-include=/usr/share/doc/*/copyright",
          `--customize-hook=sync-in ${overlay} /`,
          '--customize-hook=chroot "$1" systemctl enable systemd-networkd.service',
          `--customize-hook=chroot "$1" systemctl mask ${MASKED.join(" ")}`,
          ...users,
          '--customize-hook=echo lab > "$1/etc/hostname"',
          codename,
          path.join(out, "root.tar"),
          ...(await debianSources(codename)),
        ],
        { timeoutMs: 30 * 60_000 },
      );
    } finally {
      release();
    }
    rmSync(overlay, { recursive: true, force: true });
  });
  return { tarball: path.join(dir, "root.tar"), codename };
}

/** A file to add to a root before it becomes a disk image. */
export interface RootFile {
  /** Absolute path inside the root. */
  path: string;
  data: Buffer | string;
  mode: number;
  /** A user of the root's /etc/passwd (default root). */
  owner?: string;
}

/**
 * An ext4 disk image of `root` with `files` added and `enable` units enabled by the host's own
 * `systemctl --root` (exactly what `systemctl enable` on the machine would link). Written to
 * `image` (a scratch path: it holds test-specific files, so it is not cached).
 */
export async function arm64Image(root: Arm64Root, image: string, files: RootFile[], enable: string[] = []): Promise<string> {
  const stage = `${image}.tree`;
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  try {
    await run("tar", ["-xpf", root.tarball, "-C", stage, "--numeric-owner"]);
    const ids = passwd(stage);
    for (const f of files) {
      const target = path.join(stage, f.path);
      mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
      writeFileSync(target, f.data);
      chmodSync(target, f.mode);
      const owner = ids.get(f.owner ?? "root");
      if (!owner) throw new Error(`lab: no user ${f.owner} in the root's /etc/passwd (for ${f.path})`);
      chownSync(target, owner.uid, owner.gid);
    }
    if (enable.length > 0) await run("systemctl", [`--root=${stage}`, "enable", ...enable]);
    await ext4Image(stage, image, { label: "pifleet-root", sizeMiB: 2048 });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return image;
}

function passwd(root: string): Map<string, { uid: number; gid: number }> {
  const out = new Map<string, { uid: number; gid: number }>();
  for (const line of readFileSync(path.join(root, "etc/passwd"), "utf8").split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name && uid !== undefined) out.set(name, { uid: Number(uid), gid: Number(gid) });
  }
  return out;
}

/**
 * Debian packages of any architecture unpacked into a folder (`mmdebstrap --variant=extract`:
 * the packages and their dependencies, no maintainer scripts), e.g. armhf `nodejs` and
 * `perl-base` for a Pi's own Node. Run its programs with {@link chrootRunner}. Cached.
 */
export async function debianUserland(arch: "armhf" | "arm64" | "amd64", packages: string[]): Promise<string> {
  const codename = hostCodename();
  const sorted = [...packages].sort();
  const dir = await cached(`userland-${arch}`, { arch, codename, packages: sorted, layout: 1 }, async (out) => {
    const root = path.join(out, "root");
    await run("mmdebstrap", ["--mode=root", "--variant=extract", `--architectures=${arch}`, `--include=${sorted.join(",")}`, codename, root, ...(await debianSources(codename))], {
      timeoutMs: 10 * 60_000,
    });
    // Mount points for chrootRunner; an extract has none.
    for (const d of ["proc", "dev", "tmp", "opt/pifleet", "run/pifleet"]) mkdirSync(path.join(root, d), { recursive: true });
    chmodSync(path.join(root, "tmp"), 0o1777);
  });
  return path.join(dir, "root");
}

/**
 * argv that runs `program args…` inside `root` the way the Pi would run it: a private mount
 * namespace (nothing leaks to the host, and it all goes when the process ends) with /proc and
 * /dev, `binds` (host folder → folder in the root) mounted, then chroot. Same network namespace:
 * loopback servers of the test are reachable, as is an abstract-namespace notify socket.
 * Foreign binaries need {@link foreignBinaries} registered.
 */
export function chrootRunner(root: string, binds: Record<string, string>, program: string[]): string[] {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const mounts = [
    `mount -t proc proc ${q(path.join(root, "proc"))}`,
    `mount --rbind /dev ${q(path.join(root, "dev"))}`,
    ...Object.entries(binds).map(([from, to]) => `mount --bind ${q(from)} ${q(path.join(root, to))}`),
  ];
  // No --fork: every step execs, so `program` keeps the PID that was spawned (as under systemd).
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", `${mounts.join(" && ")} && exec chroot ${q(root)} "$@"`, "chroot-runner", ...program];
}

/** The files of test/lab/guest an ARM VM test copies into its image. */
export function guestFile(name: string): string {
  return readFileSync(path.join(repoRoot, "test/lab/guest", name), "utf8");
}

import { copyFileSync, cpSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { debianSources, hostCodename } from "./apt-sources.js";
import { cached, fileHash, repoRoot } from "./cache.js";
import { ext4Image } from "./disk.js";
import { run } from "./exec.js";
import { moduleClosure, type Kernel } from "./kernel.js";

export interface RootfsRecipe {
  /** Cache name: one artifact per role (e.g. `fileserver-rootfs`). */
  name: string;
  /** Debian packages on top of minbase. */
  packages: string[];
  /** Units to enable, beyond what the packages enable. */
  enable?: string[];
  sizeMiB?: number;
}

export interface Rootfs {
  image: string;
  codename: string;
}

/** Kernel module folders a VM's systemd and programs may load from (VLANs, bridges, NFS, virtio…): not the hardware drivers. */
const MODULE_TREES = ["arch", "block", "crypto", "fs", "lib", "mm", "net", "virt", "drivers/virtio", "drivers/block", "drivers/char", "drivers/firmware"];

export const MASKED_UNITS = [
  // A console prompt would sit on the serial line the host reads; first-boot questions would block.
  "serial-getty@ttyS0.service",
  "getty@tty1.service",
  "console-getty.service",
  "systemd-firstboot.service",
  // Housekeeping that costs a TCG VM tens of seconds of its one CPU at every boot.
  "e2scrub_reap.service",
  "e2scrub_all.timer",
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.timer",
  "fstrim.timer",
];

const AUTORUN = path.join(repoRoot, "test/lab/guest/autorun.sh");
const AUTORUN_UNIT = `[Unit]
Description=pifleet lab: run the test's script from its payload disk
After=local-fs.target network.target nfs-server.service systemd-modules-load.service

[Service]
Type=exec
ExecStart=/usr/local/sbin/pifleet-lab-run
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
`;

/**
 * Copies the kernel's modules a lab guest may load (not the hardware drivers) into
 * `<root>/usr/lib/modules/<release>`, with its config and System.map in `<root>/boot`, indexed.
 */
export async function stageModules(kernel: Kernel, root: string, options: { only?: readonly string[] } = {}): Promise<void> {
  const modules = path.join(root, "usr/lib/modules", kernel.release);
  if (options.only) {
    // Just these modules and what they depend on: a small root that copies fast.
    for (const rel of await moduleClosure(kernel, options.only)) {
      mkdirSync(path.dirname(path.join(modules, rel)), { recursive: true });
      copyFileSync(path.join(kernel.modulesDir, rel), path.join(modules, rel));
    }
  } else copyModuleTrees(kernel, modules);
  for (const f of ["modules.builtin", "modules.builtin.modinfo", "modules.order"]) {
    copyFileSync(path.join(kernel.modulesDir, f), path.join(modules, f));
  }
  await run("depmod", ["-b", path.join(root, "usr"), kernel.release]);
  mkdirSync(path.join(root, "boot"), { recursive: true });
  for (const f of [`config-${kernel.release}`, `System.map-${kernel.release}`]) copyFileSync(path.join(kernel.root, "boot", f), path.join(root, "boot", f));
}

function copyModuleTrees(kernel: Kernel, modules: string): void {
  for (const tree of MODULE_TREES) {
    const from = path.join(kernel.modulesDir, "kernel", tree);
    if (statSync(from, { throwIfNoEntry: false })) cpSync(from, path.join(modules, "kernel", tree), { recursive: true });
  }
  // Loose drivers/net modules (virtio_net, veth, macvlan, …), not the NIC vendor trees.
  const netDrivers = path.join(kernel.modulesDir, "kernel/drivers/net");
  mkdirSync(path.join(modules, "kernel/drivers/net"), { recursive: true });
  for (const f of readdirSync(netDrivers).filter((f) => f.endsWith(".ko"))) {
    copyFileSync(path.join(netDrivers, f), path.join(modules, "kernel/drivers/net", f));
  }
}

/**
 * A Debian root filesystem image booted by systemd: mmdebstrap minbase + `packages`, from the
 * machine's own apt sources, with the kernel's modules, no login prompts, and a unit that runs
 * the test's script (see guest/autorun.sh). Cached by recipe, kernel and autorun script.
 */
export async function systemdRootfs(kernel: Kernel, recipe: RootfsRecipe): Promise<Rootfs> {
  const codename = hostCodename();
  const packages = [...new Set(["systemd", "systemd-sysv", "udev", "kmod", "dbus", "iproute2", ...recipe.packages])].sort();
  const key = {
    codename,
    packages,
    enable: recipe.enable ?? [],
    kernel: `${kernel.packageName}=${kernel.packageVersion}`,
    moduleTrees: MODULE_TREES,
    autorun: fileHash(AUTORUN),
    unit: AUTORUN_UNIT,
    masked: MASKED_UNITS,
    sizeMiB: recipe.sizeMiB ?? 2048,
    layout: 2,
  };
  if (process.getuid?.() !== 0) {
    throw new Error("lab: building the systemd root filesystem needs root (mmdebstrap root mode, file ownership kept by mke2fs -d)");
  }
  const dir = await cached(recipe.name, key, async (out) => {
    const overlay = path.join(out, "overlay");
    await stageModules(kernel, overlay);
    mkdirSync(path.join(overlay, "usr/local/sbin"), { recursive: true });
    copyFileSync(AUTORUN, path.join(overlay, "usr/local/sbin/pifleet-lab-run"));
    await run("chmod", ["0755", path.join(overlay, "usr/local/sbin/pifleet-lab-run")]);
    mkdirSync(path.join(overlay, "etc/systemd/system"), { recursive: true });
    writeFileSync(path.join(overlay, "etc/systemd/system/pifleet-lab.service"), AUTORUN_UNIT);
    // The initramfs mounts the root read-write; nothing to check or remount.
    writeFileSync(path.join(overlay, "etc/fstab"), "# root is mounted by the lab initramfs\n");

    const tree = path.join(out, "tree");
    const enable = ["pifleet-lab.service", ...(recipe.enable ?? [])];
    const sources = await debianSources(codename);
    await run(
      "mmdebstrap",
      [
        "--mode=root",
        "--variant=minbase",
        `--include=${packages.join(",")}`,
        ...["doc", "man", "locale", "info"].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        `--customize-hook=sync-in ${overlay} /`,
        `--customize-hook=chroot "$1" systemctl enable ${enable.join(" ")}`,
        `--customize-hook=chroot "$1" systemctl mask ${MASKED_UNITS.join(" ")}`,
        `--customize-hook=echo lab > "$1/etc/hostname"`,
        codename,
        tree,
        ...sources,
      ],
      { timeoutMs: 15 * 60_000 },
    );
    await ext4Image(tree, path.join(out, "rootfs.ext4"), { label: "pifleet-root", sizeMiB: key.sizeMiB });
    await run("rm", ["-rf", tree, overlay]);
  });
  return { image: path.join(dir, "rootfs.ext4"), codename };
}

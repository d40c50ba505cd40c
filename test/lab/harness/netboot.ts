import { mkdirSync } from "node:fs";
import path from "node:path";
import { debianSources, hostCodename } from "./apt-sources.js";
import { cached } from "./cache.js";
import { run } from "./exec.js";
import type { Kernel } from "./kernel.js";
import { stageModules } from "./rootfs.js";

/**
 * Debian's own initramfs-tools initrd for the lab kernel, built for network boot: it reads
 * `root=/dev/nfs nfsroot=… ip=…` from the kernel command line, configures the NIC, mounts the
 * root over NFS and starts its /sbin/init — what a diskless Pi's boot does with the plan's
 * cmdline. Built by mkinitramfs in a throw-away mmdebstrap chroot holding the kernel's modules.
 */
export async function netbootInitrd(kernel: Kernel, options: { modules?: readonly string[] } = {}): Promise<string> {
  const codename = hostCodename();
  const packages = ["initramfs-tools", "klibc-utils", "kmod", "zstd"];
  // MODULES=list with just these (and what they need) instead of every network driver: a smaller
  // file for a boot ROM to fetch over TFTP.
  const list = options.modules ? [...options.modules] : undefined;
  const key = { codename, packages, kernel: `${kernel.packageName}=${kernel.packageVersion}`, modules: list ?? "netboot", boot: "nfs", layout: 1 };
  if (process.getuid?.() !== 0) throw new Error("lab: building the netboot initrd needs root (mmdebstrap root mode)");
  // Its own cache name: the cache keeps one version per name, and both variants are in use.
  const dir = await cached(list ? "netboot-initrd-list" : "netboot-initrd", key, async (out) => {
    const overlay = path.join(out, "overlay");
    mkdirSync(overlay);
    await stageModules(kernel, overlay);
    const conf = "/etc/initramfs-tools/initramfs.conf";
    await run(
      "mmdebstrap",
      [
        "--mode=root",
        "--variant=minbase",
        `--include=${packages.join(",")}`,
        `--customize-hook=sync-in ${overlay} /`,
        // Network drivers and NFS instead of the disk drivers a laptop needs.
        list
          ? `--customize-hook=sed -i "s/^MODULES=.*/MODULES=list/" "$1${conf}" && echo BOOT=nfs >> "$1${conf}" && printf '%s\\n' ${list.join(" ")} >> "$1/etc/initramfs-tools/modules"`
          : `--customize-hook=sed -i "s/^MODULES=.*/MODULES=netboot/" "$1${conf}" && echo BOOT=nfs >> "$1${conf}"`,
        `--customize-hook=chroot "$1" mkinitramfs -o /boot/initrd.img ${kernel.release}`,
        `--customize-hook=copy-out /boot/initrd.img ${out}`,
        codename,
        "/dev/null",
        ...(await debianSources(codename)),
      ],
      { timeoutMs: 15 * 60_000 },
    );
    await run("rm", ["-rf", overlay]);
  });
  return path.join(dir, "initrd.img");
}

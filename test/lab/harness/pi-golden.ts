import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { debianSources, hostCodename } from "./apt-sources.js";
import { cached, fileHash, repoRoot } from "./cache.js";
import { ext4Image } from "./disk.js";
import { run } from "./exec.js";
import type { Kernel } from "./kernel.js";
import { netbootInitrd } from "./netboot.js";
import { MASKED_UNITS, stageModules } from "./rootfs.js";

/**
 * The golden image the lab's Pis netboot from: what a user's Raspberry Pi OS image is on a real
 * shelf. Debian bookworm with systemd, ifupdown + vlan (the Pi's tagged eth0.131), Apache with
 * mod_status and Debian's own nodejs (18: the Pi agent's floor); the Pi agent is installed into it
 * by the test, with `pifleet install --image`, as users do. Its /boot holds the kernel and the
 * NFS-root initramfs (initramfs-tools, BOOT=nfs): the fileserver agent serves them over TFTP
 * from the Pi's own root, so a rebuilt root brings its kernel with it.
 */

export interface PiGolden {
  /** ext4 image of the tree, attached read-only to the fileserver VM (serial `pifleet-golden`). */
  image: string;
  /** The lab's SSH key pair: the fileserver VM accepts it (made here so it is cached with the images). */
  sshKey: string;
  sshPublicKey: string;
  kernelFile: string;
  initrdFile: string;
}

export const PI_GOLDEN_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "udev",
  "kmod",
  "dbus",
  "iproute2",
  "ifupdown",
  "vlan",
  "apache2",
  "nodejs",
  "procps",
  "iputils-ping",
];

/**
 * What a Pi's root loads after the initramfs hands over: VLANs for eth0.131, and NFS (the shared
 * content mount). The NIC and the NFS root's own modules come with the initramfs.
 */
const PI_MODULES = ["8021q", "nfsv3", "nfsv4", "virtio_net", "virtio_rng"];

const PI_UP = path.join(repoRoot, "test/lab/guest/pi-up.sh");
/** Tells the host (serial console) that the Pi reached multi-user, with what it booted from. */
const PI_UP_UNIT = `[Unit]
Description=pifleet lab: report on the serial console that this Pi is up
After=multi-user.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/pifleet-lab-pi-up
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
`;

export async function piGolden(kernel: Kernel): Promise<PiGolden> {
  const codename = hostCodename();
  // What the boot ROM fetches over TFTP: the NIC's and NFS's modules only, not every network driver.
  const initrd = await netbootInitrd(kernel, { modules: ["virtio_pci", "virtio_net", "nfs", "nfsv3"] });
  const packages = [...PI_GOLDEN_PACKAGES].sort();
  const key = {
    codename,
    packages,
    kernel: `${kernel.packageName}=${kernel.packageVersion}`,
    initrd: fileHash(initrd),
    piUp: fileHash(PI_UP),
    unit: PI_UP_UNIT,
    masked: MASKED_UNITS,
    modules: PI_MODULES,
    layout: 5,
  };
  if (process.getuid?.() !== 0) throw new Error("lab: building the Pi golden image needs root (mmdebstrap root mode)");
  const dir = await cached("pi-golden", key, async (out) => {
    const overlay = path.join(out, "overlay");
    await stageModules(kernel, overlay, { only: PI_MODULES });
    const boot = path.join(overlay, "boot");
    copyFileSync(kernel.vmlinuz, path.join(boot, `vmlinuz-${kernel.release}`));
    copyFileSync(initrd, path.join(boot, `initrd.img-${kernel.release}`));
    mkdirSync(path.join(overlay, "usr/local/sbin"), { recursive: true });
    copyFileSync(PI_UP, path.join(overlay, "usr/local/sbin/pifleet-lab-pi-up"));
    mkdirSync(path.join(overlay, "etc/systemd/system"), { recursive: true });
    writeFileSync(path.join(overlay, "etc/systemd/system/pifleet-lab-pi-up.service"), PI_UP_UNIT);
    // Debian's initramfs mounted the root over NFS: nothing in fstab, nothing to check.
    writeFileSync(path.join(overlay, "etc/fstab"), "# / is NFS, mounted by the initramfs from the kernel command line\n");
    // eth0 is the initramfs's (ip=…, the NFS root's link): ifupdown must never take it down.
    // The fileserver agent writes each Pi's own eth0.131 stanza into interfaces.d.
    mkdirSync(path.join(overlay, "etc/network/interfaces.d"), { recursive: true });
    writeFileSync(path.join(overlay, "etc/network/interfaces"), "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n");
    // A volatile journal: every Pi writing its journal to the fileserver costs the shelf's NFS.
    mkdirSync(path.join(overlay, "etc/systemd/journald.conf.d"), { recursive: true });
    writeFileSync(path.join(overlay, "etc/systemd/journald.conf.d/pifleet-lab.conf"), "[Journal]\nStorage=volatile\n");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "pifleet-lab", "-f", path.join(out, "lab_key")]);

    const tree = path.join(out, "tree");
    await run(
      "mmdebstrap",
      [
        "--mode=root",
        "--variant=minbase",
        `--include=${packages.join(",")}`,
        ...["doc", "man", "locale", "info"].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        `--customize-hook=sync-in ${overlay} /`,
        `--customize-hook=chmod 0755 "$1/usr/local/sbin/pifleet-lab-pi-up"`,
        `--customize-hook=chroot "$1" systemctl enable pifleet-lab-pi-up.service`,
        `--customize-hook=chroot "$1" systemctl mask ${MASKED_UNITS.join(" ")}`,
        `--customize-hook=echo raspberrypi > "$1/etc/hostname"`,
        codename,
        tree,
        ...(await debianSources(codename)),
      ],
      { timeoutMs: 15 * 60_000 },
    );
    await ext4Image(tree, path.join(out, "golden.ext4"), { label: "pifleet-golden" });
    await run("rm", ["-rf", overlay, tree]);
  });
  return {
    image: path.join(dir, "golden.ext4"),
    sshKey: path.join(dir, "lab_key"),
    sshPublicKey: readFileSync(path.join(dir, "lab_key.pub"), "utf8"),
    kernelFile: `vmlinuz-${kernel.release}`,
    initrdFile: `initrd.img-${kernel.release}`,
  };
}

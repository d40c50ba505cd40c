import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { detectAccel, type Accel } from "./accel.js";
import type { AppImage } from "./app.js";
import { repoRoot } from "./cache.js";
import type { CpioFile } from "./cpio.js";
import { ext4Image } from "./disk.js";
import { initrdWithFiles, labInitramfs, type Initramfs } from "./initramfs.js";
import { debianKernel, type Kernel } from "./kernel.js";
import type { Rootfs } from "./rootfs.js";
import { Vm, type VmDisk } from "./vm.js";
import { Wire, type Cable } from "./wire.js";

export type LabFiles = Record<string, CpioFile | string>;

export interface TinyVmOptions {
  name: string;
  /** Files added to the initramfs; `lab/run.sh` is what /init runs. */
  files: LabFiles;
  wires?: Cable[];
  memoryMiB?: number;
  cmdline?: string[];
}

export interface SystemdVmOptions {
  name: string;
  rootfs: Rootfs;
  /** Files of the payload disk, mounted read-only at /lab; `run.sh` is what the autorun unit runs. */
  payload: LabFiles;
  /** pifleet's programs, mounted at /opt/pifleet. */
  app?: AppImage;
  wires?: Cable[];
  /** More disks (e.g. an image store), seen as /dev/disk/by-id/virtio-<serial>; read-only unless `writable` (then writes go to an overlay). */
  disks?: { file: string; serial: string; writable?: boolean }[];
  /** A last NIC on QEMU's user network (host loopback 10.0.2.2), with these TCP ports forwarded to the guest. */
  hostLoopback?: { forwards: { host: number; guest: number }[] };
  memoryMiB?: number;
  /** Default 2: systemd starts units in parallel, and TCG runs each vCPU on its own host thread. */
  cpus?: number;
  cmdline?: string[];
}

/**
 * One test's lab: Debian's kernel, the lab initramfs, the accelerator, and every VM and wire it
 * starts. Logs go to .artifacts/lab/<name>/ (kept for CI), scratch files to a temp folder.
 * `close()` ends every VM and must run in the test's afterAll.
 */
export class Lab {
  private readonly vms: Vm[] = [];
  /** Network namespace every VM of this lab runs in (set before creating VMs); none: the host's. */
  netns?: string;

  private constructor(
    readonly name: string,
    readonly kernel: Kernel,
    readonly initramfs: Initramfs,
    readonly accel: Accel,
    readonly logDir: string,
    readonly scratch: string,
  ) {}

  static async open(name: string): Promise<Lab> {
    const kernel = await debianKernel();
    const initramfs = await labInitramfs(kernel);
    const accel = await detectAccel(kernel, initramfs);
    const logDir = path.join(repoRoot, ".artifacts", "lab", name);
    rmSync(logDir, { recursive: true, force: true });
    mkdirSync(logDir, { recursive: true });
    const scratch = mkdtempSync(path.join(os.tmpdir(), `pifleet-lab-${name}-`));
    return new Lab(name, kernel, initramfs, accel, logDir, scratch);
  }

  wire(name: string): Promise<Wire> {
    return Wire.create(name);
  }

  /** A VM that runs entirely from the initramfs (busybox + iproute2): a few seconds to boot. */
  tinyVm(options: TinyVmOptions): Vm {
    const initrd = initrdWithFiles(this.initramfs, options.files, path.join(this.scratch, `${options.name}.initrd`));
    return this.track(
      new Vm({
        name: options.name,
        kernel: this.kernel,
        initrd,
        accel: this.accel,
        workDir: this.logDir,
        scratchDir: this.scratch,
        wires: options.wires,
        memoryMiB: options.memoryMiB ?? 256,
        cmdline: options.cmdline,
        netns: this.netns,
      }),
    );
  }

  /** A VM booting a systemd root filesystem image (writes go to an overlay in the scratch folder). */
  async systemdVm(options: SystemdVmOptions): Promise<Vm> {
    const payloadDir = path.join(this.scratch, `${options.name}.payload`);
    for (const [name, spec] of Object.entries(options.payload)) {
      const file = path.join(payloadDir, name);
      const { data, mode } = typeof spec === "string" ? { data: spec, mode: 0o644 } : { mode: 0o644, ...spec };
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, data);
      chmodSync(file, mode);
    }
    const payloadImage = await ext4Image(payloadDir, path.join(this.scratch, `${options.name}.payload.ext4`), { label: "lab-payload" });
    const disks: VmDisk[] = [
      { file: options.rootfs.image, serial: "lab-root", mode: "overlay" },
      { file: payloadImage, serial: "lab-payload", mode: "readonly" },
    ];
    if (options.app) disks.push({ file: options.app.image, serial: "pifleet-app", mode: "readonly" });
    for (const d of options.disks ?? []) disks.push({ file: d.file, serial: d.serial, mode: d.writable ? "overlay" : "readonly" });
    return this.track(
      new Vm({
        name: options.name,
        kernel: this.kernel,
        initrd: this.initramfs.path,
        accel: this.accel,
        workDir: this.logDir,
        wires: options.wires,
        memoryMiB: options.memoryMiB ?? 768,
        cpus: options.cpus ?? 2,
        disks,
        scratchDir: this.scratch,
        netns: this.netns,
        ...(options.hostLoopback ? { hostLoopback: true, hostForwards: options.hostLoopback.forwards } : {}),
        cmdline: ["lab.root=lab-root", `systemd.hostname=${options.name}`, ...(options.cmdline ?? [])],
      }),
    );
  }

  /**
   * A machine with no disk: Debian's kernel with the given initrd and command line — e.g. a Pi's
   * `root=/dev/nfs nfsroot=… ip=…` line with {@link netbootInitrd}. The serial console is added
   * last, so it stays the console whatever consoles the command line names.
   */
  disklessVm(options: { name: string; initrd: string; cmdline: string[]; wires?: Cable[]; memoryMiB?: number }): Vm {
    return this.track(
      new Vm({
        name: options.name,
        kernel: this.kernel,
        initrd: options.initrd,
        accel: this.accel,
        workDir: this.logDir,
        scratchDir: this.scratch,
        wires: options.wires,
        memoryMiB: options.memoryMiB ?? 384,
        cmdline: [...options.cmdline, "console=ttyS0"],
        netns: this.netns,
      }),
    );
  }

  /**
   * A machine with no disk and no kernel: it PXE-boots from its first NIC (SeaBIOS and Debian's
   * iPXE ROM for virtio-net), as a netbooted Pi's boot ROM does. `poweredOff`: QEMU starts with
   * the CPU stopped (-S), a Pi on a port without PoE; whoever holds the VM's power socket turns
   * it on (a reset and run), and every reset counts as a boot.
   */
  pxeVm(options: { name: string; wires: Cable[]; memoryMiB?: number; poweredOff?: boolean }): Vm {
    return this.track(
      new Vm({
        name: options.name,
        kernel: this.kernel,
        initrd: "",
        pxe: true,
        externalPower: true,
        startPaused: options.poweredOff,
        accel: this.accel,
        workDir: this.logDir,
        scratchDir: this.scratch,
        wires: options.wires,
        memoryMiB: options.memoryMiB ?? 448,
        netns: this.netns,
      }),
    );
  }

  private track(vm: Vm): Vm {
    this.vms.push(vm);
    return vm;
  }

  /** Ends every VM (in parallel) and removes scratch files; logs stay. */
  async close(): Promise<void> {
    await Promise.allSettled(this.vms.map((vm) => vm.stop()));
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

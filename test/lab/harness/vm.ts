import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import path from "node:path";
import type { Accel } from "./accel.js";
import type { Kernel } from "./kernel.js";
import { run } from "./exec.js";
import { labLog } from "./log.js";
import { QmpClient } from "./qmp.js";
import type { Cable } from "./wire.js";

export interface VmDisk {
  /** A raw image; never written. */
  file: string;
  /** Seen in the guest as /dev/disk/by-id/virtio-<serial>. */
  serial: string;
  /**
   * `overlay`: writes go to a qcow2 overlay in the scratch folder, which lives as long as this Vm
   * object — across power-cycles and QEMU restarts, like a real disk — so every test starts from
   * the same image. `readonly`: the guest cannot write at all.
   */
  mode: "overlay" | "readonly";
}

export interface VmOptions {
  name: string;
  kernel: Kernel;
  /** The initrd booted with {@link kernel}; unused by a {@link pxe} machine. */
  initrd: string;
  /**
   * Boot from the network like a diskless PC: no -kernel, the firmware (SeaBIOS) runs the first
   * NIC's iPXE ROM (Debian's ipxe-qemu), which asks DHCP for its boot file. Kernel, initrd and
   * command line then come from the TFTP server.
   */
  pxe?: boolean;
  /**
   * Power is switched from outside this process (a PoE emulator's hook on the VM's power QMP
   * socket): each reset QEMU reports counts as a new boot.
   */
  externalPower?: boolean;
  /** QEMU starts with the CPU stopped (-S): powered off until someone runs it. */
  startPaused?: boolean;
  /** Run QEMU in this network namespace (see NetNs): its tap devices and its loopback. */
  netns?: string;
  accel: Accel;
  /** Where the serial/QEMU log goes. */
  workDir: string;
  /** Where the QMP socket and disk overlays go (default: workDir); a short path: sockets have a 108-byte limit. */
  scratchDir?: string;
  /** Extra kernel command line words. */
  cmdline?: string[];
  memoryMiB?: number;
  /** Virtual CPUs; under TCG each is a host thread. */
  cpus?: number;
  disks?: VmDisk[];
  /** One virtio NIC per wire, in order: eth0, eth1, … */
  wires?: Cable[];
  /**
   * The machine: "x86_64" (default, a PC) or "aarch64" (QEMU's `virt` board, always TCG: give
   * it {@link AARCH64_TCG}; console ttyAMA0).
   */
  arch?: "x86_64" | "aarch64";
  /**
   * A NIC (after the wires') on QEMU's user-mode network, where 10.0.2.2 is the host's loopback:
   * how a guest reaches a server on the host's 127.0.0.1. The guest should configure a static
   * 10.0.2.15/24 with no gateway, so it can reach nothing beyond that subnet.
   */
  hostLoopback?: boolean;
  /** TCP ports of the user-mode NIC forwarded from the host's 127.0.0.1 (e.g. SSH): host port → guest port. */
  hostForwards?: { host: number; guest: number }[];
}

/** A result line the guest printed on its serial console: `@@LAB <key> <value>`. */
export interface Marker {
  key: string;
  value: string;
  /** 1 for the first boot, incremented by each power-cycle or restart. */
  boot: number;
  /** Milliseconds since the VM process started. */
  atMs: number;
}

const MARKER = /@@LAB (\S+)(?: (.*?))?\s*$/;
/** Printed by the lab's own init and autorun when a VM cannot run its test at all. */
const FATAL_MARKERS = new Set(["init-error", "autorun-error"]);
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) killGroup(child);
});

/**
 * Runs QEMU under a small shell guard that holds the read end of a pipe from this process (its
 * stdin): when this process dies, however it dies, the pipe closes and the guard kills QEMU.
 * (A parent-death signal set with `setpriv --pdeathsig` did not survive QEMU's exec here.) QEMU
 * itself gets /dev/null as stdin; its stdout, the serial console, still comes here.
 */
export const QEMU_GUARD = 'exec 3<&0 0</dev/null; "$@" 3<&- & q=$!; { while read -r _ <&3; do :; done; kill -KILL "$q" 2>/dev/null; } & g=$!; wait "$q"; rc=$?; kill "$g" 2>/dev/null; exit "$rc"';

/** The guard, QEMU and the guard's reader share a process group (spawned detached): one kill ends them all. */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}

/** A stable locally administered MAC per VM and NIC, so two VMs on a wire never share one. */
export function macFor(name: string, nic: number): string {
  let h = 2166136261;
  for (const c of `${name}/${nic}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const bytes = [0x52, 0x54, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * One QEMU process running Debian's kernel. The guest's serial console is read line by line for
 * markers; QMP controls power. The QEMU process dies with the test process (see QEMU_GUARD), so a
 * crashed or killed test run leaves no VM behind.
 */
export class Vm {
  readonly markers: Marker[] = [];
  readonly serialLog: string;
  private output: string[] = [];
  private child?: ChildProcess;
  private qmp?: QmpClient;
  private boot = 1;
  private startedAt = 0;
  private exitInfo?: string;
  private waiters = new Set<() => void>();
  private log?: WriteStream;
  private readonly qmpSocket: string;
  /** A second QMP socket for whoever plays the VM's power supply (the PoE emulator's hook). */
  readonly powerSocket: string;
  private readonly netdevs: string[];
  private readonly overlays: string[];
  private overlaysCreated = false;

  constructor(readonly options: VmOptions) {
    mkdirSync(options.workDir, { recursive: true });
    this.netdevs = (options.wires ?? []).map((w, i) => w.attach(`net${i}`));
    this.serialLog = path.join(options.workDir, `${options.name}.serial.log`);
    const scratch = options.scratchDir ?? options.workDir;
    this.qmpSocket = path.join(scratch, `${options.name}.qmp`);
    this.powerSocket = path.join(scratch, `${options.name}.power.qmp`);
    this.overlays = (options.disks ?? []).map((d) => path.join(scratch, `${options.name}.${d.serial}.qcow2`));
  }

  /** The QEMU program for this machine. */
  get binary(): string {
    return this.options.arch === "aarch64" ? "qemu-system-aarch64" : "qemu-system-x86_64";
  }

  /** The QEMU command line (for logs and for people reproducing a run by hand). */
  args(): string[] {
    const o = this.options;
    const arm = o.arch === "aarch64";
    const cmdline = [
      arm ? "console=ttyAMA0" : "console=ttyS0",
      "net.ifnames=0",
      "quiet",
      "loglevel=4",
      // On a starved host a TCG vCPU can miss the boot-time IO-APIC timer check and panic (x86 only).
      ...(arm ? [] : ["no_timer_check"]),
      `lab.hostname=${o.name}`,
      ...(o.cmdline ?? []),
    ];
    const args = [
      "-name", o.name,
      ...(arm ? ["-M", "virt"] : []),
      ...o.accel.args,
      "-m", String(o.memoryMiB ?? 256),
      "-smp", String(o.cpus ?? 1),
      "-nodefaults", "-no-user-config",
      "-display", "none",
      "-serial", "stdio",
      "-qmp", `unix:${this.qmpSocket},server=on,wait=off`,
      "-qmp", `unix:${this.powerSocket},server=on,wait=off`,
      ...(o.startPaused ? ["-S"] : []),
      // sgabios: the firmware's and iPXE's screen on the serial line, so a PXE boot shows in the log.
      ...(o.pxe ? ["-boot", "order=n", "-device", "sga"] : ["-kernel", o.kernel.vmlinuz, "-initrd", o.initrd, "-append", cmdline.join(" ")]),
    ];
    (o.disks ?? []).forEach((d, i) => {
      const file = d.mode === "overlay" ? `file=${this.overlays[i]},format=qcow2` : `file=${d.file},format=raw,readonly=on`;
      args.push("-drive", `${file},if=none,id=disk${i}`);
      args.push("-device", `virtio-blk-pci,drive=disk${i},serial=${d.serial}`);
    });
    // No boot ROM on the NIC: -kernel boots need none, and aarch64 QEMU has no efi-virtio.rom for it.
    const nic = arm ? "virtio-net-pci,romfile=" : "virtio-net-pci";
    this.netdevs.forEach((netdev, i) => {
      args.push("-netdev", netdev);
      args.push("-device", `${nic},netdev=net${i},mac=${macFor(o.name, i)}`);
    });
    if (o.hostLoopback) {
      const i = this.netdevs.length;
      const forwards = (o.hostForwards ?? []).map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join("");
      args.push("-netdev", `user,id=net${i},net=10.0.2.0/24${forwards}`);
      args.push("-device", `${nic},netdev=net${i},mac=${macFor(o.name, i)}`);
    }
    // A guest's first getrandom() would otherwise wait for entropy a TCG machine gathers slowly.
    if (arm) args.push("-device", "virtio-rng-pci");
    return args;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`lab: VM ${this.options.name} already running`);
    if (!this.overlaysCreated) {
      for (const [i, d] of (this.options.disks ?? []).entries()) {
        if (d.mode !== "overlay") continue;
        await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", path.resolve(d.file), this.overlays[i]]);
      }
      this.overlaysCreated = true;
    }
    const args = this.args();
    this.exitInfo = undefined;
    this.log = createWriteStream(this.serialLog, { flags: this.child ? "a" : "w" });
    this.log.write(`# ${this.binary} ${args.map((a) => (/[\s,]/.test(a) ? `'${a}'` : a)).join(" ")}\n`);
    labLog.info({ vm: this.options.name, accel: this.options.accel.name }, "lab: starting VM");
    this.startedAt = Date.now();
    const guarded = ["sh", "-c", QEMU_GUARD, "lab-guard", this.binary, ...args];
    const argv = this.options.netns ? ["ip", "netns", "exec", this.options.netns, ...guarded] : guarded;
    const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.child = child;
    running.add(child);
    let partial = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      partial += chunk;
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const line of lines) this.onLine(line.replace(/\r/g, ""));
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.log?.write(`[qemu] ${chunk}`);
      this.output.push(`[qemu] ${chunk.trimEnd()}`);
    });
    child.on("close", (code, signal) => {
      running.delete(child);
      if (partial) this.onLine(partial.replace(/\r/g, ""));
      partial = "";
      this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.log?.end(`\n# qemu ${this.exitInfo}\n`);
      this.notify();
    });
    child.stdin!.on("error", () => {});
    const died = new Promise<never>((_, reject) =>
      child.once("close", () => reject(new Error(`lab: VM ${this.options.name}: QEMU ${this.exitInfo} while starting\n${this.tail()}`))),
    );
    died.catch(() => {});
    this.qmp = await Promise.race([
      QmpClient.connect(this.qmpSocket).catch((e: Error) => {
        throw new Error(`${e.message}\n${this.tail()}`);
      }),
      died,
    ]);
    if (this.options.externalPower) {
      this.qmp.onEvent = (event) => {
        if (event !== "RESET") return;
        this.boot++;
        this.log?.write(`# boot ${this.boot}: QEMU reset (power on)\n`);
        this.notify();
      };
    }
  }

  private onLine(line: string): void {
    // Host time since QEMU started, so a slow step shows in the log.
    this.log?.write(`[${((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
    this.output.push(line);
    if (this.output.length > 400) this.output.splice(0, this.output.length - 300);
    const m = MARKER.exec(line);
    if (m) this.markers.push({ key: m[1], value: m[2] ?? "", boot: this.boot, atMs: Date.now() - this.startedAt });
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Last lines of the serial console (and QEMU's stderr): what failure messages show. */
  tail(lines = 40): string {
    return `--- ${this.options.name} serial (last ${lines} lines; full log ${this.serialLog}) ---\n${this.output.slice(-lines).join("\n")}`;
  }

  /** Markers of the current boot, optionally only those named `key`. */
  current(key?: string): Marker[] {
    return this.markers.filter((m) => m.boot === this.boot && (key === undefined || m.key === key));
  }

  /**
   * Waits for the guest to print marker `key` during the current boot. Fails early, with the
   * console's tail, when QEMU exits or the kernel panics.
   */
  waitFor(key: string, timeoutMs: number): Promise<Marker> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.current(key)[0];
        let failure: string | undefined;
        if (!found && this.exitInfo) failure = `QEMU ${this.exitInfo}`;
        if (!found && this.output.some((l) => l.includes("Kernel panic - not syncing"))) failure = "kernel panic";
        const harnessError = this.current().find((m) => FATAL_MARKERS.has(m.key));
        if (!found && harnessError) failure = `${harnessError.key} ${harnessError.value}`;
        if (!found && !failure) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        if (found) resolve(found);
        else reject(new Error(`lab: VM ${this.options.name}: ${failure} before marker "${key}"\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`lab: VM ${this.options.name}: no marker "${key}" within ${timeoutMs / 1000} s\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Cuts the power: the CPU stops dead (no shutdown, nothing more on the wire). */
  async powerOff(): Promise<void> {
    await this.control().execute("stop");
  }

  /** A hang: the CPU stops where it is (QMP `stop`); nothing is closed, the wire just goes quiet. */
  async freeze(): Promise<void> {
    await this.control().execute("stop");
  }

  /** Restores power: the machine resets and boots from scratch (disk overlays survive, like disks do). */
  async powerOn(): Promise<void> {
    const qmp = this.control();
    // Counted first: whatever the console prints from here on belongs to the new boot (an
    // externally powered VM counts QEMU's RESET event instead).
    if (!this.options.externalPower) this.boot++;
    await qmp.execute("system_reset");
    await qmp.execute("cont");
  }

  /** Power off, wait, power on — through QMP, as a PoE switch port does to a Pi. */
  async powerCycle(offMs = 1000): Promise<void> {
    await this.powerOff();
    await new Promise((r) => setTimeout(r, offMs));
    await this.powerOn();
  }

  /**
   * A power cut with a fresh machine after it: QEMU is killed (no shutdown, the page cache is lost)
   * and started again on the same disk overlays. Unlike a QMP reset this also restarts the
   * virtual firmware and every vCPU's clock: after a reset, TCG leaves an SMP guest's TSCs out of
   * step and its kernel falls back to a slow clock source.
   */
  async restart(offMs = 1000): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      const gone = new Promise<void>((resolve) => child.once("close", () => resolve()));
      killGroup(child);
      await gone;
    }
    this.qmp?.close();
    await new Promise((r) => setTimeout(r, offMs));
    this.boot++;
    await this.start();
  }

  /** 1 for the first boot, +1 per power-on, reset or restart. */
  get bootCount(): number {
    return this.boot;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  private control(): QmpClient {
    if (!this.qmp || !this.running) throw new Error(`lab: VM ${this.options.name} is not running`);
    return this.qmp;
  }

  /** Ends QEMU (QMP `quit`, then SIGKILL if it lingers) and waits until the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exitInfo !== undefined) {
      this.qmp?.close();
      return;
    }
    const gone = new Promise<void>((resolve) => child.once("close", () => resolve()));
    try {
      await Promise.race([this.qmp?.execute("quit"), new Promise((r) => setTimeout(r, 3000))]);
    } catch {
      /* QEMU closes the socket as it quits */
    }
    const killer = setTimeout(() => killGroup(child), 5000);
    await gone;
    clearTimeout(killer);
    this.qmp?.close();
  }
}

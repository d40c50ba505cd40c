import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { initrdWithFiles, type Initramfs } from "./initramfs.js";
import type { Kernel } from "./kernel.js";
import { labLog } from "./log.js";
import { Vm } from "./vm.js";

export interface Accel {
  name: "kvm" | "tcg";
  /** QEMU options selecting it. */
  args: string[];
}

export const TCG: Accel = { name: "tcg", args: ["-accel", "tcg", "-cpu", "max"] };
export const KVM: Accel = { name: "kvm", args: ["-accel", "kvm", "-cpu", "host"] };
/** An ARM machine on this x86 host: always emulated; a Cortex-A53 is what a Raspberry Pi 3 has. */
export const AARCH64_TCG: Accel = { name: "tcg", args: ["-accel", "tcg", "-cpu", "cortex-a53"] };

let detected: Promise<Accel> | undefined;

/**
 * KVM when it really boots Debian's kernel, else TCG. A /dev/kvm that exists is not enough: on
 * some hosts it is a paravirtual device on which QEMU dies setting MSRs or the guest stalls. So
 * a throw-away VM must print a marker within a short timeout. PIFLEET_LAB_ACCEL=kvm|tcg skips the
 * probe.
 */
export function detectAccel(kernel: Kernel, initramfs: Initramfs): Promise<Accel> {
  detected ??= probe(kernel, initramfs);
  return detected;
}

async function probe(kernel: Kernel, initramfs: Initramfs): Promise<Accel> {
  const forced = process.env.PIFLEET_LAB_ACCEL;
  if (forced === "kvm") return KVM;
  if (forced === "tcg") return TCG;
  if (forced) throw new Error(`PIFLEET_LAB_ACCEL must be kvm or tcg, not ${JSON.stringify(forced)}`);
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    labLog.info("lab: no usable /dev/kvm: TCG");
    return TCG;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-kvm-probe-"));
  const vm = new Vm({
    name: "kvm-probe",
    kernel,
    initrd: initrdWithFiles(initramfs, { "lab/run.sh": 'echo "@@LAB kvm-probe ok"\n' }, path.join(dir, "initrd")),
    accel: KVM,
    workDir: dir,
  });
  let accel = TCG;
  try {
    await vm.start();
    await vm.waitFor("kvm-probe", 20_000);
    accel = KVM;
  } catch (e) {
    labLog.info({ reason: (e as Error).message.split("\n")[0] }, "lab: KVM cannot boot Debian's kernel here: TCG");
  } finally {
    await vm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return accel;
}

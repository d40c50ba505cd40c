import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { run } from "./exec.js";
import { labLog } from "./log.js";

/** Foreign CPUs the lab runs user-space programs of, through Debian's qemu-user-static. */
export type ForeignArch = "aarch64" | "arm";

const BINFMT = "/proc/sys/fs/binfmt_misc";
const PREFIX = "pifleet-lab-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const held = new Map<ForeignArch, { count: number; entry: string }>();

/**
 * Lets the host kernel run `arch` binaries directly (execve, also from inside a chroot): a
 * binfmt_misc entry handing them to qemu-<arch>-static. Needed where foreign programs start other
 * foreign programs (mmdebstrap's maintainer scripts, a Node daemon that re-executes itself).
 *
 * Flag F makes the kernel open the interpreter now, so it works in chroots that lack it. The
 * magic and mask come from the qemu-user-static package's own binfmt.d file. Each test process
 * registers an entry of its own (named with its PID) and removes it when the last user releases
 * it, so concurrent runs never pull one out from under another; entries left by dead processes
 * are removed here too. Needs root.
 */
export async function foreignBinaries(arch: ForeignArch): Promise<() => void> {
  const mine = held.get(arch);
  if (mine) {
    mine.count++;
    return once(() => release(arch));
  }
  if (process.getuid?.() !== 0) throw new Error(`lab: running ${arch} programs needs a binfmt_misc entry, which needs root`);
  const interpreter = `/usr/bin/qemu-${arch}-static`;
  const conf = `/usr/lib/binfmt.d/qemu-${arch}.conf`;
  if (!existsSync(interpreter) || !existsSync(conf)) throw new Error(`lab: ${interpreter} or ${conf} is missing: install Debian's qemu-user-static`);
  if (!existsSync(path.join(BINFMT, "register"))) {
    await run("mount", ["-t", "binfmt_misc", "binfmt_misc", BINFMT]).catch((e: Error) => {
      throw new Error(`lab: cannot mount binfmt_misc at ${BINFMT}: ${e.message}`);
    });
  }
  for (const entry of readdirSync(BINFMT)) {
    const pid = Number(/^pifleet-lab-[a-z0-9]+-(\d+)$/.exec(entry)?.[1]);
    if (pid && !alive(pid)) writeFileSync(path.join(BINFMT, entry), "-1");
  }
  // ":name:M::magic:mask:interpreter:flags" — keep magic and mask, use our name, the static binary, F.
  const fields = readFileSync(conf, "utf8").trim().split(":");
  if (fields.length !== 8 || fields[2] !== "M") throw new Error(`lab: ${conf} is not a binfmt magic entry: ${fields.join(":")}`);
  const entry = `${PREFIX}${arch}-${process.pid}`;
  writeFileSync(path.join(BINFMT, "register"), [":" + entry, "M", "", fields[4], fields[5], interpreter, "F"].join(":"));
  held.set(arch, { count: 1, entry });
  labLog.info({ arch, entry }, "lab: binfmt_misc entry registered");
  return once(() => release(arch));
}

function release(arch: ForeignArch): void {
  const mine = held.get(arch);
  if (!mine || --mine.count > 0) return;
  held.delete(arch);
  const file = path.join(BINFMT, mine.entry);
  if (existsSync(file)) writeFileSync(file, "-1");
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) f();
    done = true;
  };
}

process.once("exit", () => {
  for (const arch of [...held.keys()]) {
    const e = held.get(arch)!;
    e.count = 1;
    release(arch);
  }
});

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * One emulated shelf at a time on this machine: each recovery suite starts a coordinator, HAProxy,
 * a fileserver agent and a Pi agent process per Pi, and judges timings (boot within a deadline,
 * no power action within a window). Two shelves on two cores would starve each other, so every
 * suite holds this lock from its start to its end, whichever vitest worker runs it.
 */
export async function holdShelfLock(timeoutMs: number): Promise<() => void> {
  const dir = path.join(tmpdir(), "pifleet-e2e-shelf.lock");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(path.join(dir, "pid"), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    // A suite that died without releasing leaves its pid behind: the lock is free once it is gone.
    if (!alive(ownerOf(dir))) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another recovery suite held ${dir} for more than ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function ownerOf(dir: string): number | undefined {
  try {
    return Number(readFileSync(path.join(dir, "pid"), "utf8")) || undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  // No pid yet: the owner is between mkdir and writing it.
  if (pid === undefined) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

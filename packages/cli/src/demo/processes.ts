import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

/** The built entry point of a workspace daemon, found through Node's resolver (works from dist and bundles alike). */
export function daemonEntry(pkg: "@pifleet/coordinator" | "@pifleet/pi-agent" | "@pifleet/fileserver-agent"): string {
  return path.join(path.dirname(fileURLToPath(import.meta.resolve(pkg))), "main.js");
}

/**
 * Every child the demo starts, so Ctrl-C (or a crash of the demo itself) leaves nothing behind:
 * children run in their own process group and are killed as a group.
 */
export class ProcessSet {
  private readonly children = new Set<ChildProcess>();

  start(name: string, command: string, args: string[], opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): ChildProcess {
    const log: WriteStream = createWriteStream(opts.logFile, { flags: "a" });
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, PIFLEET_LOG_FORMAT: "json", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    this.children.add(child);
    child.once("exit", () => {
      this.children.delete(child);
      log.end();
    });
    (child as ChildProcess & { demoName?: string }).demoName = name;
    return child;
  }

  kill(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  }

  /** SIGTERM everything, then SIGKILL what is still there after `graceMs`. */
  async stopAll(graceMs = 3000): Promise<void> {
    const live = [...this.children];
    for (const c of live) this.kill(c, "SIGTERM");
    // The grace timer is cleared once all have exited: left pending, it held a Ctrl-C'd demo for the whole grace.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(live.map((c) => exited(c))), new Promise((r) => (grace = setTimeout(r, graceMs)))]);
    clearTimeout(grace);
    for (const c of [...this.children]) this.kill(c, "SIGKILL");
    await Promise.all([...this.children].map((c) => exited(c)));
  }

  /** Last-resort cleanup from a synchronous exit handler. */
  killAllSync(): void {
    for (const c of this.children) this.kill(c, "SIGKILL");
  }
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

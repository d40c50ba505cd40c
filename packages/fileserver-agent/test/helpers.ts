import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { checkFleet, fileserverView, loadFleet, plan, type FileserverView } from "@pifleet/core";
import { ExecRunner, formatCommand, type CommandRunner, type RunResult } from "@pifleet/fileserver-agent";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../../..");
export const fixture = (name: string) => readFileSync(path.join(here, "fixtures", name), "utf8");

/** The fileserver's part of the seed's plan (one shelf, one fileserver: all of it). */
export function seedPlan(): FileserverView {
  return fileserverView(plan(loadFleet(path.join(repo, "examples/seed-8.yaml"))));
}

/** The seed's fleet file, edited as written: for plans with fewer Pis, another network driver, other options. */
export function seedPlanWith(edit: (fleet: Record<string, any>) => void): FileserverView {
  const fleet = parse(readFileSync(path.join(repo, "examples/seed-8.yaml"), "utf8")) as Record<string, any>;
  edit(fleet);
  return fileserverView(plan(checkFleet(fleet)));
}

export function tempDir(label: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `pifleet-fs-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Commands that only read state. */
const READ_ONLY = [/^ip -j /, /^ip -V$/, /^exportfs -v$/, /^exportfs -h$/, /^systemctl is-active /];

/**
 * Answers `ip`, `exportfs` and `systemctl` from recorded output and records every call; `cp`
 * (a file copy, not host state) runs for real so roots appear on disk.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: string[] = [];
  private readonly answers = new Map<string, RunResult>();
  private readonly real = new ExecRunner();

  set(commandLine: string, stdout: string, code = 0, stderr = ""): this {
    this.answers.set(commandLine, { code, stdout, stderr });
    return this;
  }

  /** The recorded state of a fileserver: links, addresses, exports, NFS running. */
  state(links: string, addrs: string, exportfs: string, nfs = true): this {
    return this.set("ip -j -d link show", links)
      .set("ip -j addr show", addrs)
      .set("exportfs -v", exportfs)
      .set("systemctl is-active nfs-server", nfs ? "active\n" : "inactive\n", nfs ? 0 : 3);
  }

  async run(cmd: string, args: string[]): Promise<RunResult> {
    const line = formatCommand(cmd, args);
    this.calls.push(line);
    if (cmd === "cp") return this.real.run(cmd, args);
    const answer = this.answers.get(line);
    if (answer) return answer;
    // Changes succeed silently, as ip and exportfs do.
    if (!READ_ONLY.some((r) => r.test(line))) return { code: 0, stdout: "", stderr: "" };
    return { code: 1, stdout: "", stderr: `fake runner: nothing recorded for ${line}` };
  }

  /** Calls that change the host (everything but reads and cp). */
  changes(): string[] {
    return this.calls.filter((c) => !READ_ONLY.some((r) => r.test(c)) && !c.startsWith("cp "));
  }

  reset(): void {
    this.calls.length = 0;
  }
}

/**
 * Builds the package's dist (what spawned processes run) once, even when several test files ask
 * at the same time in parallel workers: a directory serves as the lock.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = path.join(repo, "packages/fileserver-agent/.build-lock");
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than the deadline was left by a killed run.
      const st = statSync(lock, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${lock}: still locked after 2 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    execFileSync("pnpm", ["exec", "tsc", "-b", "packages/fileserver-agent"], { cwd: repo, stdio: "inherit" });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

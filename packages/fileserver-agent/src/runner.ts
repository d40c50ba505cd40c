import { execFile } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
}

/**
 * Everything the agent asks of the host's programs (ip, exportfs, systemctl, cp) goes through
 * one of these, so tests can hand in recorded output and the sandbox can emulate the kernel.
 */
export interface CommandRunner {
  run(cmd: string, args: string[], options?: RunOptions): Promise<RunResult>;
}

/** Long enough for a multi-gigabyte `cp`, short enough that a hung `exportfs` is noticed. */
const DEFAULT_TIMEOUTS: Record<string, number> = {
  ip: 10_000,
  exportfs: 60_000,
  systemctl: 10_000,
  cp: 3_600_000,
};

/** The real runner: execFile (no shell), a timeout per program, output capped at 64 MiB. */
export class ExecRunner implements CommandRunner {
  constructor(private readonly env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C" }) {}

  run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    const timeout = options.timeoutMs ?? DEFAULT_TIMEOUTS[cmd] ?? 60_000;
    return new Promise((resolve) => {
      execFile(cmd, args, { timeout, maxBuffer: 64 * 1024 * 1024, env: this.env, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (e.code === "ENOENT") return resolve({ code: 127, stdout: "", stderr: `${cmd}: command not found` });
        if (e.killed) return resolve({ code: 124, stdout, stderr: `${stderr}${cmd}: timed out after ${timeout} ms` });
        resolve({ code: typeof e.code === "number" ? e.code : 1, stdout, stderr: stderr || e.message });
      });
    });
  }
}

/** Quotes a word for a POSIX shell only when it needs it, so printed commands stay readable and runnable. */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function formatCommand(cmd: string, args: string[]): string {
  return [cmd, ...args].map(shellQuote).join(" ");
}

/** A failed program run, carrying what it printed. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super(`${command}: exit ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`);
    this.name = "CommandError";
  }
}

/** Runs and throws CommandError on a non-zero exit. */
export async function runChecked(runner: CommandRunner, cmd: string, args: string[], options?: RunOptions): Promise<RunResult> {
  const result = await runner.run(cmd, args, options);
  if (result.code !== 0) throw new CommandError(formatCommand(cmd, args), result);
  return result;
}

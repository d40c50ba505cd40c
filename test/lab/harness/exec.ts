import { spawn, type SpawnOptions } from "node:child_process";

export interface RunOptions extends Pick<SpawnOptions, "cwd" | "env"> {
  /** Written to the child's stdin, then closed. */
  input?: string | Buffer;
  /** Kill the child and fail after this long. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (${code === null ? "killed" : `exit ${code}`}): ${stderr.trim().split("\n").slice(-15).join("\n")}`);
  }
}

/** Runs a program (no shell) and resolves with its output; rejects with its stderr tail when it fails. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    const timer = options.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), options.timeoutMs) : undefined;
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new CommandError(`${cmd} ${args.join(" ")}`, null, e.message));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError(`${cmd} ${args.join(" ")}`, code, stderr || stdout));
    });
    child.stdin!.on("error", () => {
      /* the child may exit without reading its input */
    });
    child.stdin!.end(options.input ?? "");
  });
}

import { execFile } from "node:child_process";
import type { Logger } from "@pifleet/core";
import type { v1 } from "@pifleet/proto";
import type { AgentConfig } from "./config.js";

export type ExecResult = { code: number | null; signal: string | null; stdout: string; stderr: string; error?: string };
export type Exec = (argv: string[], timeoutMs: number) => Promise<ExecResult>;

/** Runs a program without a shell; never rejects. */
export const execArgv: Exec = (argv, timeoutMs) =>
  new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 256 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: string; killed?: boolean }) | null;
      if (!e) return resolve({ code: 0, signal: null, stdout, stderr });
      if (typeof e.code === "string") return resolve({ code: null, signal: null, stdout, stderr, error: `${argv[0]}: ${e.code}` });
      const timedOut = e.killed && e.signal === "SIGKILL";
      resolve({ code: typeof e.code === "number" ? e.code : null, signal: e.signal ?? null, stdout, stderr, error: timedOut ? `timed out after ${timeoutMs} ms` : undefined });
    });
  });

/** What the Pi agent does when the coordinator asks. */
export const COMMAND_KINDS = ["restart-apache", "reboot"] as const;

/**
 * Runs Command frames from the coordinator and answers each with a CommandResult. One command of
 * a kind at a time: a second restart while one runs is refused, not queued behind it.
 */
export class CommandRunner {
  private readonly running = new Set<string>();

  constructor(
    private readonly identity: string,
    private readonly commands: AgentConfig["commands"],
    private readonly log?: Logger,
    private readonly exec: Exec = execArgv,
  ) {}

  async run(cmd: v1.Command.$Properties): Promise<v1.CommandResult.$Properties> {
    const id = cmd.id ?? "";
    const kind = cmd.kind ?? "";
    const started = performance.now();
    const result = (ok: boolean, message: string): v1.CommandResult.$Properties => ({ id, ok, message, durationMs: Math.round(performance.now() - started) });
    if (cmd.target && cmd.target !== this.identity) return result(false, `command is for ${cmd.target}, this is ${this.identity}`);
    const argv = kind === "restart-apache" ? this.commands.restartApache : kind === "reboot" ? this.commands.reboot : undefined;
    if (!argv) return result(false, `unknown command kind ${JSON.stringify(kind)}; a Pi agent runs ${COMMAND_KINDS.join(", ")}`);
    if (this.running.has(kind)) return result(false, `${kind} is already running`);
    this.running.add(kind);
    try {
      const timeoutMs = cmd.timeoutMs || this.commands.timeoutMs;
      this.log?.info({ id, kind, argv }, "running command");
      const r = await this.exec(argv, timeoutMs);
      const output = (r.stderr.trim() || r.stdout.trim()).slice(-500);
      let res: v1.CommandResult.$Properties;
      if (r.code === 0) res = result(true, output ? `${argv.join(" ")}: ok: ${output}` : `${argv.join(" ")}: ok`);
      else {
        const why = r.error ?? (r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`);
        res = result(false, `${argv.join(" ")}: ${why}${output ? `: ${output}` : ""}`);
      }
      if (res.ok) this.log?.info({ id, kind, message: res.message }, "command finished");
      else this.log?.warn({ id, kind, message: res.message }, "command failed");
      return res;
    } finally {
      this.running.delete(kind);
    }
  }
}

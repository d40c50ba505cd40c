import { randomUUID } from "node:crypto";
import { v1 } from "@pifleet/proto";
import type { Connection } from "./connection.js";

export interface CommandOptions {
  /** Skip the agent's own safety checks (e.g. reboot while serving). */
  force?: boolean;
  /** How long to wait for the CommandResult; the agent is told too. Default 30 s. */
  timeoutMs?: number;
}

export interface CommandResult {
  id: string;
  ok: boolean;
  message: string;
  durationMs: number;
}

interface Pending {
  conn: Connection;
  target: string;
  kind: string;
  started: number;
  timer: NodeJS.Timeout;
  resolve: (r: CommandResult) => void;
}

/**
 * Commands to agents over their own connection. Never rejects: a missing agent, a timeout or a
 * dropped connection are results with ok=false, so callers handle one shape.
 */
export class CommandRouter {
  private readonly pending = new Map<string, Pending>();

  send(conn: Connection | undefined, target: string, kind: string, args: Record<string, string> = {}, opts: CommandOptions = {}): Promise<CommandResult> {
    const id = randomUUID();
    if (!conn || !conn.open) return Promise.resolve({ id, ok: false, message: `${target} is not connected`, durationMs: 0 });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return new Promise((resolve) => {
      const started = Date.now();
      const timer = setTimeout(() => this.finish(id, { ok: false, message: `no result within ${timeoutMs} ms` }), timeoutMs);
      timer.unref();
      this.pending.set(id, { conn, target, kind, started, timer, resolve });
      conn.send({ command: { id, target, kind, args, force: opts.force ?? false, timeoutMs } });
    });
  }

  /** A CommandResult frame: only the connection the command went to may answer it. */
  result(conn: Connection, r: v1.CommandResult): boolean {
    const p = this.pending.get(r.id);
    if (!p || p.conn !== conn) return false;
    this.finish(r.id, { ok: r.ok, message: r.message, agentDurationMs: r.durationMs });
    return true;
  }

  /** The connection is gone: its commands fail now rather than at their timeout. */
  dropped(conn: Connection, why: string): void {
    for (const [id, p] of this.pending) if (p.conn === conn) this.finish(id, { ok: false, message: why });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  onDone?: (target: string, kind: string, result: CommandResult) => void;

  private finish(id: string, r: { ok: boolean; message: string; agentDurationMs?: number }): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    const result: CommandResult = { id, ok: r.ok, message: r.message, durationMs: r.agentDurationMs || Date.now() - p.started };
    this.onDone?.(p.target, p.kind, result);
    p.resolve(result);
  }
}

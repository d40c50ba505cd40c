import { realpath } from "node:fs/promises";
import path from "node:path";
import { fileserverView, loadFleet, plan as derivePlan, type FileserverView, type Logger, type Notifier } from "@pifleet/core";
import { FleetClient, v1 } from "@pifleet/proto";
import type { FileserverConfig } from "./config.js";
import { Fileserver, RefusedError, UnknownPiError, type Outcome } from "./fileserver.js";
import { openFileserver } from "./open.js";
import { summarize } from "./output.js";
import { buildReport } from "./report.js";
import type { CommandRunner } from "./runner.js";
import { checkAbsolute, isInside, PathError } from "./safety.js";

export const COMMAND_KINDS = ["apply", "rebuild", "rollback", "sync-content"] as const;

/** A CommandResult message fits easily in a frame; a 96-Pi dry run is trimmed, not refused. */
const MAX_MESSAGE = 32 * 1024;

export interface AgentDeps {
  logger: Logger;
  secret: string;
  notifier?: Notifier;
  runner?: CommandRunner;
  ca?: string;
  agentVersion?: string;
}

function flag(args: Record<string, string>, name: string): boolean | undefined {
  const v = args[name];
  if (v === undefined || v === "") return undefined;
  if (/^(true|yes|1|on)$/i.test(v)) return true;
  if (/^(false|no|0|off)$/i.test(v)) return false;
  throw new UsageFault(`args.${name}: "${v}" is not true or false`);
}

/** A command frame that asks for something malformed. */
class UsageFault extends Error {}

/**
 * The daemon: reports the fileserver's state to the coordinator every interval and runs the
 * coordinator's commands one at a time.
 */
export class FileserverAgent {
  private client: FleetClient | undefined;
  private fs: Fileserver | undefined;
  private planJson = "";
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private lastTick = 0;
  private intervalMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private stopWatchdog: (() => void) | undefined;

  constructor(
    private readonly cfg: FileserverConfig,
    private readonly deps: AgentDeps,
  ) {
    this.intervalMs = cfg.intervalMs;
  }

  async start(): Promise<void> {
    await this.refreshPlan();
    const client = new FleetClient({
      url: this.cfg.coordinator.url,
      urls: this.cfg.coordinator.urls,
      role: v1.Role.ROLE_FILESERVER,
      identity: this.cfg.identity,
      secret: this.deps.secret,
      ca: this.deps.ca,
      logger: this.deps.logger,
      agentVersion: this.deps.agentVersion ?? "pifleet-fileserver/0.1.0",
    });
    this.client = client;
    client.on("ready", (ack) => {
      this.deps.logger.info({ session: ack.sessionId }, "connected to the coordinator");
      if (ack.reportIntervalMs > 0 && ack.reportIntervalMs !== this.intervalMs) {
        this.intervalMs = Math.max(500, ack.reportIntervalMs);
        this.schedule();
      }
      void this.tick();
    });
    client.on("refused", (e) => this.deps.logger.error({ code: e.code, reason: e.message }, "coordinator refused this agent"));
    client.on("message", (env) => {
      if (env.body === "command" && env.command) void this.onCommand(env.command as v1.Command);
    });
    client.start();
    await this.tick();
    this.schedule();
    await this.deps.notifier?.ready(`reporting every ${this.intervalMs} ms`);
    // A report loop stuck for three intervals means a hung observation: let systemd restart us.
    this.stopWatchdog = this.deps.notifier?.startWatchdog(() => Date.now() - this.lastTick < 3 * this.intervalMs + 10_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopWatchdog?.();
    await this.deps.notifier?.stopping();
    await this.client?.stop();
  }

  private schedule(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  /** Re-reads the fleet file; a new plan gets a new Fileserver, a broken file keeps the last good one. */
  private async refreshPlan(): Promise<string | undefined> {
    let plan: FileserverView;
    try {
      // The agent's enrolled name is its fileserver's name in the fleet file: it owns that part only.
      plan = fileserverView(derivePlan(loadFleet(this.cfg.fleet)), this.cfg.identity);
    } catch (err) {
      if (!this.fs) throw err;
      return `fleet file: ${(err as Error).message} (still using the last good plan)`;
    }
    const json = JSON.stringify(plan);
    if (json !== this.planJson || !this.fs) {
      this.fs = await openFileserver({ plan, prefix: this.cfg.rootPrefix, live: this.cfg.live, logger: this.deps.logger, runner: this.deps.runner, dnsmasq: this.cfg.dnsmasq });
      this.planJson = json;
      this.deps.logger.info({ fleet: plan.fleet, pis: plan.pis.length, live: this.fs.live }, "plan loaded");
    }
    return undefined;
  }

  /** Observes and reports; skipped when the previous observation has not finished. */
  async tick(): Promise<v1.FileserverReport | undefined> {
    if (this.ticking) return undefined;
    this.ticking = true;
    try {
      const fleetProblem = await this.refreshPlan();
      const fs = this.fs!;
      const planned = await fs.planApply();
      const report = buildReport(fs.plan, this.cfg.identity, planned.observed, planned.diff.drift);
      if (fleetProblem) report.error = report.error ? `${fleetProblem}; ${report.error}` : fleetProblem;
      this.client?.send({ fileserverReport: report }, false);
      this.lastTick = Date.now();
      return report;
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, "report failed");
      this.client?.send(
        { fileserverReport: v1.FileserverReport.create({ fileserver: this.cfg.identity, timeMs: Date.now(), healthy: false, error: (err as Error).message }) },
        false,
      );
      this.lastTick = Date.now();
      return undefined;
    } finally {
      this.ticking = false;
    }
  }

  private async onCommand(cmd: v1.Command): Promise<void> {
    const result = await this.execute(cmd);
    this.client?.send({ commandResult: result });
    // Report the new state at once rather than at the next interval.
    void this.tick();
  }

  /** Runs one command frame to a CommandResult; never throws. Commands run one at a time. */
  execute(cmd: v1.Command): Promise<v1.CommandResult> {
    const run = async (): Promise<v1.CommandResult> => {
      const started = Date.now();
      const done = (ok: boolean, message: string) =>
        v1.CommandResult.create({ id: cmd.id, ok, message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}\n… (trimmed)` : message, durationMs: Date.now() - started });
      try {
        if (cmd.target && cmd.target !== this.cfg.identity) return done(false, `target: this is ${this.cfg.identity}, not ${cmd.target}`);
        const outcome = await this.withTimeout(cmd, this.dispatch(cmd));
        return done(!outcome.result || outcome.result.ok, summarize(outcome));
      } catch (err) {
        const e = err as Error;
        const prefix = err instanceof RefusedError ? "refused: " : "";
        if (!(err instanceof RefusedError || err instanceof UsageFault || err instanceof UnknownPiError || err instanceof PathError)) {
          this.deps.logger.error({ id: cmd.id, kind: cmd.kind, err: e.message }, "command failed");
        }
        return done(false, `${prefix}${e.message}`);
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async dispatch(cmd: v1.Command): Promise<Outcome> {
    const fs = this.fs!;
    const args = cmd.args ?? {};
    const dryRun = this.cfg.dryRun || flag(args, "dry_run") === true;
    const power = () => ({ force: cmd.force || flag(args, "force") === true, piPowered: flag(args, "pi_powered") });
    const pi = () => {
      if (!args.pi) throw new UsageFault("args.pi: required (a Pi name or address)");
      return args.pi;
    };
    switch (cmd.kind) {
      case "apply":
        return fs.apply(dryRun);
      case "rebuild":
        return fs.rebuild(pi(), power(), dryRun);
      case "rollback":
        return fs.rollback(pi(), power(), dryRun);
      case "sync-content":
        return fs.syncContent(await this.contentSource(args.dir), dryRun);
      default:
        throw new UsageFault(`kind: "${cmd.kind}" is not one of ${COMMAND_KINDS.join(", ")}`);
    }
  }

  /** A coordinator-supplied folder, taken under the root prefix and only from an allowed source. */
  private async contentSource(dir: string | undefined): Promise<string> {
    if (!dir) throw new UsageFault("args.dir: required (the folder holding the site)");
    const fsPath = checkAbsolute(dir, "args.dir");
    const under = (p: string) => (this.cfg.rootPrefix ? path.join(this.fs!.layout.prefix || this.cfg.rootPrefix, p) : p);
    const host = under(fsPath);
    const real = await realpath(host).catch(() => {
      throw new PathError(dir, "args.dir does not exist");
    });
    for (const source of this.cfg.contentSources) {
      const base = await realpath(under(source)).catch(() => undefined);
      if (base && isInside(base, real)) return real;
    }
    throw new PathError(dir, `args.dir must be inside ${this.cfg.contentSources.join(" or ")} (contentSources in the agent's config)`);
  }

  private withTimeout<T>(cmd: v1.Command, p: Promise<T>): Promise<T> {
    if (!cmd.timeoutMs) return p;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`still running after ${cmd.timeoutMs} ms; it continues, and later commands wait for it`)), cmd.timeoutMs);
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }
}

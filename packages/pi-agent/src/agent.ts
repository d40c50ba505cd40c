import { readFileSync } from "node:fs";
import { EventEmitter } from "node:events";
import type { Logger, Notifier } from "@pifleet/core";
import { FleetClient, SampleEncoder, v1 } from "@pifleet/proto";
import type { AgentConfig } from "./config.js";
import { createCollectors, type EnabledCollector } from "./collectors/registry.js";
import { ReportBuilder } from "./report-builder.js";
import { CommandRunner, type Exec } from "./commands.js";

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
})();

export interface PiAgentOptions {
  config: AgentConfig;
  /** The enrollment secret (the content of config.secretFile). */
  secret: string;
  /** PEM to trust for wss:// (the content of config.coordinator.ca). */
  ca?: string | Buffer;
  logger?: Logger;
  /** sd_notify; core's createNotifier() (inert when NOTIFY_SOCKET is unset). */
  notifier: Notifier;
  /** Replaces the configured collectors (tests). */
  collectors?: EnabledCollector[];
  /** Replaces how commands run (tests). */
  exec?: Exec;
}

export interface PiAgentEvents {
  /** Every reading, with the sample it went out as (null when sent as a PiReport to a coordinator before 0.2). */
  report: [report: v1.PiReport.$Properties, sent: boolean, sample: v1.PiSample.$Properties | null];
  command: [command: v1.Command.$Properties, result: v1.CommandResult.$Properties];
}

/** Watchdog pings stop when the report loop has not ticked for this many intervals. */
const STUCK_INTERVALS = 3;

/**
 * The daemon on each Pi: every interval it builds a reading (PiReport's absolute figures) from its
 * collectors and sends it as a compact PiSample (its static facts went in the hello) to
 * the coordinator over FleetClient (which reconnects with jittered back-off and queues reports
 * while disconnected; queued reports are marked `replayed`). It runs the coordinator's commands
 * and keeps systemd informed: READY=1 after the first report, WATCHDOG=1 while the loop ticks.
 */
export class PiAgent extends EventEmitter<PiAgentEvents> {
  readonly client: FleetClient;
  private readonly builder: ReportBuilder;
  /** Every reading goes through it, so the counter increases of consecutive samples add up. */
  private readonly encoder = new SampleEncoder({ agentVersion: `pi-agent/${AGENT_VERSION}`, nodeVersion: process.version, arch: process.arch });
  private connectedOnce = false;
  /** The facts the coordinator was last given (in a hello or a facts frame). */
  private sentFacts: v1.AgentFacts.$Properties | undefined;
  private readonly commands: CommandRunner;
  private readonly notifier: Notifier;
  private readonly log?: Logger;
  private intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopWatchdog: (() => void) | undefined;
  private building = false;
  private lastTickAt = 0;
  private running = false;
  /** Reports built since start. */
  reports = 0;

  constructor(private readonly opts: PiAgentOptions) {
    super();
    const { config } = opts;
    this.log = opts.logger;
    this.intervalMs = config.intervalMs;
    this.notifier = opts.notifier;
    const collectors = opts.collectors ?? createCollectors(config.collectors, { paths: config.paths, logger: opts.logger });
    this.builder = new ReportBuilder(config.identity, collectors, opts.logger);
    this.commands = new CommandRunner(config.identity, config.commands, opts.logger, opts.exec);
    this.client = new FleetClient({
      url: config.coordinator.url,
      urls: config.coordinator.urls,
      role: v1.Role.ROLE_PI,
      identity: config.identity,
      secret: opts.secret,
      localAddress: config.localAddress,
      maxQueue: config.queue,
      ca: opts.ca,
      agentVersion: `pi-agent/${AGENT_VERSION}`,
      facts: () => (this.sentFacts = this.encoder.facts),
      logger: opts.logger,
    });
    this.client.on("ready", (ack) => this.onReady(ack));
    this.client.on("disconnected", (why) => {
      if (!this.running) return;
      this.log?.warn({ why }, "disconnected from the coordinator; queueing reports");
      void this.notifier.status(`disconnected (${why}); reconnecting`);
    });
    this.client.on("message", (env) => {
      if (env.body === "command" && env.command) void this.onCommand(env.command);
    });
  }

  get interval(): number {
    return this.intervalMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.log?.info({ coordinator: this.opts.config.coordinator.url, collectors: this.builder.names, intervalMs: this.intervalMs }, "pi agent starting");
    this.client.start();
    this.schedule();
    void this.tick();
    const stuckMs = STUCK_INTERVALS * this.intervalMs + 1000;
    this.stopWatchdog = this.notifier.startWatchdog(() => performance.now() - this.lastTickAt < stuckMs);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    this.stopWatchdog?.();
    await this.notifier.stopping();
    await this.client.stop();
    this.notifier.close();
    this.log?.info({ reports: this.reports }, "pi agent stopped");
  }

  /** Builds and sends one report; a tick still building when the next is due is not doubled. */
  async tick(): Promise<void> {
    if (this.building) return;
    this.building = true;
    try {
      const report = await this.builder.build();
      this.lastTickAt = performance.now();
      this.reports++;
      const { sample } = this.encoder.encode(report);
      // Until a coordinator has answered, assume one that takes samples; one before 0.2 gets PiReports.
      const samples = !this.connectedOnce || this.client.acceptsSamples;
      let sent: boolean;
      // The client keeps the very object it cannot send now; it goes out after a reconnect, marked replayed.
      if (samples) {
        // The sample is read with the facts the coordinator has: new ones go first. (The hello of a
        // connection made before the first reading carried facts without interfaces; facts that
        // change while disconnected go in the next hello.)
        if (this.client.ready && this.encoder.facts !== this.sentFacts) {
          if (this.client.send({ facts: this.encoder.facts }, false)) this.sentFacts = this.encoder.facts;
        }
        sent = this.client.send({ piSample: sample });
        if (!sent) sample.replayed = true;
      } else {
        sent = this.client.send({ piReport: report });
        if (!sent) report.replayed = true;
      }
      if (this.reports === 1) void this.notifier.ready(`reporting every ${this.intervalMs} ms`);
      this.emit("report", report, sent, samples ? sample : null);
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, "report failed");
    } finally {
      this.building = false;
    }
  }

  private schedule(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  private onReady(ack: v1.HelloAck): void {
    this.connectedOnce = true;
    if (!ack.acceptsSamples) this.log?.warn("the coordinator predates pifleet 0.2: sending full PiReports (about 4× the bytes)");
    this.log?.info({ session: ack.sessionId, queued: this.client.queued }, "connected to the coordinator");
    void this.notifier.status(`connected; reporting every ${this.intervalMs} ms`);
    // The coordinator judges a Pi by the interval it expects; follow it when it names one.
    const wanted = ack.reportIntervalMs;
    if (wanted && wanted !== this.intervalMs) {
      this.intervalMs = Math.min(600_000, Math.max(100, wanted));
      this.builder.capDeadlines(Math.floor(this.intervalMs * 0.8));
      this.log?.info({ intervalMs: this.intervalMs }, "report interval set by the coordinator");
      if (this.running) this.schedule();
    }
  }

  private async onCommand(command: v1.Command.$Properties): Promise<void> {
    const result = await this.commands.run(command);
    this.client.send({ commandResult: result });
    this.emit("command", command, result);
  }
}

import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createLogger, type Logger } from "@pifleet/core";
import { piStateName, v1 } from "@pifleet/proto";
import { Authenticator } from "./auth.js";
import { CommandRouter, type CommandOptions, type CommandResult } from "./commands.js";
import { defaultSettings, type CoordinatorSettings } from "./config.js";
import type { DesiredState } from "./desired.js";
import { EventLog } from "./event-log.js";
import { FeedHub } from "./feed.js";
import { FleetState, type PiEntry, type RecoveryState } from "./fleet-state.js";
import { Gateway, type Operations } from "./gateway.js";
import type { Health } from "./judge.js";
import { Metrics } from "./metrics.js";
import { RefusalLog } from "./refusal-log.js";
import { Retention, type RetentionSettings } from "./retention.js";
import { CoordinatorServer } from "./server.js";
import type { EventInput, Store } from "./store/types.js";

/** How often a slice of the Pis' last reports is written to the database. */
const FLUSH_TICK_MS = 100;

export interface CoordinatorOptions {
  desired: DesiredState;
  store: Store;
  settings?: Partial<CoordinatorSettings>;
  /** Default `::` (dual-stack) port 7300; port 0 picks a free one. */
  listen?: { host?: string; port?: number };
  tls?: { cert: string; key: string };
  /** Serves GET / and the files under it (the dashboard). */
  staticDir?: string;
  operations?: Operations;
  /** The audit log's retention (export, then removal); none when absent. */
  retention?: RetentionSettings;
  logger?: Logger;
}

/**
 * The coordinator: authenticates agents and watchers, judges every Pi's health from its reports,
 * keeps state and the audit log in the store, and streams the fleet to watchers.
 *
 * For the recovery engine: `health(pi)` is the judge's verdict, `setRecoveryState(pi, s|null)`
 * imposes or lifts a recovery state, `audit()` writes an event, the store holds power intents
 * (openIntent/closeIntent/openIntents), `fleet.on("state"|"report", …)` are the hooks, and
 * `setOperations()` plugs in operator actions.
 */
export class Coordinator {
  readonly settings: CoordinatorSettings;
  readonly fleet: FleetState;
  readonly events: EventLog;
  /** Repeated refusals, summed up. */
  readonly refusals: RefusalLog;
  readonly retention: Retention | undefined;
  readonly metrics = new Metrics();
  readonly logger: Logger;
  private readonly feed: FeedHub;
  private readonly commands = new CommandRouter();
  private readonly gateway: Gateway;
  private readonly http: CoordinatorServer;
  private operations: Operations | undefined;
  /** Pis whose last report is not yet in the database, oldest first (flag on the entry: no Set churn). */
  private storeQueue: PiEntry[] = [];
  private storeHead = 0;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private startedAt = 0;
  private lastRevocationCheck = Date.now();
  /** Event-loop delay since the last /metrics scrape: a stalled loop delays every report. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private address_: AddressInfo | undefined;
  /** Who may connect as a Pi agent; the same Set the authenticator reads, so a reload changes it in place. */
  private readonly planned = new Set<string>();

  constructor(private readonly o: CoordinatorOptions) {
    this.logger = o.logger ?? createLogger("coordinator");
    const base = defaultSettings(o.settings?.reportIntervalMs);
    this.settings = { ...base, ...o.settings };
    const s = this.settings;
    this.operations = o.operations;
    o.store.onError = (err) => this.logger.error({ err: err.message }, "database write failed");
    this.fleet = new FleetState(o.desired.pis, s, { fileserver: o.desired.fileserver });
    this.fleet.restore(o.store.piStates());
    this.events = new EventLog(o.store, s.recentEvents, this.logger);
    this.events.on("event", (e) => this.metrics.events.inc({ kind: e.kind }));
    this.refusals = new RefusalLog(this.events, { quietMs: s.refusalQuietMs, maxSpanMs: s.refusalMaxSpanMs, maxKeys: 10_000, newPerSecond: 20, newBurst: 100 });
    this.retention = o.retention && new Retention(o.store, this.events, o.retention, this.logger);
    this.feed = new FeedHub(this.fleet, this.events, { fleetName: o.desired.fleet, batchMs: s.feedBatchMs, maxFrameBytes: s.maxFrameBytes, maxBufferedBytes: s.maxWatcherBufferBytes }, this.metrics, this.logger);

    this.fleet.on("changed", (e) => {
      if (e.storeQueued) return;
      e.storeQueued = true;
      this.storeQueue.push(e);
    });
    this.fleet.on("state", (c) => {
      // State changes are written at once; only last-report churn waits for the periodic flush.
      const e = this.fleet.pis.get(c.pi)!;
      this.saveStates([e]);
      if (!c.logged) this.events.append({ kind: "state", subject: c.pi, message: `${c.from} → ${c.to}: ${c.reason}`, actor: c.actor, fields: { from: c.from, to: c.to, reason: c.reason, health: c.health }, timeMs: c.timeMs });
      this.logger.info({ pi: c.pi, from: c.from, to: c.to, reason: c.reason, actor: c.actor }, "state");
    });
    this.fleet.on("fileserverHealth", (c) => {
      this.events.append({ kind: "fileserver", subject: c.name, message: `${c.healthy ? "healthy" : "unhealthy"}: ${c.reason}`, actor: "judge", fields: { healthy: String(c.healthy) } });
    });
    this.commands.onDone = (target, kind, r) => {
      this.metrics.commands.inc({ kind, outcome: r.ok ? "ok" : "failed" });
      this.events.append({ kind: "command", subject: target, message: `${kind}: ${r.ok ? "ok" : "failed"} — ${r.message}`, actor: "coordinator", fields: { id: r.id, kind, ok: String(r.ok), durationMs: String(r.durationMs) } });
    };

    const planned = this.planned;
    for (const p of o.desired.pis) planned.add(p.name);
    this.gateway = new Gateway({
      auth: new Authenticator(o.store, { pis: planned, fileserver: o.desired.fileserver }),
      fleet: this.fleet,
      feed: this.feed,
      log: this.events,
      refusals: this.refusals,
      commands: this.commands,
      metrics: this.metrics,
      logger: this.logger,
      operations: () => this.operations,
      fleetHasPi: (name) => planned.has(name),
      settings: s,
    });
    this.http = new CoordinatorServer({
      host: o.listen?.host ?? "::",
      port: o.listen?.port ?? 7300,
      tls: o.tls,
      // Frames a little over the limit still reach decodeEnvelope and get an ErrorFrame; far over, ws cuts them off unread.
      maxPayload: 2 * s.maxFrameBytes,
      staticDir: o.staticDir,
      limits: { headersTimeoutMs: s.headersTimeoutMs, requestTimeoutMs: s.requestTimeoutMs, keepAliveTimeoutMs: s.keepAliveTimeoutMs, maxConnections: s.maxConnections, maxPendingPerAddress: s.maxPendingPerAddress },
      metricsRegistry: this.metrics,
      logger: this.logger,
      onSocket: (ws, req, endpoint, authenticated) => this.gateway.accept(ws, req, endpoint, authenticated),
      healthz: () => this.healthz(),
      metrics: () => this.metrics.render(),
    });
    this.registerGauges();
  }

  get store(): Store {
    return this.o.store;
  }

  async start(): Promise<AddressInfo> {
    this.startedAt = Date.now();
    this.address_ = await this.http.listen();
    this.loopDelay.enable();
    this.refusals.start();
    this.retention?.start();
    const sweepMs = Math.max(10, Math.min(100, Math.floor(this.settings.reportIntervalMs / 20)));
    this.timers.push(
      setInterval(() => this.fleet.sweep(), sweepMs),
      setInterval(() => this.flushSlice(), FLUSH_TICK_MS),
      setInterval(() => this.checkRevocations(), 2000),
    );
    this.logger.info({ host: this.address_.address, port: this.address_.port, pis: this.fleet.pis.size, tls: Boolean(this.o.tls) }, "coordinator listening");
    return this.address_;
  }

  /** Stops serving: closes every connection, sends what is pending, writes every Pi's state. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.loopDelay.disable();
    await this.retention?.stop();
    this.refusals.stop();
    this.feed.flush();
    const listening = this.http.close(); // stops accepting at once, so no agent slips back in
    await this.gateway.closeAll(1001, "coordinator stopping");
    this.feed.close();
    await listening;
    this.saveStates(this.fleet.pis.values());
    this.storeQueue = [];
    this.storeHead = 0;
    this.logger.info("coordinator stopped");
  }

  address(): AddressInfo {
    if (!this.address_) throw new Error("coordinator not started");
    return this.address_;
  }

  /** ws:// or wss:// URL of an endpoint on this coordinator, via `host` (default the loopback of the listening family). */
  url(endpoint: "agent" | "feed", host?: string): string {
    const a = this.address();
    const h = host ?? (a.family === "IPv6" ? "::1" : "127.0.0.1");
    return `${this.o.tls ? "wss" : "ws"}://${h.includes(":") ? `[${h}]` : h}:${a.port}/${endpoint}`;
  }

  /**
   * Takes a new desired state (a fleet-file reload) without dropping any connection but those of
   * Pis no longer in the fleet: their agents are told why and closed.
   */
  replan(desired: DesiredState): { added: string[]; removed: string[]; changed: string[] } {
    if (desired.fleet !== this.o.desired.fleet) throw new Error(`the fleet file names fleet "${desired.fleet}", this coordinator runs "${this.o.desired.fleet}": restart to change fleets`);
    if (desired.fileserver !== this.o.desired.fileserver) throw new Error(`the fleet file's fileserver is "${desired.fileserver ?? "none"}", this coordinator runs "${this.o.desired.fileserver ?? "none"}": restart to change the fileserver`);
    const diff = this.fleet.replan(desired.pis);
    this.planned.clear();
    for (const p of desired.pis) this.planned.add(p.name);
    this.o.desired.pis = desired.pis;
    for (const name of diff.removed) this.gateway.unplanned(name);
    return diff;
  }

  setOperations(ops: Operations | undefined): void {
    this.operations = ops;
  }

  sendCommand(target: string, kind: string, args: Record<string, string> = {}, opts: CommandOptions = {}): Promise<CommandResult> {
    return this.commands.send(this.gateway.agents.get(target), target, kind, args, opts);
  }

  audit(e: EventInput): v1.FleetEvent {
    return this.events.append(e);
  }

  health(pi: string): Health {
    return this.fleet.health(pi);
  }

  setRecoveryState(pi: string, state: RecoveryState | null, reason: string, actor = "recovery"): void {
    this.fleet.setRecoveryState(pi, state, reason, actor);
  }

  fileserverHealthy(): boolean {
    return this.fleet.fileserverHealthy();
  }

  connectedAgents(): string[] {
    return [...this.gateway.agents.keys()];
  }

  private healthz(): object {
    const states: Record<string, number> = {};
    for (const [s, n] of this.fleet.stateCounts()) if (n > 0) states[piStateName(s)] = n;
    return {
      status: "ok",
      fleet: this.o.desired.fleet,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      pis: this.fleet.pis.size,
      states,
      agentsConnected: this.gateway.agents.size,
      watchers: this.feed.size,
      fileserverHealthy: this.fleet.fileserverHealthy(),
    };
  }

  private registerGauges(): void {
    const m = this.metrics;
    m.gauge("pifleet_connections", "Open WebSocket connections (any phase).", () => this.gateway.connections);
    m.gauge("pifleet_agents_connected", "Authenticated agent connections.", () => this.gateway.agents.size);
    m.gauge("pifleet_watchers", "Authenticated feed connections.", () => this.feed.size);
    m.gauge("pifleet_pis", "Pis by displayed state.", () =>
      Object.values(v1.PiState)
        .filter((v): v is v1.PiState => typeof v === "number")
        .map((s) => [{ state: piStateName(s) }, this.fleet.stateCounts().get(s) ?? 0] as [Record<string, string>, number]),
    );
    m.gauge("pifleet_fileserver_healthy", "1 when the fileserver reports healthy on time.", () => (this.fleet.fileserverHealthy() ? 1 : 0));
    m.gauge("pifleet_commands_in_flight", "Commands awaiting a result.", () => this.commands.inFlight);
    m.gauge("pifleet_event_loop_delay_seconds", "Event-loop delay since the previous scrape (10 ms resolution).", () => {
      const d = this.loopDelay;
      const rows: Array<[Record<string, string>, number]> = [
        [{ quantile: "0.5" }, d.count ? d.percentile(50) / 1e9 : 0],
        [{ quantile: "0.99" }, d.count ? d.percentile(99) / 1e9 : 0],
        [{ quantile: "1" }, d.count ? d.max / 1e9 : 0],
      ];
      d.reset();
      return rows;
    });
  }

  private saveStates(entries: Iterable<PiEntry>): void {
    const rows = [];
    for (const e of entries) {
      rows.push(this.fleet.record(e));
      e.storeQueued = false;
    }
    try {
      this.o.store.savePiStates(rows);
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, "cannot save Pi states");
    }
  }

  /**
   * Writes last-report churn as a steady trickle: every FLUSH_TICK_MS the Pis longest waiting,
   * enough of them that each is written about once per stateFlushMs. The whole fleet at once
   * every stateFlushMs (10,000 rows, cloned for the writer thread in one go) stalled the feed by
   * tens of milliseconds; 200 rows every 100 ms costs well under one.
   */
  private flushSlice(): void {
    const n = Math.max(1, Math.ceil((this.fleet.pis.size * FLUSH_TICK_MS) / this.settings.stateFlushMs));
    const q = this.storeQueue;
    const batch: PiEntry[] = [];
    while (this.storeHead < q.length && batch.length < n) {
      const e = q[this.storeHead++];
      // Written meanwhile (a state change is written at once): nothing left to do for it.
      if (e.storeQueued) batch.push(e);
    }
    if (this.storeHead === q.length) {
      this.storeQueue = [];
      this.storeHead = 0;
    } else if (this.storeHead > 4096) {
      this.storeQueue = q.slice(this.storeHead);
      this.storeHead = 0;
    }
    if (batch.length) this.saveStates(batch);
  }

  private checkRevocations(): void {
    try {
      if (!this.o.store.changedElsewhere()) return;
      const since = this.lastRevocationCheck - 5000;
      this.lastRevocationCheck = Date.now();
      const r = this.o.store.revokedSince(since);
      if (r.agents.length || r.tokens.length) this.gateway.revoked(r.agents, r.tokens);
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, "cannot check revocations");
    }
  }
}

import { EventEmitter } from "node:events";
import type { Logger } from "@pifleet/core";
import { FleetClient, SampleEncoder, v1 } from "@pifleet/proto";
import { LeanAgent } from "./lean-agent.js";

export interface SimAgentSpec {
  identity: string;
  secret: string;
}

export type SimFault = "apache-down" | "probe-fail" | "rootfs-stalled";

export interface SimFleetOptions {
  url: string;
  agents: SimAgentSpec[];
  intervalMs?: number;
  localAddress?: string;
  /** Handshakes in flight at once while connecting (a restart storm is the coordinator's problem, not the bench's). */
  connectConcurrency?: number;
  maxBackoffMs?: number;
  /** Apache scoreboard length (one character per worker slot; prefork's default is 256). */
  scoreboardSlots?: number;
  /**
   * Lean agents (for benchmarks): a report's content is re-encoded every `leanRefresh` reports
   * and otherwise sent as the same bytes with a fresh time_ms, over a minimal client. Default:
   * FleetClient, every report encoded afresh.
   */
  lean?: boolean;
  leanRefresh?: number;
  /** "report": agents before pifleet 0.2, sending PiReport and no facts. Default "sample". */
  format?: "sample" | "report";
  logger?: Logger;
}

/** The two transports a simulated agent can use. */
interface Transport {
  readonly ready: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface SimAgent {
  spec: SimAgentSpec;
  client: Transport;
  fleetClient?: FleetClient;
  lean?: LeanAgent;
  /** Lean agents: the encoded report without time_ms, and how many more times it is reused. */
  template?: Uint8Array;
  encoder: SampleEncoder;
  reuse: number;
  fault: SimFault | null;
  load: number;
  rx: number;
  tx: number;
  accesses: number;
}

const TICK_MS = 10;

/**
 * Many simulated Pi agents in one process, each with its own authenticated FleetClient, reporting
 * every interval with phases spread evenly across it (so a 10,000-agent fleet sends a steady
 * 10,000 reports/s rather than 10,000 at once). Used by tests and the feed benchmark.
 */
export class SimFleet extends EventEmitter<{ refused: [identity: string, error: v1.ErrorFrame] }> {
  private readonly agents: SimAgent[];
  private readonly buckets: SimAgent[][];
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private t0 = 0;
  private readonly intervalMs: number;
  private readonly scoreboard: string;
  sent = 0;

  constructor(private readonly o: SimFleetOptions) {
    super();
    this.intervalMs = o.intervalMs ?? 1000;
    const slots = o.scoreboardSlots ?? 256;
    this.scoreboard = `${"W".repeat(3)}${"_".repeat(7)}${".".repeat(Math.max(0, slots - 10))}`.slice(0, slots);
    this.agents = o.agents.map((spec) => {
      const a: SimAgent = {
        spec,
        client: undefined as unknown as Transport,
        encoder: new SampleEncoder({ agentVersion: "sim", nodeVersion: process.version, arch: process.arch }),
        fault: null,
        reuse: 0,
        load: 0.2 + Math.random() * 0.5,
        rx: Math.floor(Math.random() * 1e9),
        tx: Math.floor(Math.random() * 1e9),
        accesses: Math.floor(Math.random() * 1e6),
      };
      // Primes the facts (interfaces, memory, scoreboard) the hello carries.
      a.encoder.encode(simReport(spec.identity, a, this.scoreboard));
      const facts = o.format === "report" ? undefined : () => a.encoder.facts;
      if (o.lean) {
        a.lean = new LeanAgent({ url: o.url, identity: spec.identity, secret: spec.secret, localAddress: o.localAddress, maxBackoffMs: o.maxBackoffMs, logger: o.logger, facts: facts?.(), onRefused: (e) => this.emit("refused", spec.identity, e) });
        a.client = a.lean;
      } else {
        const fc = new FleetClient({
          url: o.url,
          role: v1.Role.ROLE_PI,
          identity: spec.identity,
          secret: spec.secret,
          localAddress: o.localAddress,
          maxBackoffMs: o.maxBackoffMs ?? 1000,
          initialBackoffMs: 100,
          agentVersion: "sim",
          facts,
          logger: o.logger,
        });
        fc.on("refused", (e) => this.emit("refused", spec.identity, e));
        a.fleetClient = fc;
        a.client = {
          get ready() {
            return fc.ready;
          },
          start: () =>
            new Promise<void>((resolve) => {
              fc.once("ready", () => resolve());
              fc.start();
            }),
          stop: () => fc.stop(),
        };
      }
      return a;
    });
    const n = Math.max(1, Math.round(this.intervalMs / TICK_MS));
    this.buckets = Array.from({ length: n }, () => []);
    this.agents.forEach((a, i) => this.buckets[Math.floor((i * n) / this.agents.length)].push(a));
  }

  get connected(): number {
    let n = 0;
    for (const a of this.agents) if (a.client.ready) n++;
    return n;
  }

  /** Connects every agent (bounded concurrency), then starts reporting. Resolves once all are connected. */
  async start(): Promise<void> {
    const limit = this.o.connectConcurrency ?? 200;
    let next = 0;
    await new Promise<void>((resolve) => {
      let done = 0;
      const launch = () => {
        if (next >= this.agents.length) return;
        const a = this.agents[next++];
        void a.client.start().then(() => {
          done++;
          if (done === this.agents.length) resolve();
          else launch();
        });
      };
      if (this.agents.length === 0) resolve();
      for (let i = 0; i < Math.min(limit, this.agents.length); i++) launch();
    });
    this.t0 = Date.now();
    this.tick = 0;
    this.schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.agents.map((a) => a.client.stop()));
  }

  setFault(identity: string, fault: SimFault | null): void {
    const a = this.agents.find((x) => x.spec.identity === identity);
    if (!a) throw new Error(`no simulated agent ${identity}`);
    a.fault = fault;
    a.reuse = 0;
  }

  private schedule(): void {
    const due = this.t0 + (this.tick + 1) * TICK_MS;
    this.timer = setTimeout(() => this.onTick(), Math.max(0, due - Date.now()));
  }

  private onTick(): void {
    // Catch up on ticks a busy loop missed, so every agent still reports once per interval.
    const target = Math.floor((Date.now() - this.t0) / TICK_MS);
    while (this.tick < target) {
      for (const a of this.buckets[this.tick % this.buckets.length]) this.report(a);
      this.tick++;
    }
    this.schedule();
  }

  private report(a: SimAgent): void {
    if (!a.client.ready) return;
    a.load = Math.max(0, a.load + (Math.random() - 0.5) * 0.1);
    a.rx += 20_000 + Math.floor(Math.random() * 5000);
    a.tx += 150_000 + Math.floor(Math.random() * 50_000);
    a.accesses += 30 + Math.floor(Math.random() * 10);
    let sent: boolean;
    const legacy = this.o.format === "report";
    if (a.lean) {
      // The encoder sees every reading, so the counter increases stay those of one interval.
      const next = legacy ? undefined : a.encoder.encode(simReport(a.spec.identity, a, this.scoreboard)).sample;
      if (!a.template || a.reuse <= 0) {
        a.template = next ? v1.PiSample.encode({ ...next, timeMs: undefined }).finish() : v1.PiReport.encode({ ...simReport(a.spec.identity, a, this.scoreboard), timeMs: undefined }).finish();
        a.reuse = this.o.leanRefresh ?? 10;
      }
      a.reuse--;
      sent = a.lean.sendReport(withTime(a.template, Date.now(), legacy ? 2 : 1), legacy ? 14 : 22);
    } else if (legacy) {
      sent = a.fleetClient!.send({ piReport: simReport(a.spec.identity, a, this.scoreboard) }, false);
    } else {
      const { sample, factsChanged } = a.encoder.encode(simReport(a.spec.identity, a, this.scoreboard));
      if (factsChanged) a.fleetClient!.send({ facts: a.encoder.facts }, false);
      sent = a.fleetClient!.send({ piSample: sample }, false);
    }
    if (sent) this.sent++;
  }
}

/** A report's bytes with time_ms (PiSample field 1, PiReport field 2) appended: a parser keeps the last value of a field. */
function withTime(template: Uint8Array, timeMs: number, field: number): Uint8Array {
  const out = Buffer.allocUnsafe(template.byteLength + 11);
  out.set(template, 0);
  let p = template.byteLength;
  out[p++] = field << 3;
  let v = timeMs;
  while (v >= 128) {
    out[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  out[p++] = v;
  return out.subarray(0, p);
}

/** A plausible reading from a busy Pi 3 serving Apache+PHP (the seed's workload), with 3 interfaces. */
export function simReport(
  pi: string,
  s: { load: number; rx: number; tx: number; accesses: number; fault: SimFault | null },
  scoreboard: string,
): v1.PiReport.$Properties {
  const busy = 3 + Math.floor(s.load * 4);
  return {
    pi,
    timeMs: Date.now(),
    load: { one: s.load, five: s.load * 0.9, fifteen: s.load * 0.8 },
    cpuPercent: Math.min(100, s.load * 25),
    memTotalBytes: 970_592_256,
    memAvailableBytes: 512_000_000 + Math.floor(Math.random() * 1e7),
    temperatureC: 48 + s.load * 5,
    net: [
      { interface: "eth0", rxBytes: s.rx, txBytes: s.tx, rxPackets: Math.floor(s.rx / 900), txPackets: Math.floor(s.tx / 1200) },
      { interface: "eth0.131", rxBytes: Math.floor(s.rx / 2), txBytes: s.tx, rxPackets: Math.floor(s.rx / 1800), txPackets: Math.floor(s.tx / 1200) },
      { interface: "eth0.2", rxBytes: Math.floor(s.tx / 3), txBytes: Math.floor(s.rx / 4), rxPackets: Math.floor(s.tx / 3000), txPackets: Math.floor(s.rx / 4000) },
    ],
    rootfs: { stalled: s.fault === "rootfs-stalled", latencyMs: s.fault === "rootfs-stalled" ? 5000 : 2 },
    apache:
      s.fault === "apache-down"
        ? { reachable: false, error: "connect ECONNREFUSED 127.0.0.1:80" }
        : { reachable: true, busyWorkers: busy, idleWorkers: 10 - Math.min(busy, 9), requestsPerSec: 31.5, totalAccesses: s.accesses, uptimeS: 86_400, scoreboard },
    probe: s.fault === "probe-fail" ? { ok: false, status: 500, latencyMs: 12, error: "" } : { ok: true, status: 200, latencyMs: 6 },
    uptimeS: 86_400,
  };
}

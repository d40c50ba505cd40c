import { readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { FleetError, formatPath, type FieldIssue } from "@pifleet/core";
import { MAX_FRAME_BYTES } from "@pifleet/proto";
import { LoadBalancerSectionSchema, RecoverySectionSchema, SwitchSectionSchema, type RecoverySection } from "./remediation.js";
import { HaSectionSchema, type HaSection } from "./ha/config.js";
import { resolveRetention, RetentionSectionSchema, type RetentionSettings } from "./retention.js";

/** Tunables of a running coordinator; every one has a default. */
export interface CoordinatorSettings {
  /** How often agents report (told to them in HelloAck). */
  reportIntervalMs: number;
  /** Silence after which a Pi is suspect (default 2 report intervals). */
  suspectAfterMs: number;
  /** Silence after which a Pi is down (default 3 report intervals). */
  downAfterMs: number;
  /** After a start, Pis not yet reconnected keep their stored state this long. */
  startupGraceMs: number;
  /** Largest protobuf frame accepted or sent. */
  maxFrameBytes: number;
  /** A connection that has not said hello by then is refused. */
  helloTimeoutMs: number;
  /** The feed gathers changes at most this long before sending. */
  feedBatchMs: number;
  /** Events a new watcher gets in its snapshot. */
  recentEvents: number;
  /** How often the Pis' last reports are written to the database (state changes are written at once). */
  stateFlushMs: number;
  /** Unsent bytes a watcher may fall behind by before it is dropped. */
  maxWatcherBufferBytes: number;
  /** Operator requests per second per connection (a token's connections together: twice this). */
  operatorRequestsPerSecond: number;
  operatorRequestBurst: number;
  /** Requests over that limit a connection may send per minute; beyond, it is closed. */
  operatorOverLimitPerMinute: number;
  /** A refusal that repeats is summed up in one event once quiet this long (or every refusalMaxSpanMs). */
  refusalQuietMs: number;
  refusalMaxSpanMs: number;
  /** HTTP: the whole request head must arrive within this (slowloris), the whole request within requestTimeoutMs. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** HTTP: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open TCP connections in all; beyond, new ones are closed at once. */
  maxConnections: number;
  /** Connections from one address not yet authenticated (HTTP requests, WebSockets before hello). */
  maxPendingPerAddress: number;
}

export function defaultSettings(reportIntervalMs = 1000): CoordinatorSettings {
  return {
    reportIntervalMs,
    suspectAfterMs: 2 * reportIntervalMs,
    downAfterMs: 3 * reportIntervalMs,
    // FleetClient's longest reconnect back-off: a restart does not mark live Pis down.
    startupGraceMs: 15_000,
    maxFrameBytes: MAX_FRAME_BYTES,
    helloTimeoutMs: 5_000,
    feedBatchMs: 5,
    recentEvents: 100,
    stateFlushMs: 5_000,
    maxWatcherBufferBytes: 32 * 1024 * 1024,
    operatorRequestsPerSecond: 2,
    operatorRequestBurst: 10,
    operatorOverLimitPerMinute: 20,
    refusalQuietMs: 60_000,
    refusalMaxSpanMs: 3_600_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
    maxConnections: 20_000,
    maxPendingPerAddress: 256,
  };
}

export interface CoordinatorConfig {
  file: string;
  fleet: string;
  listen: { host: string; port: number };
  database: string;
  tls?: { cert: string; key: string };
  staticDir?: string;
  settings: CoordinatorSettings;
  recovery: RecoverySection;
  retention: RetentionSettings;
  switch: { enabled: boolean };
  loadBalancer: { enabled: boolean; sync: boolean };
  /** High availability on etcd; undefined: one coordinator on SQLite. */
  ha?: HaSection;
}

const ms = (min: number, max: number) => z.int().min(min).max(max);

export const CoordinatorConfigSchema = z
  .strictObject({
    /** The fleet file: the desired state. */
    fleet: z.string().min(1),
    listen: z
      .strictObject({
        host: z.string().min(1).default("::"),
        port: z.int().min(0).max(65535).default(7300),
      })
      .prefault({}),
    database: z.string().min(1).default("/var/lib/pifleet/coordinator.db"),
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    staticDir: z.string().min(1).optional(),
    reportIntervalMs: ms(100, 60_000).default(1000),
    suspectAfterMs: ms(100, 3_600_000).optional(),
    downAfterMs: ms(100, 3_600_000).optional(),
    startupGraceMs: ms(0, 3_600_000).optional(),
    maxFrameBytes: z.int().min(4096).max(64 * 1024 * 1024).default(MAX_FRAME_BYTES),
    helloTimeoutMs: ms(100, 600_000).default(5000),
    feedBatchMs: ms(0, 1000).default(5),
    recentEvents: z.int().min(0).max(10_000).default(100),
    stateFlushMs: ms(100, 600_000).default(5000),
    operatorRequestsPerSecond: z.number().gt(0).max(1000).default(2),
    operatorRequestBurst: z.int().min(1).max(10_000).default(10),
    operatorOverLimitPerMinute: z.int().min(1).max(100_000).default(20),
    refusalQuietMs: ms(100, 86_400_000).default(60_000),
    refusalMaxSpanMs: ms(1000, 86_400_000).default(3_600_000),
    /** The HTTP server's limits (slow and idle sockets, connection caps). */
    http: z
      .strictObject({
        headersTimeoutMs: ms(100, 600_000).default(10_000),
        requestTimeoutMs: ms(100, 3_600_000).default(30_000),
        keepAliveTimeoutMs: ms(100, 600_000).default(5_000),
        maxConnections: z.int().min(1).max(1_000_000).default(20_000),
        maxPendingPerAddress: z.int().min(1).max(1_000_000).default(256),
      })
      .prefault({}),
    /** The audit log's retention: old events are exported to files, then removed. */
    retention: RetentionSectionSchema,
    /** The recovery engine; off unless enabled. */
    recovery: RecoverySectionSchema,
    /** Drive the fleet file's switch (PoE power) over SNMP. */
    switch: SwitchSectionSchema,
    /** Drive the fleet file's load balancer; `sync: false` when its servers are in its own config. */
    loadBalancer: LoadBalancerSectionSchema,
    /** Several coordinators, one leader elected on etcd (see docs/ha.md). */
    ha: HaSectionSchema,
  })
  .superRefine((c, ctx) => {
    const suspect = c.suspectAfterMs ?? 2 * c.reportIntervalMs;
    const down = c.downAfterMs ?? 3 * c.reportIntervalMs;
    if (suspect < c.reportIntervalMs) ctx.addIssue({ code: "custom", path: ["suspectAfterMs"], message: `must be at least reportIntervalMs (${c.reportIntervalMs})` });
    if (down <= suspect) ctx.addIssue({ code: "custom", path: ["downAfterMs"], message: `must be greater than suspectAfterMs (${suspect})` });
    if (c.http.requestTimeoutMs < c.http.headersTimeoutMs) ctx.addIssue({ code: "custom", path: ["http", "requestTimeoutMs"], message: `must be at least http.headersTimeoutMs (${c.http.headersTimeoutMs})` });
  });

/** A coordinator config that cannot be used; each issue names its field (printed like a fleet file error). */
export class ConfigError extends FleetError {
  constructor(issues: FieldIssue[], file?: string) {
    super(issues, file);
    this.name = "ConfigError";
  }
}

export function parseCoordinatorConfig(text: string, file: string): CoordinatorConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, message: e.message.split("\n")[0] })), file);
  }
  const result = CoordinatorConfigSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => ({
        path: formatPath(i.path),
        message: i.code === "unrecognized_keys" ? `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}` : i.message,
      })),
      file,
    );
  }
  const c = result.data;
  // Paths in the file are relative to the file, as a person reading it would expect.
  const dir = path.dirname(path.resolve(file));
  const abs = (p: string) => path.resolve(dir, p);
  const settings = defaultSettings(c.reportIntervalMs);
  return {
    file,
    fleet: abs(c.fleet),
    listen: c.listen,
    database: c.database === ":memory:" ? c.database : abs(c.database),
    tls: c.tls && { cert: abs(c.tls.cert), key: abs(c.tls.key) },
    staticDir: c.staticDir && abs(c.staticDir),
    settings: {
      ...settings,
      suspectAfterMs: c.suspectAfterMs ?? settings.suspectAfterMs,
      downAfterMs: c.downAfterMs ?? settings.downAfterMs,
      startupGraceMs: c.startupGraceMs ?? settings.startupGraceMs,
      maxFrameBytes: c.maxFrameBytes,
      helloTimeoutMs: c.helloTimeoutMs,
      feedBatchMs: c.feedBatchMs,
      recentEvents: c.recentEvents,
      stateFlushMs: c.stateFlushMs,
      operatorRequestsPerSecond: c.operatorRequestsPerSecond,
      operatorRequestBurst: c.operatorRequestBurst,
      operatorOverLimitPerMinute: c.operatorOverLimitPerMinute,
      refusalQuietMs: c.refusalQuietMs,
      refusalMaxSpanMs: c.refusalMaxSpanMs,
      ...c.http,
    },
    retention: resolveRetention(c.retention, c.database === ":memory:" ? undefined : abs(c.database), abs),
    recovery: c.recovery,
    switch: c.switch,
    loadBalancer: c.loadBalancer,
    ...(c.ha ? { ha: { ...c.ha, etcd: c.ha.etcd && { ...c.ha.etcd, tls: c.ha.etcd.tls && Object.fromEntries(Object.entries(c.ha.etcd.tls).map(([k, v]) => [k, abs(v)])) } } } : {}),
  };
}

export function loadCoordinatorConfig(file: string): CoordinatorConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([{ path: "", message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], file);
  }
  return parseCoordinatorConfig(text, file);
}

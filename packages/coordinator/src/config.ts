import { readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { z } from "zod";
import { FleetError, formatPath, type FieldIssue } from "@pifleet/core";
import { MAX_FRAME_BYTES } from "@pifleet/proto";
import { LoadBalancerSectionSchema, RecoverySectionSchema, SwitchSectionSchema, type RecoverySection } from "./remediation.js";

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
  switch: { enabled: boolean };
  loadBalancer: { enabled: boolean; sync: boolean };
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
    /** The recovery engine; off unless enabled. */
    recovery: RecoverySectionSchema,
    /** Drive the fleet file's switch (PoE power) over SNMP. */
    switch: SwitchSectionSchema,
    /** Drive the fleet file's load balancer; `sync: false` when its servers are in its own config. */
    loadBalancer: LoadBalancerSectionSchema,
  })
  .superRefine((c, ctx) => {
    const suspect = c.suspectAfterMs ?? 2 * c.reportIntervalMs;
    const down = c.downAfterMs ?? 3 * c.reportIntervalMs;
    if (suspect < c.reportIntervalMs) ctx.addIssue({ code: "custom", path: ["suspectAfterMs"], message: `must be at least reportIntervalMs (${c.reportIntervalMs})` });
    if (down <= suspect) ctx.addIssue({ code: "custom", path: ["downAfterMs"], message: `must be greater than suspectAfterMs (${suspect})` });
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
    },
    recovery: c.recovery,
    switch: c.switch,
    loadBalancer: c.loadBalancer,
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

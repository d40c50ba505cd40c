import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Logger } from "@pifleet/core";
import type { EventLog } from "./event-log.js";
import type { EventRecord, Store } from "./store/types.js";

const DAY_MS = 86_400_000;

/** coordinator.yaml `retention:` — how long the audit log keeps events in the database. */
export const RetentionSectionSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Events older than this leave the database (exported first). */
    maxAgeDays: z.number().gt(0).max(36_500).default(365),
    /** At most this many events stay in the database; the oldest beyond it leave (exported first). */
    maxEvents: z.int().min(1000).max(1_000_000_000).default(1_000_000),
    /** Where exported events go; default `event-archive/` beside the database. */
    exportDir: z.string().min(1).optional(),
    checkEveryMs: z.int().min(1000).max(86_400_000).default(3_600_000),
  })
  .prefault({});

export interface RetentionSettings {
  enabled: boolean;
  maxAgeMs: number;
  maxEvents: number;
  /** Undefined: nowhere to export to (an in-memory database), so nothing is ever removed. */
  exportDir: string | undefined;
  checkEveryMs: number;
  /** Events per export file (and per database transaction). */
  batch: number;
}

export function resolveRetention(s: z.infer<typeof RetentionSectionSchema>, database: string | undefined, abs: (p: string) => string): RetentionSettings {
  const exportDir = s.exportDir ? abs(s.exportDir) : database ? path.join(path.dirname(database), "event-archive") : undefined;
  return { enabled: s.enabled && exportDir !== undefined, maxAgeMs: s.maxAgeDays * DAY_MS, maxEvents: s.maxEvents, exportDir, checkEveryMs: s.checkEveryMs, batch: 5000 };
}

export interface RetentionRun {
  exported: number;
  firstId: number;
  lastId: number;
  files: string[];
}

/**
 * Keeps the append-only audit log bounded without breaking its promise. Events leave the
 * database only after they are written to a JSON-lines file in `exportDir` (written, fsynced,
 * renamed into place, directory fsynced), and only through a row in `event_exports` naming that
 * file, its id range and its SHA-256; the database's triggers refuse to delete any event no such
 * row covers, and refuse to change or delete those rows. Each run that removes anything is
 * itself an event (`retention`).
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | undefined;

  constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly s: RetentionSettings,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (!this.s.enabled) return;
    this.timer = setInterval(() => void this.run().catch((err: Error) => this.logger?.error({ err: err.message }, "audit log retention failed")), this.s.checkEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass: exports and removes what is past the age or count limit. */
  run(): Promise<RetentionRun> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<RetentionRun> {
    const out: RetentionRun = { exported: 0, firstId: 0, lastId: 0, files: [] };
    const dir = this.s.exportDir;
    if (!this.s.enabled || !dir) return out;
    const stats = this.store.eventStats();
    // Everything up to this id may go for being beyond the count limit; older ones for their age.
    const overCount = stats.count > this.s.maxEvents ? stats.lastId - this.s.maxEvents : 0;
    const cutoffMs = this.now() - this.s.maxAgeMs;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    let after = stats.firstId - 1;
    for (;;) {
      const rows = this.store.events({ afterId: after, limit: this.s.batch });
      const leaving = takeWhile(rows, (e) => e.id <= overCount || e.timeMs < cutoffMs);
      if (leaving.length === 0) break;
      const file = await this.export(dir, leaving);
      const first = leaving[0].id;
      const last = leaving.at(-1)!.id;
      this.store.removeExportedEvents({ firstId: first, lastId: last, count: leaving.length, file: file.path, sha256: file.sha256 });
      out.exported += leaving.length;
      out.firstId ||= first;
      out.lastId = last;
      out.files.push(file.path);
      after = last;
      if (leaving.length < rows.length) break;
      // A big backlog is removed in slices: the event loop serves agents in between.
      await new Promise((r) => setImmediate(r));
    }
    if (out.exported > 0) {
      this.events.append({
        kind: "retention",
        subject: "audit-log",
        actor: "coordinator",
        message: `${out.exported} events (ids ${out.firstId}–${out.lastId}) exported to ${out.files.length} file(s) in ${dir} and removed from the database (older than ${Math.round(this.s.maxAgeMs / DAY_MS)} days or beyond ${this.s.maxEvents} events)`,
        fields: { count: String(out.exported), firstId: String(out.firstId), lastId: String(out.lastId), dir, files: out.files.map((f) => path.basename(f)).join(",") },
      });
      this.logger?.info({ exported: out.exported, firstId: out.firstId, lastId: out.lastId, dir }, "audit log retention");
    }
    return out;
  }

  /** Writes one JSON line per event, durably; returns the file and its digest. */
  private async export(dir: string, events: EventRecord[]): Promise<{ path: string; sha256: string }> {
    const name = `events-${events[0].id}-${events.at(-1)!.id}.jsonl`;
    const final = path.join(dir, name);
    const tmp = path.join(dir, `.${name}.tmp`);
    const text = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
    const f = await open(tmp, "w", 0o640);
    try {
      await f.writeFile(text);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, final);
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    return { path: final, sha256: createHash("sha256").update(text).digest("hex") };
  }
}

function takeWhile<T>(items: T[], pred: (x: T) => boolean): T[] {
  const i = items.findIndex((x) => !pred(x));
  return i < 0 ? items : items.slice(0, i);
}

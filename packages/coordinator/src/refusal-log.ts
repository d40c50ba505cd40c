import type { EventLog } from "./event-log.js";
import { RateLimit } from "./event-log.js";
import type { EventInput } from "./store/types.js";

export interface RefusalLogOptions {
  /** A key quiet this long is summed up and forgotten. */
  quietMs: number;
  /** A key that never goes quiet is summed up this often. */
  maxSpanMs: number;
  /** Keys followed at once; refusals of further keys are only counted, under one overflow key. */
  maxKeys: number;
  /** New keys (first events written at once) per second, with a burst: beyond, counted as overflow. */
  newPerSecond: number;
  newBurst: number;
}

export const DEFAULT_REFUSAL_LOG: RefusalLogOptions = { quietMs: 60_000, maxSpanMs: 3_600_000, maxKeys: 10_000, newPerSecond: 20, newBurst: 100 };

interface Pending {
  event: EventInput;
  /** Refusals since the last event written for this key, the first and last of them. */
  count: number;
  firstMs: number;
  lastMs: number;
  /** When the event that opened this span was written. */
  spanStartMs: number;
}

const OVERFLOW = "\u0000overflow";

/**
 * Audit events for refusals that repeat. The first refusal of a key (who, what, why) is written at
 * once, in full; repeats are counted, and written as one event (`count`, `firstMs`, `lastMs`)
 * once the key has been quiet for `quietMs`, or every `maxSpanMs` while it never is. So a client
 * that keeps being refused — a flood of requests, an agent retrying with revoked credentials —
 * costs the append-only log a handful of events, not one per attempt.
 */
export class RefusalLog {
  private readonly keys = new Map<string, Pending>();
  private readonly fresh: RateLimit;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: EventLog,
    private readonly o: RefusalLogOptions = DEFAULT_REFUSAL_LOG,
    private readonly now: () => number = Date.now,
  ) {
    this.fresh = new RateLimit(o.newPerSecond, o.newBurst, now);
  }

  start(): void {
    this.timer = setInterval(() => this.sweep(), Math.max(50, Math.min(this.o.quietMs, this.o.maxSpanMs) / 4));
    this.timer.unref();
  }

  /** Writes what is pending and stops the timer. */
  stop(): void {
    clearInterval(this.timer);
    this.sweep(Number.POSITIVE_INFINITY);
  }

  /** One refusal. Its first occurrence is written now; later ones are summed up. */
  record(key: string, event: EventInput): void {
    const t = this.now();
    const p = this.keys.get(key);
    if (p) {
      if (p.count === 0) p.firstMs = t;
      p.count++;
      p.lastMs = t;
      p.event = event;
      return;
    }
    if (this.keys.size >= this.o.maxKeys || !this.fresh.take()) {
      this.overflow(event, t);
      return;
    }
    this.log.append({ ...event, fields: { ...event.fields, count: "1" } });
    this.keys.set(key, { event, count: 0, firstMs: t, lastMs: t, spanStartMs: t });
  }

  /** Follows a key whose first refusal was recorded some other way (e.g. in a state event). */
  seed(key: string, event: EventInput): void {
    if (this.keys.has(key) || this.keys.size >= this.o.maxKeys) return;
    const t = this.now();
    this.keys.set(key, { event, count: 0, firstMs: t, lastMs: t, spanStartMs: t });
  }

  /** Keys followed now (for tests and metrics). */
  get size(): number {
    return this.keys.size;
  }

  /** Writes the summaries that are due; `now = Infinity` writes every pending one. */
  sweep(now = this.now()): void {
    for (const [key, p] of this.keys) {
      const quiet = now - p.lastMs >= this.o.quietMs;
      const long = now - p.spanStartMs >= this.o.maxSpanMs;
      if (!quiet && !long) continue;
      if (p.count > 0) this.summary(p);
      if (quiet) this.keys.delete(key);
      else {
        p.count = 0;
        p.spanStartMs = Number.isFinite(now) ? now : p.lastMs;
      }
    }
  }

  private overflow(event: EventInput, t: number): void {
    const p = this.keys.get(OVERFLOW);
    const summary: EventInput = { kind: event.kind, subject: "fleet", actor: "coordinator", message: "refusals beyond the audit log's rate limit", fields: { last: `${event.subject}: ${event.message}`.slice(0, 300) } };
    if (p) {
      p.count++;
      p.lastMs = t;
      p.event = summary;
    } else this.keys.set(OVERFLOW, { event: summary, count: 1, firstMs: t, lastMs: t, spanStartMs: t });
  }

  private summary(p: Pending): void {
    const e = p.event;
    const span = `${new Date(p.firstMs).toISOString()} – ${new Date(p.lastMs).toISOString()}`;
    this.log.append({
      ...e,
      message: `${e.message} [repeated ${p.count} more time${p.count === 1 ? "" : "s"}, ${span}]`,
      fields: { ...e.fields, count: String(p.count), firstMs: String(p.firstMs), lastMs: String(p.lastMs), aggregated: "true" },
    });
  }
}

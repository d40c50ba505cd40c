import { performance } from "node:perf_hooks";
import type { Logger } from "@pifleet/core";
import { encodeFeedWithStatuses, encodePiStatusWith, type v1 } from "@pifleet/proto";
import type { Connection } from "./connection.js";
import type { EventLog } from "./event-log.js";
import type { FleetState, PiEntry } from "./fleet-state.js";
import type { Metrics } from "./metrics.js";

export interface FeedOptions {
  fleetName: string;
  /** Changes are gathered for at most this long before one delta goes out. */
  batchMs: number;
  /** No frame sent is larger than this (the watcher's decode limit). */
  maxFrameBytes: number;
  /** A watcher whose socket holds more unsent bytes than this is too slow and is dropped. */
  maxBufferedBytes: number;
}

/** A Pi's status as the feed sends it: the sample goes out in the bytes it arrived in, with the agent's facts. */
function statusBytes(e: PiEntry): Uint8Array {
  return encodePiStatusWith(e.status, e.sampleBytes, e.factsBytes);
}

/** Pis per frame to start with; a chunk that still encodes too large is halved. */
const CHUNK = 256;

/**
 * The live feed. Every change marks a Pi dirty; at most every `batchMs` one FeedDelta with all
 * dirty Pis, new events and the fleet status is encoded once and the same bytes go to every
 * watcher. Work per report is a set insertion; work per delta is proportional to what changed.
 */
export class FeedHub {
  private readonly watchers = new Set<Connection>();
  private readonly dirty = new Set<PiEntry>();
  private events: v1.FleetEvent[] = [];
  private fleetDirty = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;

  constructor(
    private readonly fleet: FleetState,
    private readonly log: EventLog,
    private readonly opts: FeedOptions,
    private readonly metrics: Metrics,
    private readonly logger?: Logger,
  ) {
    fleet.on("changed", (e) => {
      this.dirty.add(e);
      this.schedule();
    });
    fleet.on("fleetStatus", () => {
      this.fleetDirty = true;
      this.schedule();
    });
    log.on("event", (ev) => {
      this.events.push(ev);
      this.schedule();
    });
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Sends the snapshot (first Pis in the FeedSnapshot, the rest in deltas), then the watcher gets every delta. */
  add(conn: Connection): void {
    const pis = [...this.fleet.pis.values()].map(statusBytes);
    const chunks = this.chunk(pis, (part, first) =>
      first
        ? encodeFeedWithStatuses("snapshot", { fleet: this.opts.fleetName, events: [...this.log.recent()], fleetStatus: this.fleet.fleetStatus, timeMs: Date.now() }, part)
        : encodeFeedWithStatuses("delta", { timeMs: Date.now() }, part),
    );
    chunks.forEach((bytes, i) => conn.sendShared(i === 0 ? "snapshot" : "delta", bytes));
    this.watchers.add(conn);
  }

  remove(conn: Connection): void {
    this.watchers.delete(conn);
  }

  /** Sends what is pending now (used on shutdown and by tests). */
  flush(): void {
    clearTimeout(this.timer);
    this.scheduled = false;
    this.lastFlush = performance.now();
    if (this.dirty.size === 0 && this.events.length === 0 && !this.fleetDirty) return;
    const entries = [...this.dirty];
    this.dirty.clear();
    const events = this.events;
    this.events = [];
    const fleetStatus = this.fleetDirty ? this.fleet.fleetStatus : undefined;
    this.fleetDirty = false;

    if (this.watchers.size > 0) {
      const time = Date.now();
      const frames = this.chunk(entries.map(statusBytes), (part, first) => encodeFeedWithStatuses("delta", first ? { events, fleetStatus, timeMs: time } : { timeMs: time }, part));
      for (const w of this.watchers) {
        for (const bytes of frames) w.sendShared("delta", bytes);
        if (w.buffered > this.opts.maxBufferedBytes) this.dropSlow(w);
      }
    }
    const sent = performance.now();
    for (const e of entries) {
      if (e.pendingSince === 0) continue;
      if (this.watchers.size > 0) this.metrics.feedLatency.observe((sent - e.pendingSince) / 1000);
      e.pendingSince = 0;
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watchers.clear();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastFlush + this.opts.batchMs - performance.now();
    // A quiet feed sends at once; a busy one at most every batchMs.
    if (wait <= 0) setImmediate(() => this.flush());
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  private dropSlow(w: Connection): void {
    this.watchers.delete(w);
    this.logger?.warn({ watcher: w.identity, remote: w.remote, buffered: w.buffered }, "watcher too slow: dropped");
    this.metrics.refused.inc({ code: "slow_consumer", reason: "slow_consumer" });
    w.send({ error: { code: "slow_consumer", reason: "slow_consumer", frame: "delta", message: "the feed outran this watcher; reconnect for a fresh snapshot" } });
    w.close(1008, "too slow");
  }

  /** Encodes `items` in as few frames as fit the frame limit; `first` marks the first frame. */
  private chunk(items: Uint8Array[], encode: (part: Uint8Array[], first: boolean) => Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    const limit = this.opts.maxFrameBytes - 64;
    const emit = (part: Uint8Array[]): void => {
      const bytes = encode(part, out.length === 0);
      if (bytes.byteLength <= limit || part.length <= 1) {
        out.push(bytes);
        return;
      }
      const half = Math.ceil(part.length / 2);
      emit(part.slice(0, half));
      emit(part.slice(half));
    };
    if (items.length === 0) emit([]);
    for (let i = 0; i < items.length; i += CHUNK) emit(items.slice(i, i + CHUNK));
    return out;
  }
}

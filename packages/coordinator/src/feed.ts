import { performance } from "node:perf_hooks";
import type { Logger } from "@pifleet/core";
import { encodeFeedWithStatuses, encodePiStatusWith, MAX_FRAME_BYTES, v1 } from "@pifleet/proto";
import type { Connection } from "./connection.js";
import type { EventLog } from "./event-log.js";
import type { FleetState, PiEntry } from "./fleet-state.js";
import type { Metrics } from "./metrics.js";

export interface FeedOptions {
  fleetName: string;
  /** Changes are gathered for at most this long before one delta goes out. */
  batchMs: number;
  /** No frame sent is larger than this, nor than MAX_FRAME_BYTES (every pifleet client's default decode limit). */
  maxFrameBytes: number;
  /** A watcher whose socket holds more unsent bytes than this is too slow and is dropped. */
  maxBufferedBytes: number;
}

/** A Pi's status as the feed sends it: the sample goes out in the bytes it arrived in, with the agent's facts. */
function statusBytes(e: PiEntry): Uint8Array {
  return encodePiStatusWith(e.status, e.sampleBytes, e.factsBytes);
}

/** Room left in a frame for the envelope around the body (version, seq, tag, length). */
const ENVELOPE_ROOM = 64;

/** Bytes a repeated message field adds to its parent: tag (one byte, field < 16), length, body. */
function fieldBytes(len: number): number {
  let n = 1;
  for (let v = len; v >= 128; v = Math.floor(v / 128)) n++;
  return 1 + n + len;
}

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
    const time = Date.now();
    const frames = this.pack(
      [...this.fleet.pis.values()],
      [...this.log.recent()],
      (pis, events, first) =>
        first
          ? encodeFeedWithStatuses("snapshot", { fleet: this.opts.fleetName, events, fleetStatus: this.fleet.fleetStatus, timeMs: time }, pis)
          : encodeFeedWithStatuses("delta", { events, timeMs: time }, pis),
    );
    frames.forEach((bytes, i) => conn.sendShared(i === 0 ? "snapshot" : "delta", bytes));
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
      const frames = this.pack(entries, events, (pis, evs, first) => encodeFeedWithStatuses("delta", first ? { events: evs, fleetStatus, timeMs: time } : { events: evs, timeMs: time }, pis));
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

  /** The largest frame this feed sends. */
  get frameLimit(): number {
    return Math.min(this.opts.maxFrameBytes, MAX_FRAME_BYTES);
  }

  /**
   * Packs events and Pi statuses into as few frames as fit the frame limit, in order (events
   * first, so a watcher reads what happened before the states it caused). Sizes are exact: a
   * repeated field adds tag, length and body to its message. Whatever alone would not fit is
   * shortened (an event's text, a status's last report) and counted; no frame over the limit
   * is ever returned.
   */
  private pack(entries: PiEntry[], events: readonly v1.FleetEvent[], encode: (pis: Uint8Array[], events: v1.FleetEvent[], first: boolean) => Uint8Array): Uint8Array[] {
    const limit = this.frameLimit;
    const budget = limit - ENVELOPE_ROOM;
    // The head of any frame (fleet name, fleet status, time) is small; measured once, empty.
    const headRoom = encode([], [], true).byteLength + 16;
    const room = budget - headRoom;
    const out: Uint8Array[] = [];
    let pis: Uint8Array[] = [];
    let evs: v1.FleetEvent[] = [];
    let size = 0;
    const emit = () => {
      const bytes = encode(pis, evs, out.length === 0);
      if (bytes.byteLength <= limit) out.push(bytes);
      else this.logger?.error({ bytes: bytes.byteLength, limit }, "feed frame over the limit not sent");
      pis = [];
      evs = [];
      size = 0;
    };
    const fit = (n: number) => {
      if (size > 0 && size + n > room) emit();
      size += n;
    };
    for (const raw of events) {
      const e = this.fitEvent(raw, room);
      fit(fieldBytes(v1.FleetEvent.encode(e).finish().byteLength));
      evs.push(e);
    }
    for (const entry of entries) {
      let b = statusBytes(entry);
      if (fieldBytes(b.byteLength) > room) {
        // A report too large to forward: the status goes without it.
        b = encodePiStatusWith(entry.status, null, null);
        this.metrics.feedTrimmed.inc();
      }
      fit(fieldBytes(b.byteLength));
      pis.push(b);
    }
    if (size > 0 || out.length === 0) emit();
    return out;
  }

  /** An event whose text alone would not fit a frame, shortened (the audit log keeps it whole). */
  private fitEvent(e: v1.FleetEvent, room: number): v1.FleetEvent {
    const max = Math.floor(room / 4);
    if (v1.FleetEvent.encode(e).finish().byteLength <= max) return e;
    this.metrics.feedTrimmed.inc();
    const cut = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}… (${t.length - n} more characters in the audit log)` : t);
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.fields ?? {}).slice(0, 32)) fields[cut(k, 64)] = cut(v, 256);
    return v1.FleetEvent.create({ ...e, subject: cut(e.subject, 256), actor: cut(e.actor, 256), message: cut(e.message, Math.max(256, Math.floor(max / 8))), fields });
  }
}

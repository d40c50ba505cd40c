import { EventEmitter } from "node:events";
import type { Logger } from "@pifleet/core";
import { v1 } from "@pifleet/proto";
import type { EventInput, EventRecord, Store } from "./store/types.js";

export function fleetEventOf(r: EventRecord): v1.FleetEvent {
  return v1.FleetEvent.create({ id: r.id, timeMs: r.timeMs, kind: r.kind, subject: r.subject, message: r.message, actor: r.actor, fields: r.fields });
}

/** The audit log: every event is stored first, then kept in a short in-memory window for new watchers and announced. */
export class EventLog extends EventEmitter<{ event: [event: v1.FleetEvent] }> {
  private readonly window: v1.FleetEvent[];

  constructor(
    private readonly store: Store,
    private readonly keep: number,
    private readonly logger?: Logger,
  ) {
    super();
    this.window = store.recentEvents(keep).map(fleetEventOf);
  }

  append(input: EventInput): v1.FleetEvent {
    let rec: EventRecord;
    try {
      rec = this.store.appendEvent(input);
    } catch (err) {
      // The feed still hears of it; id 0 marks an event the database did not take.
      this.logger?.error({ err: (err as Error).message, kind: input.kind, subject: input.subject }, "cannot store event");
      rec = { id: 0, timeMs: input.timeMs ?? Date.now(), kind: input.kind, subject: input.subject, message: input.message, actor: input.actor ?? "", fields: input.fields ?? {} };
    }
    const ev = fleetEventOf(rec);
    this.window.push(ev);
    if (this.window.length > this.keep) this.window.splice(0, this.window.length - this.keep);
    this.emit("event", ev);
    return ev;
  }

  recent(): readonly v1.FleetEvent[] {
    return this.window;
  }
}

/** A token bucket: lets a burst through, then `perSecond`. */
export class RateLimit {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

import { EventEmitter } from "node:events";
import { v1, type BodyName, type Envelope } from "@pifleet/proto";

export interface FeedUpdate {
  kind: "snapshot" | "delta";
  pis: v1.PiStatus[];
  events: v1.FleetEvent[];
  fleetStatus?: v1.FleetStatus;
}

/**
 * A watcher's copy of the fleet, kept from the feed: the snapshot, then deltas applied on top.
 * Shared by `pifleet watch`, tests and the benchmark.
 */
export class FeedMirror extends EventEmitter<{ update: [update: FeedUpdate] }> {
  fleet = "";
  readonly pis = new Map<string, v1.PiStatus>();
  events: v1.FleetEvent[] = [];
  fleetStatus: v1.FleetStatus | undefined;
  /** True once a snapshot arrived (and, for a large fleet, every Pi it announced). */
  get complete(): boolean {
    return this.snapshotSeen && this.pis.size >= (this.fleetStatus?.pisTotal ?? 0);
  }
  private snapshotSeen = false;

  constructor(private readonly keepEvents = 500) {
    super();
  }

  /** Applies a snapshot or delta frame; other frames are ignored. */
  apply(env: Envelope & { body: BodyName }): FeedUpdate | undefined {
    let u: FeedUpdate;
    if (env.body === "snapshot") {
      const s = env.snapshot as v1.FeedSnapshot;
      this.fleet = s.fleet;
      this.pis.clear();
      this.events = [];
      this.snapshotSeen = true;
      u = { kind: "snapshot", pis: s.pis as v1.PiStatus[], events: s.events as v1.FleetEvent[], fleetStatus: (s.fleetStatus as v1.FleetStatus | null) ?? undefined };
    } else if (env.body === "delta") {
      const d = env.delta as v1.FeedDelta;
      u = { kind: "delta", pis: d.pis as v1.PiStatus[], events: d.events as v1.FleetEvent[], fleetStatus: (d.fleetStatus as v1.FleetStatus | null) ?? undefined };
    } else {
      return undefined;
    }
    for (const p of u.pis) this.pis.set(p.name, p);
    if (u.events.length) {
      this.events.push(...u.events);
      if (this.events.length > this.keepEvents) this.events.splice(0, this.events.length - this.keepEvents);
    }
    if (u.fleetStatus) {
      this.fleetStatus = u.fleetStatus;
      // Taken out of the fleet by a reload of the fleet file.
      for (const name of u.fleetStatus.pisRemoved ?? []) this.pis.delete(name);
    }
    this.emit("update", u);
    return u;
  }
}

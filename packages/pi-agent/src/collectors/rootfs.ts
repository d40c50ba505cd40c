import type { Logger } from "@pifleet/core";
import type { Collector, ReportPart } from "./types.js";
import { BoundedStat, type StatFn } from "../bounded-stat.js";

/**
 * A stat of the root filesystem (NFS on a Pi) with a deadline: a stat that does not return in time
 * reports `stalled`, and no second stat is issued until the first returns (see BoundedStat).
 * A stat that fails (EIO or ESTALE from an NFS server that went away) counts as stalled too.
 */
export class RootfsCollector implements Collector {
  private readonly stat: BoundedStat;
  private lastError: string | undefined;
  constructor(
    path: string,
    private readonly deadlineMs: number,
    private readonly log?: Logger,
    statFn?: StatFn,
  ) {
    this.stat = new BoundedStat(path, statFn);
  }

  async collect(): Promise<ReportPart> {
    const r = await this.stat.check(this.deadlineMs);
    if (r.error !== this.lastError) {
      if (r.error) this.log?.warn({ err: r.error }, "root filesystem stat failed");
      this.lastError = r.error;
    }
    return { rootfs: { stalled: r.stalled, latencyMs: r.latencyMs } };
  }
}

import type { Logger } from "@pifleet/core";
import type { ShelfReachPort } from "@pifleet/recovery";

/** One shelf's switch as the probe sees it: a read that must answer (a PoE port's state). */
export interface ShelfProbeTarget {
  shelf: string;
  /** Names the switch in the pause reason (`sw-a (10.0.0.2:161)`). */
  label: string;
  probe(): Promise<unknown>;
}

export interface ShelfReachOptions {
  /** Time between probes of one switch. */
  intervalMs?: number;
  /** A probe not answered in this long failed. */
  timeoutMs?: number;
  /** Consecutive failed probes before the shelf is called unreachable (one lost datagram is not a dead switch). */
  failures?: number;
  logger?: Logger;
}

interface Probe {
  target: ShelfProbeTarget;
  failed: number;
  reason: string | undefined;
  since: number;
  running: boolean;
}

/**
 * Asks every shelf's switch, on its own, whether it answers. A shelf whose switch does not is
 * paused by the recovery engine: its Pis cannot be power-cycled, and their silence may be the
 * switch's fault (a dead switch cuts its Pis off). Other shelves are not affected.
 */
export class ShelfReach implements ShelfReachPort {
  private readonly probes = new Map<string, Probe>();
  private timer: NodeJS.Timeout | undefined;
  private readonly o: Required<Omit<ShelfReachOptions, "logger">> & { logger?: Logger };

  constructor(targets: ShelfProbeTarget[], options: ShelfReachOptions = {}) {
    this.o = { intervalMs: options.intervalMs ?? 2000, timeoutMs: options.timeoutMs ?? 3000, failures: options.failures ?? 2, logger: options.logger };
    for (const t of targets) this.probes.set(t.shelf, { target: t, failed: 0, reason: undefined, since: 0, running: false });
  }

  start(): void {
    this.timer = setInterval(() => {
      for (const p of this.probes.values()) void this.run(p);
    }, this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  unreachable(shelf: string): string | undefined {
    return this.probes.get(shelf)?.reason;
  }

  private async run(p: Probe): Promise<void> {
    if (p.running) return;
    p.running = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        p.target.probe(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${this.o.timeoutMs / 1000} s`)), this.o.timeoutMs);
        }),
      ]);
      if (p.reason) this.o.logger?.info({ shelf: p.target.shelf }, "shelf switch answers again");
      p.failed = 0;
      p.reason = undefined;
    } catch (err) {
      p.failed++;
      if (p.failed === 1) p.since = Date.now();
      if (p.failed >= this.o.failures) {
        const reason = `the switch ${p.target.label} of shelf ${p.target.shelf} is unreachable (${(err as Error).message}; ${p.failed} probes failed since ${new Date(p.since).toISOString()}): its Pis cannot be told dead from cut off`;
        if (!p.reason) this.o.logger?.error({ shelf: p.target.shelf, err: (err as Error).message }, "shelf switch unreachable");
        p.reason = reason;
      }
    } finally {
      clearTimeout(timer);
      p.running = false;
    }
  }
}

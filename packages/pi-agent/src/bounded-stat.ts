import { stat } from "node:fs/promises";

export type StatFn = (path: string) => Promise<unknown>;

let hung = 0;
/**
 * Stats issued by this process that have not returned. Each holds a libuv pool thread that
 * process.exit() would wait for (it joins the pool), so the daemon must leave another way.
 */
export function outstandingStats(): number {
  return hung;
}

export interface StatOutcome {
  /** The stat had not returned by the deadline, or failed (EIO/ESTALE from a soft NFS mount). */
  stalled: boolean;
  /** How long the stat took, or — while it hangs — how long it has been outstanding. */
  latencyMs: number;
  error?: string;
  /** Whether this check started a new stat (false: it waited on one already outstanding). */
  started: boolean;
}

/**
 * A stat with a deadline that cannot pile up. The stat runs on libuv's thread pool, never on the
 * event loop, so a hung NFS root blocks one pool thread, not the agent. A hung stat cannot be
 * cancelled, so while one is outstanding no new one starts: each check waits on that same stat
 * (it may return now) and reports how long it has been stuck. At most one pool thread is ever lost
 * to a dead server, whatever the report rate.
 */
export class BoundedStat {
  private inflight: { since: number; done: Promise<{ ms: number; error?: string }> } | undefined;

  constructor(
    private readonly path: string,
    private readonly statFn: StatFn = stat,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True while a stat issued earlier has not returned. */
  get outstanding(): boolean {
    return this.inflight !== undefined;
  }

  check(deadlineMs: number): Promise<StatOutcome> {
    let started = false;
    if (!this.inflight) {
      started = true;
      const since = this.now();
      const entry = {
        since,
        done: this.statFn(this.path).then(
          () => ({ ms: this.now() - since }),
          (err: NodeJS.ErrnoException) => ({ ms: this.now() - since, error: `${this.path}: ${err.code ?? err.message}` }),
        ),
      };
      this.inflight = entry;
      hung++;
      void entry.done.then(() => {
        hung--;
        if (this.inflight === entry) this.inflight = undefined;
      });
    }
    const { since, done } = this.inflight!;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ stalled: true, latencyMs: Math.round(this.now() - since), started }), deadlineMs);
      void done.then((r) => {
        clearTimeout(timer);
        resolve({ stalled: r.error !== undefined, latencyMs: Math.round(r.ms), error: r.error, started });
      });
    });
  }
}

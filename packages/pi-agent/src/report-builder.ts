import type { Logger } from "@pifleet/core";
import type { v1 } from "@pifleet/proto";
import type { EnabledCollector } from "./collectors/registry.js";
import type { ReportPart } from "./collectors/types.js";

/** Past its deadline a collector gets this long to settle before its fields are dropped. */
const GRACE_MS = 50;

interface State extends EnabledCollector {
  inflight?: Promise<unknown>;
  lastError?: string;
}

/**
 * Builds one PiReport by running every enabled collector at once, each under its own deadline, so
 * one slow source never holds the report past its interval. A collector that ignores its deadline
 * is left behind (its fields stay unset) and is not started again until it settles: slow sources
 * cannot pile up.
 */
export class ReportBuilder {
  private readonly states: State[];
  private cap = Infinity;

  constructor(
    private readonly identity: string,
    collectors: EnabledCollector[],
    private readonly log?: Logger,
  ) {
    this.states = collectors.map((c) => ({ ...c }));
  }

  /** Bounds every deadline, for when the coordinator asks for a shorter interval than configured. */
  capDeadlines(ms: number): void {
    this.cap = Math.max(10, ms);
  }

  get names(): string[] {
    return this.states.map((s) => s.name);
  }

  async build(timeMs = Date.now()): Promise<v1.PiReport.$Properties> {
    const parts = await Promise.all(this.states.map((s) => this.runOne(s)));
    const report: v1.PiReport.$Properties = { pi: this.identity, timeMs, net: [] };
    for (const part of parts) if (part) Object.assign(report, part);
    return report;
  }

  private async runOne(s: State): Promise<ReportPart | undefined> {
    if (s.inflight) {
      this.noteError(s, `previous run still pending past its ${s.deadlineMs} ms deadline; skipped`);
      return undefined;
    }
    const deadline = Math.min(s.deadlineMs, this.cap);
    const ac = new AbortController();
    const soft = setTimeout(() => ac.abort(new Error(`no answer within ${deadline} ms`)), deadline);
    let hard: NodeJS.Timeout | undefined;
    let late = false;
    const run = s.collector.collect(ac.signal).then(
      (part) => {
        // An answer after the report left is no recovery: its fields were dropped.
        if (!late) this.noteError(s, undefined);
        return part;
      },
      (err: unknown) => {
        this.noteError(s, ac.signal.aborted ? `no answer within ${deadline} ms` : (err as Error)?.message ?? String(err));
        return undefined;
      },
    );
    s.inflight = run;
    void run.finally(() => {
      clearTimeout(soft);
      s.inflight = undefined;
    });
    const backstop = new Promise<undefined>((resolve) => {
      hard = setTimeout(() => {
        late = true;
        this.noteError(s, `ignored its ${deadline} ms deadline`);
        resolve(undefined);
      }, deadline + GRACE_MS);
    });
    try {
      return await Promise.race([run, backstop]);
    } finally {
      clearTimeout(hard);
    }
  }

  /** Logs a collector's failure once when it starts and once when it clears, not every second. */
  private noteError(s: State, error: string | undefined): void {
    if (error === s.lastError) return;
    if (error) this.log?.warn({ collector: s.name, err: error }, "collector failed");
    else if (s.lastError) this.log?.info({ collector: s.name }, "collector recovered");
    s.lastError = error;
  }
}

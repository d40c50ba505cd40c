/**
 * The parts of a report the judge reads. A PiSample and a (pre-0.2) PiReport both carry them under
 * the same names, so either is judged alike.
 */
export interface JudgedReport {
  rootfs?: { stalled?: boolean | null; latencyMs?: number | null } | null;
  apache?: { reachable?: boolean | null; error?: string | null; busyWorkers?: number | null; idleWorkers?: number | null } | null;
  probe?: { ok?: boolean | null; status?: number | null; error?: string | null } | null;
}

/** What the health judge alone says of a Pi. Recovery states are imposed on top by another module. */
export type Health = "unknown" | "healthy" | "suspect" | "down";

export interface JudgeThresholds {
  /** Silence longer than this (since the last report) makes a Pi suspect. */
  suspectAfterMs: number;
  /** Silence this long makes it down. */
  downAfterMs: number;
  /**
   * After the coordinator (re)starts, a Pi not heard from since keeps its stored verdict this
   * long: agents are still reconnecting with back-off, and our own absence is not their fault.
   */
  startupGraceMs: number;
}

/** The defaults follow the report interval: suspect after 2 intervals of silence, down after 3. */
export function defaultThresholds(reportIntervalMs: number): JudgeThresholds {
  return { suspectAfterMs: 2 * reportIntervalMs, downAfterMs: 3 * reportIntervalMs, startupGraceMs: 15_000 };
}

export interface JudgeInput {
  now: number;
  /** When the coordinator started watching (this run). */
  watchingSince: number;
  /** Coordinator clock at the last fresh report (possibly from before a restart). */
  lastReportAt?: number;
  /** Its contents. */
  report?: JudgedReport | null;
}

export interface Verdict {
  health: Health;
  reason: string;
}

/**
 * The health judge: a pure function of time and the last report. Returns null when the verdict
 * must stay as it is (start-up grace). Reasons name thresholds rather than measured durations so
 * that a Pi staying suspect does not churn the feed with a new reason every tick.
 */
export function judge(input: JudgeInput, t: JudgeThresholds): Verdict | null {
  const { now, watchingSince, lastReportAt } = input;
  const heardThisRun = lastReportAt !== undefined && lastReportAt >= watchingSince;
  if (!heardThisRun && now - watchingSince < t.startupGraceMs) return null;

  const silence = now - (heardThisRun ? lastReportAt : watchingSince);
  if (silence >= t.downAfterMs) {
    if (heardThisRun) return { health: "down", reason: `no report for ${secs(t.downAfterMs)}` };
    const wait = Math.max(t.startupGraceMs, t.downAfterMs);
    return { health: "down", reason: `no report within ${secs(wait)} of the coordinator starting` };
  }
  // A Pi never heard from is unknown until it is down: "late" needs a report to be late after.
  if (silence > t.suspectAfterMs) return lastReportAt === undefined ? null : { health: "suspect", reason: `report late: none for more than ${secs(t.suspectAfterMs)}` };
  if (!heardThisRun || !input.report) return null;
  const problems = reportProblems(input.report);
  if (problems.length > 0) return { health: "suspect", reason: problems.join("; ") };
  return { health: "healthy", reason: "reporting; Apache and the HTTP probe answer" };
}

/** What in a report says the Pi is not serving properly. */
export function reportProblems(r: JudgedReport): string[] {
  const out: string[] = [];
  if (r.rootfs?.stalled) out.push(`root filesystem stalled${r.rootfs.latencyMs ? ` (stat of / took ${r.rootfs.latencyMs} ms)` : ""}`);
  const a = r.apache;
  if (!a || !a.reachable) out.push(`Apache unreachable${a?.error ? `: ${a.error}` : ""}`);
  else if ((a.busyWorkers ?? 0) + (a.idleWorkers ?? 0) === 0) out.push("Apache has no workers (0 busy, 0 idle)");
  const p = r.probe;
  if (!p || !p.ok) out.push(`HTTP probe failed${p?.status ? `: status ${p.status}` : ""}${p?.error ? `: ${p.error}` : ""}`);
  return out;
}

function secs(ms: number): string {
  return `${+(ms / 1000).toFixed(3)} s`;
}

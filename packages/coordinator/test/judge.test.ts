import { describe, expect, it } from "vitest";
import { defaultThresholds, judge, type JudgeThresholds } from "@pifleet/coordinator";
import type { v1 } from "@pifleet/proto";

const t: JudgeThresholds = { ...defaultThresholds(1000), startupGraceMs: 0 };
const START = 1_000_000;

const good: v1.PiReport.$Properties = {
  pi: "pi01",
  apache: { reachable: true, busyWorkers: 2, idleWorkers: 8 },
  probe: { ok: true, status: 200, latencyMs: 5 },
  rootfs: { stalled: false, latencyMs: 1 },
};

describe("health judge", () => {
  it("derives its defaults from the report interval: suspect after 2 intervals, down after 3", () => {
    expect(defaultThresholds(1000)).toMatchObject({ suspectAfterMs: 2000, downAfterMs: 3000 });
    expect(defaultThresholds(500)).toMatchObject({ suspectAfterMs: 1000, downAfterMs: 1500 });
  });

  it("a fresh, good report is healthy", () => {
    expect(judge({ now: START + 10, watchingSince: START, lastReportAt: START + 10, report: good }, t)).toEqual({
      health: "healthy",
      reason: expect.stringContaining("reporting"),
    });
  });

  it("silence: healthy until 2 intervals, suspect after, down at 3", () => {
    const at = (ms: number) => judge({ now: START + 100 + ms, watchingSince: START, lastReportAt: START + 100, report: good }, t);
    expect(at(2000)!.health).toBe("healthy");
    expect(at(2001)!.health).toBe("suspect");
    expect(at(2001)!.reason).toMatch(/late/);
    expect(at(2999)!.health).toBe("suspect");
    expect(at(3000)!.health).toBe("down");
    expect(at(3000)!.reason).toMatch(/no report for 3 s/);
  });

  it("reasons name thresholds, not measured durations, so a lasting state does not churn", () => {
    const r1 = judge({ now: START + 2500, watchingSince: START, lastReportAt: START, report: good }, t)!;
    const r2 = judge({ now: START + 2900, watchingSince: START, lastReportAt: START, report: good }, t)!;
    expect(r1).toEqual(r2);
  });

  it.each([
    ["Apache unreachable", { ...good, apache: { reachable: false, error: "connect ECONNREFUSED" } }, /Apache unreachable: connect ECONNREFUSED/],
    ["no Apache section at all", { ...good, apache: undefined }, /Apache unreachable/],
    ["no idle or busy workers", { ...good, apache: { reachable: true, busyWorkers: 0, idleWorkers: 0 } }, /no workers/],
    ["the HTTP probe failing", { ...good, probe: { ok: false, status: 503 } }, /HTTP probe failed: status 503/],
    ["the root filesystem stalled", { ...good, rootfs: { stalled: true, latencyMs: 5000 } }, /root filesystem stalled/],
  ])("a report with %s is suspect", (_what, report, reason) => {
    const v = judge({ now: START + 1, watchingSince: START, lastReportAt: START + 1, report }, t)!;
    expect(v.health).toBe("suspect");
    expect(v.reason).toMatch(reason);
  });

  it("names every problem at once", () => {
    const v = judge({ now: START, watchingSince: START, lastReportAt: START, report: { ...good, apache: { reachable: false }, probe: { ok: false, error: "timeout" } } }, t)!;
    expect(v.reason).toMatch(/Apache unreachable.*; HTTP probe failed: timeout/);
  });

  it("a Pi never heard from is unknown (no verdict) until it is down", () => {
    expect(judge({ now: START + 2500, watchingSince: START }, t)).toBeNull();
    const v = judge({ now: START + 3000, watchingSince: START }, t)!;
    expect(v.health).toBe("down");
    expect(v.reason).toMatch(/coordinator starting/);
  });

  it("after a coordinator restart, Pis not yet back keep their verdict through the start-up grace", () => {
    const g = { ...t, startupGraceMs: 15_000 };
    const before = START - 60_000; // last report came before this run started
    expect(judge({ now: START + 14_999, watchingSince: START, lastReportAt: before, report: good }, g)).toBeNull();
    expect(judge({ now: START + 15_000, watchingSince: START, lastReportAt: before, report: good }, g)!.health).toBe("down");
    // one that came back is judged normally, grace or not
    expect(judge({ now: START + 500, watchingSince: START, lastReportAt: START + 400, report: good }, g)!.health).toBe("healthy");
  });

  it("a late report after suspect and down brings the Pi back", () => {
    const v = judge({ now: START + 10_000, watchingSince: START, lastReportAt: START + 10_000, report: good }, t)!;
    expect(v.health).toBe("healthy");
  });
});

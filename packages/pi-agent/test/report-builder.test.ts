import { describe, it, expect } from "vitest";
import { ReportBuilder, type Collector, type ReportPart } from "@pifleet/pi-agent";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const after = (ms: number, part: ReportPart): Collector => ({ collect: async () => (await sleep(ms), part) });

describe("report builder", () => {
  it("runs collectors at once: two 300 ms sources cost 300 ms, not 600", async () => {
    const b = new ReportBuilder("pi1", [
      { name: "loadavg", collector: after(300, { load: { one: 1, five: 2, fifteen: 3 } }), deadlineMs: 900 },
      { name: "uptime", collector: after(300, { uptimeS: 7 }), deadlineMs: 900 },
    ]);
    const t0 = performance.now();
    const r = await b.build(1234);
    const took = performance.now() - t0;
    expect(r).toEqual({ pi: "pi1", timeMs: 1234, net: [], load: { one: 1, five: 2, fifteen: 3 }, uptimeS: 7 });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(580);
  });

  it("leaves the fields of a failing collector unset and keeps the rest", async () => {
    const b = new ReportBuilder("pi1", [
      { name: "memory", collector: { collect: async () => Promise.reject(new Error("/proc/meminfo: no MemTotal line")) }, deadlineMs: 100 },
      { name: "uptime", collector: after(0, { uptimeS: 9 }), deadlineMs: 100 },
    ]);
    const r = await b.build();
    expect(r.uptimeS).toBe(9);
    expect("memTotalBytes" in r).toBe(false);
  });

  it("drops a collector that ignores its deadline, and a late answer never reaches the report", async () => {
    let finish!: (p: ReportPart) => void;
    let calls = 0;
    const deaf: Collector = {
      collect: () => {
        calls++;
        return new Promise((r) => (finish = r));
      },
    };
    const b = new ReportBuilder("pi1", [
      { name: "apache", collector: deaf, deadlineMs: 80 },
      { name: "uptime", collector: after(0, { uptimeS: 1 }), deadlineMs: 80 },
    ]);
    const t0 = performance.now();
    const first = await b.build();
    expect(performance.now() - t0).toBeLessThan(400);
    expect(first.apache).toBeUndefined();
    // It answers after the report was built: that report is unchanged.
    finish({ apache: { reachable: true } });
    await sleep(0);
    expect(first.apache).toBeUndefined();
    // Next build calls it again (it settled), so there is never more than one pending.
    void b.build();
    await sleep(10);
    expect(calls).toBe(2);
    // While that second call hangs, a third build does not start another.
    await sleep(200);
    await b.build();
    expect(calls).toBe(2);
  });

  it("hands each collector a signal that aborts at its own deadline", async () => {
    const seen: number[] = [];
    const t0 = performance.now();
    const watcher = (name: "apache" | "probe", ms: number) => ({
      name,
      deadlineMs: ms,
      collector: {
        collect: (signal: AbortSignal) =>
          new Promise<ReportPart>((resolve) =>
            signal.addEventListener("abort", () => {
              seen.push(Math.round(performance.now() - t0));
              resolve({});
            }),
          ),
      },
    });
    await new ReportBuilder("pi1", [watcher("apache", 60), watcher("probe", 180)]).build();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeGreaterThanOrEqual(55);
    expect(seen[1]).toBeGreaterThanOrEqual(175);
    expect(seen[1] - seen[0]).toBeGreaterThan(80);
  });

  it("caps deadlines when the coordinator asks for a shorter interval", async () => {
    let aborted = -1;
    const t0 = performance.now();
    const b = new ReportBuilder("pi1", [
      {
        name: "probe",
        deadlineMs: 700,
        collector: { collect: (s) => new Promise((r) => s.addEventListener("abort", () => ((aborted = performance.now() - t0), r({})))) },
      },
    ]);
    b.capDeadlines(80);
    await b.build();
    expect(aborted).toBeGreaterThanOrEqual(75);
    expect(aborted).toBeLessThan(400);
  });
});

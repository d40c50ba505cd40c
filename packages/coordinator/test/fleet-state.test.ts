import { describe, expect, it } from "vitest";
import { defaultThresholds, FleetState, type StateChange } from "@pifleet/coordinator";
import { v1 } from "@pifleet/proto";

function setup(n = 3) {
  let now = 1_000_000;
  const fleet = new FleetState(
    Array.from({ length: n }, (_, i) => ({ name: `pi0${i + 1}`, port: i + 1 })),
    { ...defaultThresholds(1000), startupGraceMs: 0 },
    { now: () => now, fileserver: "fs" },
  );
  const changes: StateChange[] = [];
  fleet.on("state", (c) => changes.push(c));
  return { fleet, changes, tick: (ms: number) => (now += ms), at: () => now };
}

const good = (_pi: string) => v1.PiSample.create({ timeMs: 1, apache: { reachable: true, busyWorkers: 1, idleWorkers: 9 }, probe: { ok: true, status: 200 }, rootfs: { stalled: false } });

describe("fleet state", () => {
  it("moves unknown → healthy → suspect → down with silence, each change an event with its reason", () => {
    const { fleet, changes, tick, at } = setup(1);
    fleet.sample("pi01", good("pi01"), at());
    tick(2500);
    fleet.sweep(at());
    tick(600);
    fleet.sweep(at());
    expect(changes.map((c) => `${c.from}→${c.to}`)).toEqual(["unknown→healthy", "healthy→suspect", "suspect→down"]);
    expect(changes[1].reason).toMatch(/late/);
    expect(changes.every((c) => c.actor === "judge")).toBe(true);
    expect(fleet.pis.get("pi01")!.status.state).toBe(v1.PiState.PI_STATE_DOWN);
  });

  it("a sweep marks only the Pis whose last report is late", () => {
    const { fleet, tick, at } = setup(3);
    for (const p of ["pi01", "pi02", "pi03"]) fleet.sample(p, good(p), at());
    tick(1500);
    fleet.sample("pi01", good("pi01"), at()); // pi01 is now the most recent
    tick(1000);
    fleet.sweep(at());
    expect([...fleet.pis.values()].map((e) => e.health)).toEqual(["healthy", "suspect", "suspect"]);
  });

  it("a recovery state is shown over the judge's verdict, which keeps being computed, and null hands back", () => {
    const { fleet, changes, tick, at } = setup(1);
    fleet.sample("pi01", good("pi01"), at());
    fleet.setRecoveryState("pi01", "power-cycling", "port 1 off", "recovery");
    tick(3500);
    fleet.sweep(at());
    expect(fleet.pis.get("pi01")!.state).toBe("power-cycling");
    expect(fleet.health("pi01")).toBe("down");
    fleet.setRecoveryState("pi01", "booting", "power restored");
    fleet.sample("pi01", good("pi01"), at());
    expect(fleet.health("pi01")).toBe("healthy");
    expect(fleet.pis.get("pi01")!.state).toBe("booting");
    fleet.setRecoveryState("pi01", null, "recovered");
    expect(changes.map((c) => `${c.from}→${c.to}:${c.actor}`)).toEqual([
      "unknown→healthy:judge",
      "healthy→power-cycling:recovery",
      "power-cycling→booting:recovery",
      "booting→healthy:recovery",
    ]);
    expect(changes.at(-1)!.reason).toBe("recovered");
    expect(() => fleet.setRecoveryState("pi01", "healthy" as never, "x")).toThrow(/not a recovery state/);
  });

  it("replayed reports are passed on but not judged", () => {
    const { fleet, changes, at } = setup(1);
    const seen: boolean[] = [];
    fleet.on("report", (_p, r) => seen.push(Boolean(r.replayed)));
    fleet.sample("pi01", v1.PiSample.create({ ...good("pi01"), replayed: true }), at());
    expect(changes).toEqual([]);
    expect(seen).toEqual([true]);
    expect(fleet.pis.get("pi01")!.lastSample()).toBeNull();
  });

  it("keeps per-state counts and the fleet's healthy count as states change", () => {
    const { fleet, at } = setup(3);
    expect(fleet.stateCounts().get(v1.PiState.PI_STATE_UNKNOWN)).toBe(3);
    fleet.sample("pi01", good("pi01"), at());
    fleet.sample("pi02", good("pi02"), at());
    expect(fleet.fleetStatus.pisHealthy).toBe(2);
    expect(fleet.fleetStatus.pisTotal).toBe(3);
    expect(fleet.stateCounts().get(v1.PiState.PI_STATE_UNKNOWN)).toBe(1);
  });

  it("restores stored state, recovery states included, and round-trips the last report", () => {
    const a = setup(2);
    a.fleet.setFacts("pi01", { memTotalKib: 947_840, interfaces: ["eth0", "eth0.131"] });
    a.fleet.sample("pi01", good("pi01"), a.at());
    a.fleet.setRecoveryState("pi02", "quarantined", "still down after 3 attempts");
    const rows = [...a.fleet.pis.values()].map((e) => a.fleet.record(e));
    const b = setup(2);
    b.fleet.restore(rows);
    expect(b.fleet.pis.get("pi01")!.state).toBe("healthy");
    expect(b.fleet.pis.get("pi01")!.lastSample()!.apache!.idleWorkers).toBe(9);
    expect(b.fleet.pis.get("pi01")!.facts!.interfaces).toEqual(["eth0", "eth0.131"]);
    expect(b.fleet.pis.get("pi02")!.state).toBe("quarantined");
    expect(b.fleet.pis.get("pi02")!.override).toBe("quarantined");
    expect(b.fleet.fleetStatus.pisHealthy).toBe(1);
  });

  it("judges the fileserver from its reports and its silence", () => {
    const { fleet, tick, at } = setup(1);
    const seen: boolean[] = [];
    fleet.on("fileserverHealth", (c) => seen.push(c.healthy));
    fleet.fileserverReport("fs", v1.FileserverReport.create({ fileserver: "fs", healthy: true, nfsServerRunning: true }), at());
    expect(fleet.fileserverHealthy()).toBe(true);
    tick(3000);
    fleet.sweep(at());
    expect(fleet.fileserverHealthy()).toBe(false);
    expect(seen).toEqual([true, false]);
    expect(fleet.fleetStatus.fileserverHealthy).toBe(false);
  });

  it("puts the fileserver's name, reason and every report's time in the FleetStatus, emitted per report", () => {
    const { fleet, tick, at } = setup(1);
    expect(fleet.fleetStatus).toMatchObject({ fileserver: "fs", fileserverReason: "no report yet", fileserverHealthy: false });
    expect(Number(fleet.fleetStatus.fileserverLastSeenMs)).toBe(0);
    const emitted: number[] = [];
    fleet.on("fleetStatus", (f) => emitted.push(Number(f.fileserverLastSeenMs)));
    const report = v1.FileserverReport.create({ fileserver: "fs", healthy: true, nfsServerRunning: true });
    fleet.fileserverReport("fs", report, at());
    const first = at();
    tick(1000);
    // Nothing else changed: the report's time alone is sent.
    fleet.fileserverReport("fs", report, at());
    expect(emitted).toEqual([first, first + 1000]);
    expect(fleet.fleetStatus.fileserverReason).toBe("reporting healthy");
    fleet.fileserverReport("fs", v1.FileserverReport.create({ fileserver: "fs", healthy: true, nfsServerRunning: false }), at());
    expect(fleet.fleetStatus).toMatchObject({ fileserverHealthy: false, fileserverReason: "NFS server not running" });
    // The agent's own error names the same cause: the reason says it once.
    fleet.fileserverReport("fs", v1.FileserverReport.create({ fileserver: "fs", healthy: false, nfsServerRunning: false, error: "NFS server not running; trunk eth0 down" }), at());
    expect(fleet.fleetStatus.fileserverReason).toBe("reports itself unhealthy; NFS server not running; trunk eth0 down");
    // Another name's report is not this fileserver's.
    fleet.fileserverReport("other", report, at() + 5);
    expect(Number(fleet.fleetStatus.fileserverLastSeenMs)).toBe(first + 1000);
  });

  it("restores a last report stored before 0.2 (a PiReport) as a sample with its facts", () => {
    const a = setup(1);
    const row = a.fleet.record(a.fleet.pis.get("pi01")!);
    const old = v1.PiReport.encode({ pi: "pi01", timeMs: 5, memTotalBytes: 1024 * 1000, load: { one: 0.5, five: 0.25, fifteen: 0 }, net: [{ interface: "eth0", rxBytes: 9 }], apache: { reachable: true, busyWorkers: 2, idleWorkers: 8, scoreboard: "WW________" } }).finish();
    const b = setup(1);
    b.fleet.restore([{ ...row, lastReport: old }]);
    const r = b.fleet.pis.get("pi01")!.lastReading()!;
    expect(r).toMatchObject({ timeMs: 5, load: { one: 0.5, five: 0.25, fifteen: 0 }, memTotalBytes: 1024 * 1000, apache: { busyWorkers: 2, idleWorkers: 8, slots: { W: 2, _: 8 } } });
    expect(b.fleet.pis.get("pi01")!.facts!.interfaces).toEqual(["eth0"]);
  });
});

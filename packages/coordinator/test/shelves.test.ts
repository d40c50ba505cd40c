import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, v1 } from "@pifleet/proto";
import { defaultThresholds, FeedMirror, FleetState, renderWatch } from "@pifleet/coordinator";

const good = () => v1.PiSample.create({ timeMs: 1, apache: { reachable: true, busyWorkers: 1, idleWorkers: 9 }, probe: { ok: true, status: 200 }, rootfs: { stalled: false } });

describe("the feed groups by shelf", () => {
  it("keeps each shelf's healthy/suspect/down/other counts as states change, and its pause reason", () => {
    let now = 1_000_000;
    const refs = [
      { name: "a1", port: 1, shelf: "a" },
      { name: "a2", port: 2, shelf: "a" },
      { name: "b1", port: 1, shelf: "b" },
    ];
    const fleet = new FleetState(refs, { ...defaultThresholds(1000), startupGraceMs: 0 }, { now: () => now, fileserver: "fs" });
    const shelf = (n: string) => fleet.fleetStatus.shelves.find((s) => s.name === n)!;
    expect(fleet.fleetStatus.shelves.map((s) => s.name)).toEqual(["a", "b"]);
    expect(fleet.pis.get("b1")!.status.shelf).toBe("b");
    expect(shelf("a")).toMatchObject({ pisTotal: 2, healthy: 0, other: 2 });

    for (const r of refs) fleet.sample(r.name, good(), now);
    expect(shelf("a")).toMatchObject({ healthy: 2, suspect: 0, down: 0, other: 0 });
    expect(shelf("b")).toMatchObject({ healthy: 1 });

    // a2 goes silent: suspect, then down — counted on shelf a only.
    now += 1500;
    for (const r of ["a1", "b1"]) fleet.sample(r, good(), now);
    now += 1000;
    for (const r of ["a1", "b1"]) fleet.sample(r, good(), now);
    fleet.sweep(now);
    now += 700;
    for (const r of ["a1", "b1"]) fleet.sample(r, good(), now);
    fleet.sweep(now);
    expect(shelf("a")).toMatchObject({ healthy: 1, down: 1 });
    expect(shelf("b")).toMatchObject({ healthy: 1, suspect: 0, down: 0 });

    fleet.setRecoveryState("a2", "power-cycling", "port 2 off");
    expect(shelf("a")).toMatchObject({ healthy: 1, down: 0, other: 1 });

    fleet.setRecoveryStatus({ alarm: false, alarmReason: "", active: 1, shelves: [{ shelf: "b", alarm: false, alarmReason: "", paused: "the switch sw-b is unreachable" }] });
    expect(shelf("b").pausedReason).toBe("the switch sw-b is unreachable");
    expect(shelf("a").pausedReason).toBe("");
  });

  it("pifleet watch: the whole fleet shows one line per shelf; --shelf shows only that shelf's Pis and its pause", () => {
    const pis: v1.PiStatus.$Properties[] = [
      { name: "s1-pi01", port: 1, shelf: "shelf1", state: v1.PiState.PI_STATE_HEALTHY, reason: "ok" },
      { name: "s2-pi01", port: 1, shelf: "shelf2", state: v1.PiState.PI_STATE_DOWN, reason: "no report" },
      { name: "s2-pi02", port: 2, shelf: "shelf2", state: v1.PiState.PI_STATE_HEALTHY, reason: "ok" },
    ];
    const shelves: v1.ShelfStatus.$Properties[] = [
      { name: "shelf1", pisTotal: 1, healthy: 1 },
      { name: "shelf2", pisTotal: 2, healthy: 1, down: 1, pausedReason: "the switch demo-switch-2 is unreachable" },
    ];
    const m = new FeedMirror();
    m.apply(decodeEnvelope(encodeEnvelope({ seq: 1, snapshot: { fleet: "demo", pis, events: [], fleetStatus: { pisTotal: 3, fileserverHealthy: true, shelves } } })));
    const opts = { now: Date.UTC(2026, 0, 1), columns: 200, rows: 40, connected: true, url: "ws://x", color: false };

    const all = renderWatch(m, opts);
    expect(all[0]).toMatch(/^fleet demo: 3 Pis/);
    const head = all.findIndex((l) => l.startsWith("SHELF"));
    expect(all[head]).toMatch(/^SHELF\s+PIS\s+HEALTHY\s+SUSPECT\s+DOWN\s+OTHER\s+RECOVERY$/);
    expect(all[head + 2]).toMatch(/^shelf1\s+1\s+1\s+0\s+0\s+0\s*$/);
    expect(all[head + 3]).toMatch(/^shelf2\s+2\s+1\s+0\s+1\s+0\s+paused: the switch demo-switch-2 is unreachable$/);

    const one = renderWatch(m, { ...opts, shelf: "shelf2" });
    expect(one[0]).toMatch(/^fleet demo, shelf shelf2: 2 Pis · (1 down, 1 healthy|1 healthy, 1 down) ·/);
    expect(one).toContain("recovery paused: the switch demo-switch-2 is unreachable");
    expect(one.some((l) => l.startsWith("s2-pi01"))).toBe(true);
    expect(one.some((l) => l.startsWith("s1-pi01"))).toBe(false);
    expect(one.some((l) => l.startsWith("SHELF"))).toBe(false);
  });
});

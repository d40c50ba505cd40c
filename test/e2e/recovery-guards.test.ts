import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// The guards that keep automatic recovery from making an outage worse, on a real emulated shelf:
// many Pis going dark at once is a network or coordinator fault (no Pi is power-cycled, one
// alarm is raised), and no Pi is cycled while the fileserver could not boot it.

const CONFIRM_MS = 1500;
const DWELL_S = 2;
/** Longer than confirmation plus a whole cycle: had the engine acted, the emulator would have seen it. */
const QUIET_MS = CONFIRM_MS + DWELL_S * 1000 + 4500;

describe("recovery guards", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "guards", pis: 5, dwellSeconds: DWELL_S, recovery: { startupGraceMs: 1000, confirmMs: CONFIRM_MS, darkShare: 0.3, bootTimeoutMs: 30_000 } });
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("partition: 60 % of the agents stop at once → no power action, exactly one fleet alarm", async () => {
    const { demo, feed, power } = shelf;
    const dark = demo.pis.slice(0, 3);
    const from = power.length;
    const since = Date.now();
    await Promise.all(dark.map((p) => p.fault("kill")));

    await feed.until("the three Pis down on the feed", () => dark.every((p) => feed.state(p.name) === "down"), 15_000);
    const alarmed = await feed.until("FleetStatus.alarm on the feed", () => feed.fleet.find((f) => f.at >= since && f.alarm), 5000);
    expect(alarmed.alarmReason).toMatch(/of 5 Pis .* no Pi is power-cycled/);
    await sleep(QUIET_MS);

    expect(power.slice(from), "power actions during the partition").toEqual([]);
    const alarms = feed.events.filter((e) => e.kind === "alarm" && Number(e.timeMs) >= since);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({ subject: "fleet", message: expect.stringMatching(/^FLEET ALARM: \d of 5 Pis \(\d+ %\) are unhealthy at once/) });
    expect(feed.mirror.fleetStatus?.alarm).toBe(true);
    for (const p of dark) expect(feed.stateTrail(p.name, since).filter((s) => s !== "healthy")).toEqual(["suspect", "down"]);
    expect(feed.events.filter((e) => e.kind === "power" && Number(e.timeMs) >= since)).toEqual([]);

    // The partition heals (here: the three Pis restart by themselves, not through the switch).
    await Promise.all(dark.map(async (p) => {
      await p.power(false);
      await p.power(true);
    }));
    await feed.until("the alarm cleared and every Pi healthy", () => feed.mirror.fleetStatus?.alarm === false && demo.pis.every((p) => feed.state(p.name) === "healthy") && feed.mirror.fleetStatus.activeRemediations === 0, 45_000);
    expect(feed.events.filter((e) => e.kind === "alarm" && Number(e.timeMs) >= since).map((e) => e.message)).toEqual([alarms[0].message, "fleet alarm cleared: recovery resumes"]);
  }, 120_000);

  it("fileserver unhealthy → a dead Pi is not power-cycled; NFS back → it is recovered", async () => {
    const { demo, feed, power } = shelf;
    const since = Date.now();
    demo.setNfsServer(false);
    await feed.until("FleetStatus.fileserverHealthy false on the feed", () => feed.fleet.some((f) => f.at >= since && !f.fileserverHealthy) && feed.mirror.fleetStatus?.fileserverHealthy === false, 15_000);

    const pi = demo.pis[3];
    const port = 4;
    const from = power.length;
    await pi.fault("kill");
    await feed.until("pi04 down on the feed", () => feed.state("pi04") === "down", 15_000);
    await sleep(QUIET_MS);
    expect(power.slice(from), "power actions while the fileserver is unhealthy").toEqual([]);
    expect(feed.state("pi04")).toBe("down");
    expect(feed.events.some((e) => e.kind === "recovery" && e.subject === "fleet" && Number(e.timeMs) >= since && /^recovery paused: the fileserver is unhealthy/.test(e.message))).toBe(true);

    const nfsBack = Date.now();
    demo.setNfsServer(true);
    await feed.until("pi04 recovered once the fileserver is healthy", () => feed.eventsFor("pi04", nfsBack, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi04") === "healthy", 45_000);
    expect(feed.mirror.fleetStatus?.fileserverHealthy).toBe(true);
    expect(power.slice(from).map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port, on: false },
      { port, on: true },
    ]);
    expect(power[from].at).toBeGreaterThan(nfsBack);
    expect(feed.events.some((e) => e.kind === "recovery" && e.subject === "fleet" && Number(e.timeMs) >= nfsBack && e.message === "recovery resumed")).toBe(true);
  }, 120_000);
});

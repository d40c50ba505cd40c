import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pifleet } from "./helpers/cli.js";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// The guards that keep automatic recovery from making an outage worse, on a real emulated shelf:
// many Pis going dark at once is a network or coordinator fault (no Pi is power-cycled, one
// alarm is raised); once the alarm clears, Pis still dark get the agents' whole reconnect
// back-off before any power action; no Pi is cycled while the fileserver could not boot it; and a
// Pi whose agent is refused for its credentials is not a dead Pi.

const CONFIRM_MS = 1500;
const DWELL_S = 2;
/** The Pi agents' own longest reconnect back-off (FleetClient): the production default. */
const BACKOFF_MS = 15_000;
/** After a guard lifts, nothing is power-cycled for this long. */
const FRESH_MS = CONFIRM_MS + BACKOFF_MS;
/** Longer than confirmation plus a whole cycle: had the engine acted, the emulator would have seen it. */
const QUIET_MS = CONFIRM_MS + DWELL_S * 1000 + 4500;

describe("recovery guards", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "guards", pis: 5, dwellSeconds: DWELL_S, recovery: { startupGraceMs: 1000, confirmMs: CONFIRM_MS, reconnectBackoffMs: BACKOFF_MS, darkShare: 0.3, bootTimeoutMs: 30_000 } });
    // Past the start-up grace's own fresh window: the tests below start from steady state.
    // Which guard lifts last depends on who reports first: on a loaded machine the fileserver's
    // agent may still be silent when the start-up grace ends, and its own guard lifts after.
    const lifted = await shelf.feed.until(
      "every start-up guard lifted",
      () => {
        const rec = shelf.feed.events.filter((e) => e.kind === "recovery");
        const last = rec.filter((e) => e.fields.guard).at(-1);
        const pausedAfter = last && rec.some((e) => Number(e.id) > Number(last.id) && /paused/.test(e.message));
        return last && !pausedAfter && shelf.demo.pis.every((p) => shelf.feed.state(p.name) === "healthy") ? last : undefined;
      },
      60_000,
    );
    await sleep(Math.max(0, Number(lifted.timeMs) + FRESH_MS + 500 - Date.now()));
  }, 460_000);

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

    // The partition heals, and the agents come back over the reconnect back-off (here: each Pi
    // restarts by itself, not through the switch, 0.5, 7 and 14.5 s after the heal). The alarm
    // clears once two are back (1 of 5 dark); the last is still dark then, and long past confirm.
    const heal = Date.now();
    await Promise.all(
      [500, 7000, 14_500].map(async (ms, k) => {
        await sleep(ms);
        await dark[k].power(false);
        await dark[k].power(true);
      }),
    );
    await feed.until("the alarm cleared and every Pi healthy", () => feed.mirror.fleetStatus?.alarm === false && demo.pis.every((p) => feed.state(p.name) === "healthy") && feed.mirror.fleetStatus.activeRemediations === 0, 45_000);
    expect(feed.events.filter((e) => e.kind === "alarm" && Number(e.timeMs) >= since).map((e) => e.message)).toEqual([alarms[0].message, "fleet alarm cleared: recovery resumes"]);
    const cleared = feed.events.find((e) => e.kind === "alarm" && Number(e.timeMs) >= since && /cleared/.test(e.message))!;
    const lastBack = feed.states.find((s) => s.pi === dark[2].name && s.at > heal && s.state === "healthy")!;
    process.stderr.write(`partition heal: alarm cleared ${Number(cleared.timeMs) - heal} ms after the heal, the last Pi back ${lastBack.at - heal} ms after it\n`);
    expect(lastBack.at).toBeGreaterThan(Number(cleared.timeMs)); // a straggler, dark when the alarm cleared
    // Through the whole fresh window after the alarm cleared: no power action at all.
    await sleep(Math.max(0, Number(cleared.timeMs) + FRESH_MS + 2000 - Date.now()));
    expect(power.slice(from), "power actions after the partition healed").toEqual([]);
    expect(feed.events.filter((e) => e.kind === "power" && Number(e.timeMs) >= since)).toEqual([]);
    expect(feed.events.find((e) => e.kind === "recovery" && e.subject === "fleet" && Number(e.timeMs) >= since && e.message.startsWith("fleet alarm cleared: no Pi is power-cycled before 16.5 s from now"))).toBeDefined();
  }, 150_000);

  it("one Pi truly dead during the alarm is cycled only after the fresh confirm window once the alarm clears", async () => {
    const { demo, feed, power } = shelf;
    const dark = demo.pis.slice(0, 3);
    const from = power.length;
    const since = Date.now();
    await Promise.all(dark.map((p) => p.fault("kill")));
    await feed.until("the fleet alarm", () => feed.mirror.fleetStatus?.alarm === true, 15_000);
    await sleep(CONFIRM_MS + 2000); // every dark Pi has "waited" past confirm under the alarm
    // Two come back; pi03 stays dead (its agent was killed: only a power-cycle brings it back).
    await Promise.all(dark.slice(0, 2).map(async (p) => {
      await p.power(false);
      await p.power(true);
    }));
    const cleared = await feed.until("the alarm cleared", () => feed.events.find((e) => e.kind === "alarm" && Number(e.timeMs) >= since && /cleared/.test(e.message)), 20_000);
    const off = await feed.until("pi03's port off", () => power.slice(from).find((c) => c.port === 3 && !c.on), FRESH_MS + 15_000);
    const after = off.at - Number(cleared.timeMs);
    process.stderr.write(`truly dead: pi03's port off ${after} ms after the alarm cleared (fresh window ${FRESH_MS} ms)\n`);
    expect(after).toBeGreaterThanOrEqual(FRESH_MS);
    expect(after).toBeLessThan(FRESH_MS + 3000);
    await feed.until("pi03 recovered", () => feed.eventsFor("pi03", off.at, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi03") === "healthy", 45_000);
    expect(power.slice(from).map((c) => `${c.port}:${c.on ? "on" : "off"}`)).toEqual(["3:off", "3:on"]);
    // Quiet again before the next test: past this Pi's own lift window.
    await feed.until("every Pi healthy", () => demo.pis.every((p) => feed.state(p.name) === "healthy") && feed.mirror.fleetStatus?.activeRemediations === 0, 30_000);
  }, 150_000);

  it("a revoked Pi goes silent: no power action, no rebuild, one event naming the reason; re-enrolled, it is back", async () => {
    const { demo, feed, power } = shelf;
    const pi = demo.pis[4];
    const from = power.length;
    const since = Date.now();
    const db = path.join(shelf.dir, "coordinator.db");
    const revoke = await pifleet(["enroll", "pi05", "--db", db, "--revoke"]);
    expect(revoke, revoke.stderr).toMatchObject({ code: 0 });
    await feed.until("pi05 credentials-refused on the feed", () => feed.state("pi05") === "credentials-refused", 15_000);
    // Its agent keeps retrying (and is refused) while recovery would long have acted on a dead Pi.
    await sleep(CONFIRM_MS + DWELL_S * 1000 + 20_000);
    expect(feed.state("pi05")).toBe("credentials-refused");
    expect(feed.mirror.pis.get("pi05")!.reason).toMatch(/^its agent is refused for its credentials \(revoked\): "pi05" was revoked; no power or rebuild action until a person acts/);
    expect(power.slice(from), "power actions on a revoked Pi").toEqual([]);
    const about = feed.eventsFor("pi05", since);
    expect(about.filter((e) => e.kind !== "lb"), about.map((e) => `${e.kind}: ${e.message}`).join("\n")).toHaveLength(1);
    expect(about[0]).toMatchObject({ kind: "auth", fields: expect.objectContaining({ reason: "revoked", to: "credentials-refused" }) });
    expect(about[0].message).toMatch(/refused unauthenticated \(revoked\) .*pi05 is shown credentials-refused/);
    expect(feed.events.filter((e) => Number(e.timeMs) >= since && (e.kind === "command" || (e.kind !== "auth" && /rebuild/.test(e.message))))).toEqual([]);
    expect(shelf.withStore((s) => s.intents().filter((i) => i.pi === "pi05" && i.createdMs >= since))).toEqual([]);
    expect(feed.mirror.fleetStatus?.alarm).toBe(false);

    // A person re-enrols it and installs the new secret: its agent's next connection is accepted.
    const back = Date.now();
    const enrol = await pifleet(["enroll", "pi05", "--db", db, "--out", path.join(shelf.dir, "secrets", "pi05.secret")]);
    expect(enrol, enrol.stderr).toMatchObject({ code: 0 });
    await pi.power(false);
    await pi.power(true);
    await feed.until("pi05 healthy again", () => feed.state("pi05") === "healthy", 30_000);
    expect(feed.eventsFor("pi05", back, ["state"]).map((e) => `${e.fields.from} → ${e.fields.to}: ${e.fields.reason}`)[0]).toMatch(/^credentials-refused → \w+: its agent authenticated again$/);
    expect(power.slice(from)).toEqual([]);
  }, 150_000);

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
    await feed.until("the fileserver healthy again", () => feed.mirror.fleetStatus?.fileserverHealthy === true, 15_000);
    await feed.until("pi04 recovered once the fileserver is healthy", () => feed.eventsFor("pi04", nfsBack, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi04") === "healthy", 45_000);
    expect(feed.mirror.fleetStatus?.fileserverHealthy).toBe(true);
    expect(power.slice(from).map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port, on: false },
      { port, on: true },
    ]);
    // Seen down afresh after the guard lifted: confirm plus the agents' reconnect back-off.
    expect(power[from].at - nfsBack).toBeGreaterThanOrEqual(FRESH_MS);
    expect(feed.events.some((e) => e.kind === "recovery" && e.subject === "fleet" && Number(e.timeMs) >= nfsBack && e.message === "recovery resumed")).toBe(true);
  }, 120_000);
});

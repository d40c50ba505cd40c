import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { v1 } from "@pifleet/proto";
import { inOrder } from "./helpers/feed-watch.js";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// A Pi's agent dies on a real emulated shelf: the coordinator sees it go silent, drains it in
// HAProxy, power-cycles its switch port over SNMP, and the Pi boots and serves again — all by
// itself. The feed, HAProxy, the switch emulator and the event log are each checked.

describe("automatic recovery of a dead Pi: drain → power-cycle → boot → healthy", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "cycle", pis: 4, recovery: { startupGraceMs: 1000, confirmMs: 1500, bootTimeoutMs: 30_000 } });
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  it("kill pi02's agent: the shelf brings it back, every step seen and logged in order", async () => {
    const { demo, feed, lb, power } = shelf;
    const pi = demo.pis[1];
    expect(pi.name).toBe("pi02");
    const port = 2;
    const oldPid = pi.agentPid;
    expect(oldPid).toBeGreaterThan(0);
    expect((await lb.server("pi02")).admin).toBe("ready");

    const killedAt = Date.now();
    const powerBefore = power.length;
    await pi.fault("kill");

    // During the cycle (port off, dwelling): HAProxy has the server in drain.
    const off = await feed.until("pi02's port switched off", () => power.slice(powerBefore).find((c) => c.port === port && !c.on), 30_000);
    const duringCycle = await lb.server("pi02");
    expect(duringCycle.admin).toBe("drain");

    await feed.until(
      "pi02 healthy again after its cycle",
      () => feed.eventsFor("pi02", killedAt, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi02") === "healthy",
      45_000,
    );
    const after = await lb.server("pi02");
    expect(after.admin).toBe("ready");

    // The switch: exactly one off, then one on, of pi02's port and no other.
    const changes = power.slice(powerBefore);
    expect(changes.map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port, on: false },
      { port, on: true },
    ]);
    expect(changes[1].at - off.at).toBeGreaterThanOrEqual(2000 - 50); // the fleet's dwell: 2 s

    // The emulator's power hook booted a fresh agent process.
    const newPid = pi.agentPid;
    expect(newPid).toBeGreaterThan(0);
    expect(newPid).not.toBe(oldPid);

    // The feed told the whole story: its state events name every step in order; its Pi statuses
    // (which may fold two changes a few ms apart into one delta) never go backwards.
    const steps = ["suspect", "down", "drained", "power-cycling", "booting", "healthy"];
    const stateEvents = feed.eventsFor("pi02", killedAt, ["state"]);
    expect(stateEvents.map((e) => e.fields.to)).toEqual(steps);
    const trail = feed.stateTrail("pi02", killedAt);
    while (trail[0] === "healthy") trail.shift(); // statuses of reports sent before the agent died
    const ranks = trail.map((s) => steps.indexOf(s));
    expect(ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1])), `trail: ${trail.join(" → ")}`).toBe(true);
    expect(trail.slice(-3), `trail: ${trail.join(" → ")}`).toEqual(["power-cycling", "booting", "healthy"]);
    // No other Pi was touched (a loaded machine may make one briefly suspect; never more).
    for (const other of ["pi01", "pi03", "pi04"]) expect(feed.stateTrail(other, killedAt).filter((s) => s !== "healthy" && s !== "suspect"), other).toEqual([]);

    // The event log, as the feed delivered it: every step, in order, each with its reason.
    const log = feed.eventsFor("pi02", killedAt, ["state", "power", "lb", "recovery"]);
    const story = log.map((e) => `${e.kind}: ${e.message}`);
    process.stderr.write(`pi02's recovery as logged:\n${story.map((s) => `  ${s}`).join("\n")}\n`);
    const state = (to: string) => (e: v1.FleetEvent) => e.kind === "state" && e.fields.to === to;
    const msg = (kind: string, re: RegExp) => (e: v1.FleetEvent) => e.kind === kind && re.test(e.message);
    expect(
      inOrder(log, [
        (e) => e.kind === "state" && /^(suspect|down)$/.test(e.fields.to ?? ""),
        state("down"),
        state("drained"),
        msg("recovery", /^drained: down for \d+ s \(attempt 1\)/),
        msg("lb", /^drained in the load balancer/),
        state("power-cycling"),
        msg("power", new RegExp(`^port ${port} off: power-cycling \\(attempt 1\\)`)),
        msg("power", new RegExp(`^port ${port} on`)),
        state("booting"),
        msg("lb", /^ready in the load balancer/),
        state("healthy"),
        msg("recovery", /^healthy again after attempt 1/),
      ]),
      story.join("\n"),
    ).toBe(true);
    for (const e of log.filter((x) => x.kind === "state")) expect(e.fields.reason, e.message).toMatch(/\w/);
    expect(log.find(state("down"))!.fields.reason).toMatch(/no report for/);
    expect(log.find(state("healthy"))!.fields.reason).toBe("recovered");
    // The power intent around the cycle was closed as done.
    const powerEvents = log.filter((e) => e.kind === "power");
    expect(powerEvents.map((e) => e.fields.intent)).toEqual([powerEvents[0].fields.intent, powerEvents[0].fields.intent]);

    // The same events are in the coordinator's database, with the same ids.
    shelf.withStore((store) => {
      const stored = new Map(store.events({ subject: "pi02", limit: 10_000 }).map((e) => [e.id, e]));
      for (const e of log) expect(stored.get(Number(e.id))).toMatchObject({ kind: e.kind, message: e.message });
      const intent = store.intents().find((i) => String(i.id) === powerEvents[0].fields.intent);
      expect(intent).toMatchObject({ pi: "pi02", port, status: "done" });
      expect(store.openIntents()).toEqual([]);
    });
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// The coordinator is killed (SIGKILL: no clean-up of any kind) while a Pi's port is switched off
// mid-cycle. The power intent it wrote before switching the port off is what the restarted
// coordinator finds: it switches the port back on before anything else.

const DWELL_S = 10;

describe("crash safety: a coordinator killed mid-cycle leaves no port off", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "crash", pis: 4, dwellSeconds: DWELL_S, recovery: { startupGraceMs: 1000, confirmMs: 1500, bootTimeoutMs: 30_000 } });
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  it("kill -9 the coordinator while pi03's port is off: the restarted one switches it on within 5 s", async () => {
    const { demo, feed, power, lb } = shelf;
    const pi = demo.pis[2];
    const port = 3;
    const killedAt = Date.now();
    const from = power.length;
    await pi.fault("kill");

    const off = await feed.until("pi03's port switched off by the recovery engine", () => power.slice(from).find((c) => c.port === port && !c.on), 30_000);
    // The intent is on disk before the port goes off.
    const intent = shelf.withStore((s) => s.openIntents().find((i) => i.pi === "pi03"));
    expect(intent).toMatchObject({ port, status: "open" });

    const old = demo.coordinator;
    const restartAt = Date.now();
    await demo.restartCoordinator("SIGKILL");
    expect(old.signalCode).toBe("SIGKILL");
    expect(restartAt - off.at).toBeLessThan(DWELL_S * 1000); // killed mid-dwell: the old process never switched it on

    const on = await feed.until("pi03's port on again", () => power.slice(from).find((c) => c.port === port && c.on), 20_000);
    const afterRestart = on.at - restartAt;
    process.stderr.write(`port ${port}: off at +${off.at - killedAt} ms after the kill, coordinator killed ${restartAt - off.at} ms into the ${DWELL_S} s dwell, back on ${afterRestart} ms after the restart began\n`);
    expect(on.at).toBeGreaterThan(restartAt);
    expect(afterRestart).toBeLessThanOrEqual(5000);
    expect(power.slice(from).map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port, on: false },
      { port, on: true },
    ]);

    // The intent is closed as recovered, and the event log says why the port came on.
    const closed = shelf.withStore((s) => s.intents().find((i) => i.id === intent!.id));
    expect(closed).toMatchObject({ pi: "pi03", port, status: "undone", note: expect.stringMatching(/coordinator restart/) });
    shelf.withStore((s) => expect(s.openIntents()).toEqual([]));
    const logged = await feed.until(
      "the power event of the restarted coordinator",
      () => feed.eventsFor("pi03", killedAt, ["power"]).find((e) => e.fields.intent === String(intent!.id) && /switched back on/.test(e.message)),
      10_000,
    );
    expect(logged.message).toMatch(new RegExp(`^port ${port} switched back on: a power action \\(power-cycling \\(attempt 1\\)\\) was interrupted by a coordinator restart`));
    expect(Number(logged.timeMs)).toBeGreaterThanOrEqual(restartAt);

    // The Pi, booted by that power, is given its boot window — not judged dead and cycled again —
    // and is back in service: healthy on the feed, ready in HAProxy, no further power action.
    await feed.until("pi03 healthy after the restart", () => feed.eventsFor("pi03", restartAt, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi03") === "healthy", 40_000);
    const story = feed.eventsFor("pi03", restartAt, ["state", "power", "lb", "recovery"]);
    process.stderr.write(`pi03 after the restart:\n${story.map((e) => `  ${e.kind}: ${e.message}`).join("\n")}\n`);
    expect(story.filter((e) => e.kind === "state").map((e) => `${e.fields.from} → ${e.fields.to}`)).toEqual(["power-cycling → booting", "booting → healthy"]);
    expect((await lb.server("pi03")).admin).toBe("ready");
    expect(power.slice(from).filter((c) => c.port === port)).toHaveLength(2);
    expect(power.slice(from).every((c) => c.port === port)).toBe(true);
  }, 150_000);
});

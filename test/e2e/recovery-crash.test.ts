import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// The coordinator is killed (SIGKILL: no clean-up of any kind) one second after a Pi's port was
// switched off mid-cycle, with the default 5 s dwell. The power intent it wrote before switching
// the port off, and the time it saw it off, are what the restarted coordinator finds: it keeps the
// port off until the dwell has passed since then — a Pi switched on again too soon may not reset —
// and switches it on before anything else, within 5 s of the restart.

const DWELL_S = 5;

describe("crash safety: a coordinator killed mid-cycle leaves no port off", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "crash", pis: 4, dwellSeconds: DWELL_S, recovery: { startupGraceMs: 1000, confirmMs: 1500, bootTimeoutMs: 30_000 } });
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  it("kill -9 one second after pi03's port went off: it stays off until 5 s after it went off, then on, within 5 s of the restart", async () => {
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

    await new Promise((r) => setTimeout(r, Math.max(0, off.at + 1000 - Date.now())));
    // …and so is the moment the port was seen off. This process hears of the switch's change a
    // little after the coordinator does (the emulator's event crosses a pipe), so the two times
    // agree only within a margin.
    const offMs = shelf.withStore((s) => s.openIntents().find((i) => i.pi === "pi03"))!.offMs;
    expect(offMs).not.toBeNull();
    expect(Math.abs(offMs! - off.at)).toBeLessThan(500);
    const old = demo.coordinator;
    const restartAt = Date.now();
    await demo.restartCoordinator("SIGKILL");
    expect(old.signalCode).toBe("SIGKILL");
    expect(restartAt - off.at).toBeLessThan(DWELL_S * 1000); // killed mid-dwell: the old process never switched it on

    const on = await feed.until("pi03's port on again", () => power.slice(from).find((c) => c.port === port && c.on), 20_000);
    const afterRestart = on.at - restartAt;
    process.stderr.write(`port ${port}: off at +${off.at - killedAt} ms after the kill, coordinator killed ${restartAt - off.at} ms into the ${DWELL_S} s dwell, back on ${afterRestart} ms after the restart began, ${on.at - off.at} ms after it went off\n`);
    expect(on.at).toBeGreaterThan(restartAt);
    expect(on.at - off.at).toBeGreaterThanOrEqual(DWELL_S * 1000);
    expect(afterRestart).toBeLessThanOrEqual(5000);
    expect(power.slice(from).map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port, on: false },
      { port, on: true },
    ]);

    // The intent is closed as recovered, and the event log says why the port came on.
    // The coordinator closes it just after the switch answered the SET, so this process, which
    // hears of the port change through the emulator's pipe, may look a moment before it is written.
    const closed = await feed.until("pi03's intent closed", () => shelf.withStore((s) => s.intents().find((i) => i.id === intent!.id && i.status !== "open")), 5_000);
    expect(closed).toMatchObject({ pi: "pi03", port, status: "undone", note: expect.stringMatching(/coordinator restart/) });
    shelf.withStore((s) => expect(s.openIntents()).toEqual([]));
    const logged = await feed.until(
      "the power event of the restarted coordinator",
      () => feed.eventsFor("pi03", killedAt, ["power"]).find((e) => e.fields.intent === String(intent!.id) && /switched back on/.test(e.message)),
      10_000,
    );
    expect(logged.message).toMatch(new RegExp(`^port ${port} switched back on: a power action \\(power-cycling \\(attempt 1\\)\\) was interrupted by a coordinator restart; it was off \\d+\\.\\d s \\(dwell 5 s\\)`));
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

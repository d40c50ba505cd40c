import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startShelf, type PowerChange, type Shelf } from "./helpers/shelf.js";

// Two shelves, each on its own SNMP switch emulator with the same port numbers and VLAN ids,
// under one real coordinator. Shelf 1's switch stops answering: recovery pauses on shelf 1 only
// (a fleet event names it), and a dead Pi on shelf 2 is still power-cycled on shelf 2's switch
// and comes back.

describe("recovery per shelf: an unreachable switch pauses its own shelf only", () => {
  let shelf: Shelf;
  const power: PowerChange[][] = [[], []];

  beforeAll(async () => {
    shelf = await startShelf({ name: "shelves", pis: 4, shelves: 2, recovery: { startupGraceMs: 1000, confirmMs: 1500, bootTimeoutMs: 30_000 } });
    shelf.demo.emulators.forEach((em, k) => em.on("power", (p: number, on: boolean) => power[k].push({ at: Date.now(), port: p, on })));
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  it("shelf1's switch stops: shelf1 pauses (event names it), shelf2's killed Pi is cycled and recovered", async () => {
    const { demo, feed } = shelf;
    expect(demo.emulators).toHaveLength(2);
    expect(demo.shelfOf.get("s1-pi02")).toBe("shelf1");
    expect(demo.shelfOf.get("s2-pi02")).toBe("shelf2");
    const since = Date.now();

    await demo.emulators[0].stop();
    const paused = await feed.until(
      "recovery paused on shelf1",
      () => feed.events.find((e) => e.subject === "fleet" && Number(e.timeMs) >= since && /^recovery paused on shelf shelf1: the switch demo-switch-1 .* is unreachable/.test(e.message)),
      30_000,
    );
    expect(paused.message).toContain("other shelves carry on");

    // A Pi dies on each shelf. Same port number (2) on both switches.
    const s1 = demo.pis.find((p) => p.name === "s1-pi02")!;
    const s2 = demo.pis.find((p) => p.name === "s2-pi02")!;
    const killedAt = Date.now();
    await s1.fault("kill");
    await s2.fault("kill");

    await feed.until(
      "s2-pi02 healthy again after its cycle",
      () => feed.eventsFor("s2-pi02", killedAt, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("s2-pi02") === "healthy",
      60_000,
    );
    // Shelf 2's switch saw exactly pi02's port off then on.
    expect(power[1].filter((c) => c.at >= killedAt).map((c) => ({ port: c.port, on: c.on }))).toEqual([
      { port: 2, on: false },
      { port: 2, on: true },
    ]);
    // Shelf 1 was left alone: no power action logged for its dead Pi, no pause on shelf2.
    expect(feed.eventsFor("s1-pi02", killedAt, ["power"])).toEqual([]);
    expect(feed.state("s1-pi02")).not.toBe("healthy");
    expect(feed.events.some((e) => Number(e.timeMs) >= since && /^recovery paused on shelf shelf2/.test(e.message))).toBe(false);
  }, 120_000);
});

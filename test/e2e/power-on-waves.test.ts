import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pifleet } from "./helpers/cli.js";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// `pifleet power-on --all` after the whole shelf lost power: the coordinator switches the ports
// on in waves (2 at a time here, 8 by default) through the switch emulator over SNMP, and starts
// the next wave only once every Pi of the last one reported healthy — a whole shelf asking
// DHCP/TFTP/NFS at once is what makes boot ROMs give up (raspberrypi/firmware#764).

const WAVE = 2;

describe("power-on --all in waves", () => {
  let shelf: Shelf;

  beforeAll(async () => {
    shelf = await startShelf({ name: "waves", pis: 4, recovery: { startupGraceMs: 1000, confirmMs: 1500, waveSize: WAVE, waveTimeoutMs: 60_000 } });
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  it("switches the ports on two at a time, the second wave after the first wave's Pis reported healthy, and cycles nothing", async () => {
    const { demo, feed, power } = shelf;
    const ports = [1, 2, 3, 4];
    // A power cut of the whole shelf, as the switch sees it (not by the coordinator).
    for (const p of ports) demo.emulator.setPower(p, false);
    await feed.until("every Pi dark on the feed", () => demo.pis.every((_, i) => feed.state(`pi0${i + 1}`) !== "healthy"), 30_000);
    const from = power.length;
    const started = Date.now();

    const r = await pifleet(["power-on", "--all", "--reason", "shelf power restored", "--url", shelf.feedUrl, "--token", demo.operatorToken]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("powering on 4 Pi(s) in 2 wave(s) of up to 2; follow it in the event log\n");

    await feed.until("power-on finished", () => feed.events.find((e) => e.kind === "power" && e.subject === "fleet" && /^power-on finished: 4 healthy, 0 quarantined, 0 left to recovery, in 2 wave\(s\)/.test(e.message) && Number(e.timeMs) >= started), 90_000);
    const ons = power.slice(from);
    // Only ons, each port once: no Pi was power-cycled.
    expect(ons.every((c) => c.on)).toBe(true);
    expect(ons.map((c) => c.port).sort()).toEqual(ports);
    const at = (port: number) => ons.find((c) => c.port === port)!.at;
    const healthyAt = (pi: string) => feed.states.find((s) => s.pi === pi && s.state === "healthy" && s.at >= started)!.at;
    const firstWave = [at(1), at(2)];
    const secondWave = [at(3), at(4)];
    const firstHealthy = Math.max(healthyAt("pi01"), healthyAt("pi02"));
    process.stderr.write(`wave 1 on at +${firstWave.map((t) => t - started).join("/")} ms, healthy by +${firstHealthy - started} ms; wave 2 on at +${secondWave.map((t) => t - started).join("/")} ms\n`);
    // The second wave waited for the first wave's reports (this process sees them a moment after the coordinator does).
    expect(Math.min(...secondWave)).toBeGreaterThan(Math.max(...firstWave));
    expect(Math.min(...secondWave)).toBeGreaterThanOrEqual(firstHealthy - 250);
    for (const pi of ["pi01", "pi02", "pi03", "pi04"]) expect(feed.state(pi)).toBe("healthy");
    const waves = feed.events.filter((e) => e.kind === "power" && e.subject === "fleet" && Number(e.timeMs) >= started).map((e) => e.message);
    expect(waves).toContain("power-on wave 1: pi01, pi02");
    expect(waves).toContain("power-on wave 2: pi03, pi04");
    // Audited with the operator's name.
    expect(feed.events.some((e) => e.kind === "operator" && e.subject === "fleet" && e.fields.action === "power-on-all" && e.fields.ok === "true")).toBe(true);
  }, 180_000);

  it("a watcher's token cannot power the shelf on: refused, exit 1", async () => {
    const w = await pifleet(["power-on", "--all", "--url", shelf.feedUrl, "--token", shelf.demo.watcherToken]);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/refused/);
  });
});

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { v1 } from "@pifleet/proto";
import { pifleet } from "./helpers/cli.js";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// The operator commands, run as the built `pifleet` CLI against a real emulated shelf: each is
// carried out (HAProxy, the switch emulator and the feed show it) and audited with the name of
// the operator's token; a watcher's token is refused; a cycle during a fleet alarm is refused.

describe("operator commands: pifleet drain / undrain / cycle / release", () => {
  let shelf: Shelf;
  let auth: string[];

  beforeAll(async () => {
    shelf = await startShelf({
      name: "operator",
      pis: 4,
      // One failed boot, then a rebuild, then quarantine: the release test needs a quarantined Pi soon.
      recovery: { startupGraceMs: 1000, confirmMs: 1500, darkShare: 0.3, bootTimeoutMs: 15_000, backoffMs: 3000, cyclesBeforeRebuild: 0 },
    });
    auth = ["--url", shelf.feedUrl, "--token", shelf.demo.operatorToken];
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
  });

  /** The gateway's audit record of one operator request: who asked, what, and the outcome. */
  const audited = (pi: string, action: string, since: number) =>
    shelf.feed.until(`the audit event of ${action} ${pi}`, () => shelf.feed.events.find((e) => e.kind === "operator" && e.subject === pi && e.fields.action === action && Number(e.timeMs) >= since), 10_000);

  it("drain holds a Pi out of HAProxy; undrain puts it back — both audited as the operator", async () => {
    const { feed, lb } = shelf;
    const since = Date.now();
    const drain = await pifleet(["drain", "pi01", ...auth, "--reason", "replacing its SD card"]);
    expect(drain, drain.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^pi01 drained and held/) });
    expect((await lb.server("pi01")).admin).toBe("drain");
    await feed.until("pi01 drained and held on the feed", () => feed.state("pi01") === "drained" && feed.mirror.pis.get("pi01")!.held);
    const d = await audited("pi01", "drain", since);
    expect(d).toMatchObject({ actor: "operator", message: "operator asked to drain pi01 (replacing its SD card): done — pi01 drained and held; recovery leaves it alone until undrain" });
    expect(d.fields).toMatchObject({ ok: "true", reason: "replacing its SD card", role: "operator" });

    const since2 = Date.now();
    const undrain = await pifleet(["undrain", "pi01", ...auth]);
    expect(undrain, undrain.stderr).toMatchObject({ code: 0, stdout: "pi01 back in service\n" });
    expect((await lb.server("pi01")).admin).toBe("ready");
    await feed.until("pi01 healthy and not held", () => feed.state("pi01") === "healthy" && !feed.mirror.pis.get("pi01")!.held);
    expect(await audited("pi01", "undrain", since2)).toMatchObject({ actor: "operator", fields: expect.objectContaining({ ok: "true" }) });
  }, 60_000);

  it("a watcher's token cannot operate: refused, exit 1, nothing done, the refusal audited", async () => {
    const { demo, feed, lb, power } = shelf;
    const since = Date.now();
    const from = power.length;
    const r = await pifleet(["drain", "pi02", "--url", shelf.feedUrl, "--token", demo.watcherToken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pifleet: drain pi02 refused: the coordinator refused watcher: forbidden \(wrong_role\): token "watcher" is a watcher token; it cannot operate/);
    expect(r.stdout).toBe("");
    expect((await lb.server("pi02")).admin).toBe("ready");
    expect(feed.state("pi02")).toBe("healthy");
    expect(power.length).toBe(from);
    await feed.until("the refusal in the audit log", () => feed.events.find((e) => e.kind === "auth" && e.subject === "watcher" && Number(e.timeMs) >= since && /refused forbidden \(wrong_role\)/.test(e.message)));
    expect(feed.events.some((e) => e.kind === "operator" && Number(e.timeMs) >= since)).toBe(false);
    // A token that is not even NAME.SECRET is a usage error.
    expect((await pifleet(["drain", "pi02", "--url", shelf.feedUrl, "--token", "nonsense"])).code).toBe(2);
  }, 60_000);

  it("cycle (URL and token from the environment) power-cycles the port, audited as the operator", async () => {
    const { feed, power } = shelf;
    const since = Date.now();
    const from = power.length;
    const r = await pifleet(["cycle", "pi02", "--yes", "--reason", "stuck NFS mount"], { PIFLEET_URL: shelf.feedUrl, PIFLEET_TOKEN: shelf.demo.operatorToken });
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: "pi02: port 2 cycled; waiting for it to boot\n" });
    // The reply comes once power is back: off then on already happened.
    expect(power.slice(from).map((c) => `${c.port}:${c.on ? "on" : "off"}`)).toEqual(["2:off", "2:on"]);
    const a = await audited("pi02", "cycle", since);
    expect(a).toMatchObject({ actor: "operator", message: expect.stringMatching(/^operator asked to cycle pi02 \(stuck NFS mount\): done/) });
    const powerEvents = feed.eventsFor("pi02", since, ["power"]);
    expect(powerEvents.map((e) => [e.actor, e.message])).toEqual([
      ["operator", "port 2 off: cycle requested by operator: stuck NFS mount"],
      ["operator", "port 2 on"],
    ]);
    await feed.until("pi02 healthy after the operator's cycle", () => feed.eventsFor("pi02", since, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi02") === "healthy", 30_000);
  }, 60_000);

  it("release: refused for a Pi that is not quarantined; a quarantined Pi is released and acted on again", async () => {
    const { demo, feed, power } = shelf;
    const notQ = await pifleet(["release", "pi03", ...auth]);
    expect(notQ).toMatchObject({ code: 1, stderr: "pifleet: release pi03 refused: pi03 is not quarantined\n" });

    // pi04 loses its agent credentials and dies: no cycle, no rebuild brings it back.
    const secret = path.join(shelf.dir, "secrets", "pi04.secret");
    const saved = readFileSync(secret);
    rmSync(secret);
    const since = Date.now();
    await demo.pis[3].fault("kill");
    await feed.until("pi04 quarantined by the recovery engine", () => feed.state("pi04") === "quarantined", 90_000);
    const steps = feed.eventsFor("pi04", since, ["recovery"]).map((e) => e.message);
    expect(steps.some((m) => m === "rebuilding the root filesystem from the golden image")).toBe(true);
    expect(steps.at(-1)).toMatch(/^quarantined: still down after 1 attempts including a root filesystem rebuild/);
    // Quarantined and left powered off, on the switch itself.
    await feed.until("pi04's port left off", () => feed.eventsFor("pi04", since, ["power"]).some((e) => e.message === "port 4 off: quarantined, left off until a person releases it"), 30_000);
    expect(power.filter((c) => c.port === 4).at(-1)?.on).toBe(false);
    const quiet = power.length;

    // A person fixes the cause, then releases it: recovery power-cycles it again and it comes back.
    writeFileSync(secret, saved, { mode: 0o600 });
    const released = Date.now();
    const r = await pifleet(["release", "pi04", ...auth, "--reason", "credentials restored"]);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: "pi04 released; recovery will act on it again\n" });
    expect(power.length).toBe(quiet); // nothing happened while it was quarantined
    expect(await audited("pi04", "release", released)).toMatchObject({ actor: "operator", message: expect.stringMatching(/^operator asked to release pi04 \(credentials restored\): done/) });
    await feed.until("pi04 healthy after its release", () => feed.eventsFor("pi04", released, ["recovery"]).some((e) => /healthy again/.test(e.message)) && feed.state("pi04") === "healthy", 60_000);
    // Its port was left off by the quarantine: the cycle's off changes nothing, its on brings it back.
    expect(power.slice(quiet).map((c) => `${c.port}:${c.on ? "on" : "off"}`)).toEqual(["4:on"]);
  }, 180_000);

  it("cycle during a fleet alarm is refused (exit 1), and no port is touched", async () => {
    const { demo, feed, power } = shelf;
    const since = Date.now();
    await Promise.all([demo.pis[0].fault("kill"), demo.pis[1].fault("kill")]);
    await feed.until("the fleet alarm on the feed", () => feed.mirror.fleetStatus?.alarm === true, 15_000);
    const from = power.length;
    const r = await pifleet(["cycle", "pi03", ...auth, "--yes"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pifleet: cycle pi03 refused: refused: fleet alarm \(\d of \d Pis \(\d+ %\) are unhealthy at once/);
    expect(power.length).toBe(from);
    const a = await audited("pi03", "cycle", since);
    expect(a).toMatchObject({ actor: "operator", fields: expect.objectContaining({ ok: "false" }) });
    expect(a.message).toMatch(/^operator asked to cycle pi03: refused — refused: fleet alarm/);
    // Refused before anything was done: pi03 stays healthy and in service, not even drained.
    expect(feed.state("pi03")).toBe("healthy");
    expect((await shelf.lb.server("pi03")).admin).toBe("ready");
    expect(feed.eventsFor("pi03", since, ["state", "lb", "power", "recovery"]).filter((e: v1.FleetEvent) => e.actor !== "judge")).toEqual([]);
  }, 60_000);
});

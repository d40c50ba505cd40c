import { afterEach, describe, expect, it } from "vitest";
import { RecoveryEngine, type AuditEvent, type Health, type OpenIntent, type RecoveryConfig, type RecoveryState } from "@pifleet/recovery";

/** In-memory stand-ins for the switch, load balancer, fileserver and intent table (unit tests only). */
function rig(n: number, config: Partial<RecoveryConfig> = {}) {
  const pis = Array.from({ length: n }, (_, i) => ({ name: `pi${i + 1}`, port: i + 1 }));
  const health = new Map<string, Health>(pis.map((p) => [p.name, "healthy"]));
  const powered = new Map<number, boolean>(pis.map((p) => [p.port, true]));
  const log: string[] = [];
  const audit: AuditEvent[] = [];
  const states = new Map<string, RecoveryState | null>();
  const attempts = new Map<string, number>();
  const intents = new Map<number, OpenIntent & { outcome?: string }>();
  let nextIntent = 1;
  let fsHealthy = true;
  const bootOnPowerOn = new Set<string>(pis.map((p) => p.name));
  /** Pis that no cycle or rebuild brings back (a hardware fault). */
  const broken = new Set<string>();
  const powerOps: string[] = [];
  const engine = new RecoveryEngine({
    pis,
    power: {
      async set(port, on) {
        powerOps.push(`${port}:${on ? "on" : "off"}`);
        powered.set(port, on);
        const pi = pis.find((p) => p.port === port)!;
        if (!on) health.set(pi.name, "down");
        else if (bootOnPowerOn.has(pi.name) && !broken.has(pi.name)) setTimeout(() => health.set(pi.name, "healthy"), 30);
      },
      async get(port) {
        return powered.get(port)!;
      },
    },
    lb: {
      async drain(pi) {
        log.push(`lb drain ${pi}`);
      },
      async ready(pi) {
        log.push(`lb ready ${pi}`);
      },
    },
    fileserver: {
      healthy: () => fsHealthy,
      async rebuild(pi) {
        log.push(`rebuild ${pi}`);
        bootOnPowerOn.add(pi);
      },
    },
    intents: {
      openIntent(pi, port, reason) {
        const id = nextIntent++;
        intents.set(id, { id, pi, port, reason, createdMs: Date.now() });
        return id;
      },
      closeIntent(id, outcome) {
        intents.get(id)!.outcome = outcome;
      },
      openIntents: () => [...intents.values()].filter((i) => !i.outcome),
    },
    health: (pi) => health.get(pi)!,
    setState(pi, state, reason) {
      states.set(pi, state);
      log.push(`state ${pi} ${state ?? "judge"}: ${reason}`);
    },
    audit: (e) => audit.push(e),
    setAttempts: (pi, n) => attempts.set(pi, n),
    config: {
      confirmMs: 50,
      suspectActMs: 200,
      startupGraceMs: 0,
      dwellMs: 20,
      bootTimeoutMs: 300,
      backoffMs: 20,
      maxBackoffMs: 50,
      tickMs: 10,
      ...config,
    },
  });
  return {
    engine,
    health,
    powered,
    log,
    audit,
    states,
    attempts,
    intents,
    powerOps,
    bootOnPowerOn,
    broken,
    setFileserver: (ok: boolean) => (fsHealthy = ok),
  };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await wait(5);
  }
}

let current: RecoveryEngine | undefined;
afterEach(async () => {
  await current?.stop();
});

describe("recovery engine", () => {
  it("drains, power-cycles and returns a dead Pi to service, in order", async () => {
    const r = rig(8);
    current = r.engine;
    await r.engine.start();
    r.health.set("pi3", "down");
    await until(() => r.log.some((l) => l === "lb ready pi3"));
    expect(r.powerOps).toEqual(["3:off", "3:on"]);
    const states = r.log.filter((l) => l.startsWith("state pi3")).map((l) => l.split(":")[0]);
    expect(states).toEqual(["state pi3 drained", "state pi3 power-cycling", "state pi3 booting", "state pi3 judge"]);
    expect(r.log.indexOf("lb drain pi3")).toBeLessThan(r.log.findIndex((l) => l.startsWith("state pi3 power-cycling")));
    expect([...r.intents.values()].map((i) => i.outcome)).toEqual(["done"]);
    expect(r.audit.filter((e) => e.kind === "power").map((e) => e.message)).toEqual([expect.stringMatching(/^port 3 off/), "port 3 on"]);
  });

  it("takes no power action when 60 % of the fleet goes dark at once, and raises one alarm", async () => {
    const r = rig(10);
    current = r.engine;
    await r.engine.start();
    for (let i = 1; i <= 6; i++) r.health.set(`pi${i}`, "down");
    await wait(400);
    expect(r.powerOps).toEqual([]);
    expect(r.audit.filter((e) => e.kind === "alarm")).toHaveLength(1);
    expect(r.engine.status().alarm).toBe(true);
    for (let i = 1; i <= 6; i++) r.health.set(`pi${i}`, "healthy");
    await until(() => !r.engine.status().alarm);
    expect(r.audit.filter((e) => e.kind === "alarm").map((e) => e.message)).toEqual([expect.stringContaining("6 of 10"), expect.stringContaining("cleared")]);
  });

  it("takes no power action while the fileserver is unhealthy, and resumes after", async () => {
    const r = rig(8);
    current = r.engine;
    r.setFileserver(false);
    await r.engine.start();
    r.health.set("pi2", "down");
    await wait(300);
    expect(r.powerOps).toEqual([]);
    expect(r.audit.some((e) => e.message.startsWith("recovery paused: the fileserver is unhealthy"))).toBe(true);
    r.setFileserver(true);
    await until(() => r.powerOps.length === 2);
    expect(r.powerOps).toEqual(["2:off", "2:on"]);
  });

  it("switches back on a port left off by a coordinator that died mid-cycle", async () => {
    const r = rig(4);
    current = r.engine;
    r.intents.set(7, { id: 7, pi: "pi4", port: 4, reason: "power-cycling (attempt 1)", createdMs: 0 });
    r.powered.set(4, false);
    await r.engine.start();
    expect(r.powered.get(4)).toBe(true);
    expect(r.intents.get(7)!.outcome).toBe("recovered");
    expect(r.audit[0].message).toContain("port 4 switched back on");
  });

  it("never remediates more than maxConcurrent Pis at once", async () => {
    const r = rig(20, { maxConcurrent: 2, darkShare: 0.5, dwellMs: 100 });
    current = r.engine;
    await r.engine.start();
    for (let i = 1; i <= 5; i++) r.health.set(`pi${i}`, "down");
    let peak = 0;
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      peak = Math.max(peak, r.engine.status().active);
      await wait(5);
    }
    expect(peak).toBe(2);
    expect(r.powerOps.filter((o) => o.endsWith("off"))).toHaveLength(5);
  });

  it("rebuilds the root after repeated failed cycles, then quarantines", async () => {
    const r = rig(8, { cyclesBeforeRebuild: 2 });
    current = r.engine;
    r.bootOnPowerOn.delete("pi5");
    await r.engine.start();
    r.health.set("pi5", "down");
    await until(() => r.states.get("pi5") === "rebuilding");
    expect(r.powerOps.filter((o) => o === "5:off")).toHaveLength(3);
    expect(r.attempts.get("pi5")).toBe(3);
    // The rebuild "fixes" it in this rig: the Pi boots after the rebuild's power-on.
    await until(() => r.log.includes("lb ready pi5"));
    expect(r.log).toContain("rebuild pi5");

    const q = rig(8, { cyclesBeforeRebuild: 1 });
    current = q.engine;
    q.broken.add("pi1");
    await r.engine.stop();
    await q.engine.start();
    q.health.set("pi1", "down");
    await until(() => q.states.get("pi1") === "quarantined", 5000);
    const offs = q.powerOps.length;
    await wait(200);
    expect(q.powerOps.length).toBe(offs); // nothing more until a person decides
    expect((await q.engine.operator("release", "pi1", "alice")).ok).toBe(true);
    expect(q.attempts.get("pi1")).toBe(0);
    expect(q.audit.at(-1)).toMatchObject({ kind: "operator", actor: "alice", subject: "pi1" });
  });

  it("rate-limits power actions fleet-wide", async () => {
    const r = rig(20, { maxConcurrent: 10, darkShare: 0.9, powerActionsPerWindow: 3, powerWindowMs: 60_000 });
    current = r.engine;
    await r.engine.start();
    for (let i = 1; i <= 6; i++) r.health.set(`pi${i}`, "down");
    await wait(600);
    expect(r.powerOps.filter((o) => o.endsWith("off"))).toHaveLength(3);
    const refused = await r.engine.operator("cycle", "pi10", "bob");
    expect(refused).toMatchObject({ ok: false, message: expect.stringContaining("rate limit") });
    expect(r.audit.at(-1)).toMatchObject({ kind: "operator", actor: "bob", message: expect.stringContaining("refused") });
  });

  it("operator cycle is audited and refused during a fleet alarm", async () => {
    const r = rig(4);
    current = r.engine;
    await r.engine.start();
    const ok = await r.engine.operator("cycle", "pi2", "alice", "flaky");
    expect(ok.ok).toBe(true);
    expect(r.powerOps).toEqual(["2:off", "2:on"]);
    await until(() => r.log.includes("lb ready pi2"));
    for (let i = 1; i <= 3; i++) r.health.set(`pi${i}`, "down");
    await until(() => r.engine.status().alarm);
    const refused = await r.engine.operator("cycle", "pi4", "alice");
    expect(refused.ok).toBe(false);
    expect(refused.message).toContain("fleet alarm");
    expect(r.powerOps).toEqual(["2:off", "2:on"]);
  });

  it("leaves an operator-drained Pi alone", async () => {
    const r = rig(8);
    current = r.engine;
    await r.engine.start();
    await r.engine.operator("drain", "pi6", "alice");
    r.health.set("pi6", "down");
    await wait(300);
    expect(r.powerOps).toEqual([]);
    expect(r.log).toContain("lb drain pi6");
  });

  it("puts a Pi that booted after its boot timeout back in service", async () => {
    const r = rig(8, { bootTimeoutMs: 100, backoffMs: 60_000, maxBackoffMs: 60_000 });
    current = r.engine;
    r.broken.add("pi7");
    await r.engine.start();
    r.health.set("pi7", "down");
    await until(() => r.log.some((l) => l.startsWith("state pi7 drained: not healthy")));
    // It comes up late, long before its next attempt is due.
    r.health.set("pi7", "healthy");
    await until(() => r.log.includes("lb ready pi7"));
    expect(r.states.get("pi7")).toBeNull();
    expect(r.powerOps.filter((o) => o === "7:off")).toHaveLength(1);
  });

  it("takes up a Pi a previous run left mid-remediation instead of leaving it drained", async () => {
    const r = rig(4);
    current = r.engine;
    await r.engine.start({ inFlight: ["pi3"] });
    await until(() => r.log.includes("lb ready pi3"));
    expect(r.log.filter((l) => l.startsWith("state pi3")).map((l) => l.split(":")[0])).toEqual(["state pi3 booting", "state pi3 judge"]);
    expect(r.powerOps).toEqual([]);
  });
});

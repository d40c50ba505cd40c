import { afterEach, describe, expect, it } from "vitest";
import { RecoveryEngine, type AuditEvent, type Health, type OpenIntent, type RecoveryState } from "@pifleet/recovery";

/** A shelf with every port off (a cold start): in-memory switch, fileserver and intents (unit test). */
function coldShelf(n: number, opts: { neverBoots?: string[]; bootsOnlyAfterCycle?: string[]; fsHealthy?: boolean } = {}) {
  const pis = Array.from({ length: n }, (_, i) => ({ name: `pi${i + 1}`, port: i + 1, netboot: true }));
  const health = new Map<string, Health>(pis.map((p) => [p.name, "down"]));
  const powered = new Map<number, boolean>(pis.map((p) => [p.port, false]));
  const cycled = new Set<string>();
  const ops: string[] = [];
  let maxOnAndBooting = 0;
  const audit: AuditEvent[] = [];
  const states = new Map<string, RecoveryState | null>();
  const intents = new Map<number, OpenIntent & { outcome?: string }>();
  let nextIntent = 1;
  const booting = () => pis.filter((p) => powered.get(p.port) && health.get(p.name) !== "healthy").length;
  const engine = new RecoveryEngine({
    pis,
    power: {
      async set(port, on) {
        const pi = pis.find((p) => p.port === port)!;
        ops.push(`${pi.name}:${on ? "on" : "off"}`);
        if (!on && powered.get(port)) cycled.add(pi.name);
        powered.set(port, on);
        if (!on) health.set(pi.name, "down");
        else {
          maxOnAndBooting = Math.max(maxOnAndBooting, booting());
          const dead = opts.neverBoots?.includes(pi.name) || (opts.bootsOnlyAfterCycle?.includes(pi.name) && !cycled.has(pi.name));
          if (!dead) setTimeout(() => powered.get(port) && health.set(pi.name, "healthy"), 40);
        }
      },
      async get(port) {
        return powered.get(port)!;
      },
    },
    fileserver: { healthy: () => opts.fsHealthy ?? true, rebuild: async () => undefined },
    intents: {
      openIntent(pi, port, reason) {
        const id = nextIntent++;
        intents.set(id, { id, pi, port, reason, createdMs: Date.now() });
        return id;
      },
      closeIntent: (id, outcome) => void (intents.get(id)!.outcome = outcome),
      openIntents: () => [...intents.values()].filter((i) => !i.outcome),
      markOff: (id, atMs) => void (intents.get(id)!.offMs = atMs),
    },
    health: (pi) => health.get(pi)!,
    setState: (pi, state) => void states.set(pi, state),
    audit: (e) => audit.push(e),
    config: {
      confirmMs: 50,
      reconnectBackoffMs: 0,
      startupGraceMs: 0,
      dwellMs: 20,
      bootTimeoutMs: 300,
      tickMs: 10,
      waveSize: 4,
      waveTimeoutMs: 250,
      waveRetries: 1,
      waveRetryBackoffMs: 30,
    },
  });
  return { engine, health, ops, audit, states, intents, maxOnAndBooting: () => maxOnAndBooting };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

let running: RecoveryEngine | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

describe("power-on-all through the recovery engine", () => {
  it("a dark shelf comes up in waves despite the fleet alarm; a retry brings one back, a dead one is quarantined with the reason", async () => {
    const r = coldShelf(12, { bootsOnlyAfterCycle: ["pi3"], neverBoots: ["pi10"] });
    running = r.engine;
    await r.engine.start();
    const reply = await r.engine.operator("power-on-all", "", "alice", "after the power cut");
    expect(reply).toEqual({ ok: true, message: "powering on 12 Pi(s) in 3 wave(s) of up to 4; follow it in the event log" });
    let maxBooting = 0;
    await until(() => {
      maxBooting = Math.max(maxBooting, r.engine.wavesStatus()?.booting ?? 0);
      return r.engine.wavesStatus() === undefined;
    });

    // Waves in port order; never more than 4 in their boot window at once (retries included).
    const firstOn = r.ops.filter((o) => o.endsWith(":on")).slice(0, 4);
    expect(firstOn).toEqual(["pi1:on", "pi2:on", "pi3:on", "pi4:on"]);
    expect(maxBooting).toBe(4);
    const waves = r.audit.filter((e) => e.message.startsWith("power-on wave")).map((e) => e.message.replace(/^power-on wave \d+: /, "").split(", "));
    expect(waves.slice(0, 2)).toEqual([
      ["pi1", "pi2", "pi3", "pi4"],
      ["pi5", "pi6", "pi7", "pi8"],
    ]);
    // pi3's retry shares the slots: the last Pis come in one or two more waves, in port order.
    expect(waves.flat()).toEqual(Array.from({ length: 12 }, (_, i) => `pi${i + 1}`));
    expect(waves.every((w) => w.length <= 4)).toBe(true);
    // pi3 stayed silent until cycled (inside a durable intent, logged): then healthy.
    expect(r.ops).toContain("pi3:off");
    expect(r.health.get("pi3")).toBe("healthy");
    expect([...r.intents.values()].every((i) => i.outcome === "done")).toBe(true);
    expect(r.audit.some((e) => e.kind === "power" && e.subject === "pi3" && e.message.startsWith("port 3 off:"))).toBe(true);
    // pi10 never: quarantined, and said why.
    expect(r.states.get("pi10")).toBe("quarantined");
    expect(r.audit.find((e) => e.subject === "pi10" && e.message.startsWith("quarantined"))?.message).toMatch(/^quarantined: netbooted and no healthy report [0-9.]+ s after power-on, also after 1 power-cycle\(s\): check its DHCP reservation/);
    expect(r.audit.filter((e) => e.message.startsWith("power-on finished")).map((e) => e.message)).toEqual([`power-on finished: 11 healthy, 1 quarantined, 0 left to recovery, in ${waves.length} wave(s)`]);
    // And left powered off: a board that cannot boot does not keep asking DHCP and TFTP.
    await until(() => r.audit.some((e) => e.subject === "pi10" && e.message === "port 10 off: quarantined, left off until a person releases it"));
    expect(r.ops.filter((o) => o.startsWith("pi10:")).at(-1)).toBe("pi10:off");
    // Every port switched on was logged with the operator's name.
    expect(r.audit.filter((e) => e.kind === "power" && e.message.includes("power-on wave")).every((e) => e.actor === "alice")).toBe(true);
  });

  it("refused while the fileserver is unhealthy, and a second request while one runs", async () => {
    const sick = coldShelf(4, { fsHealthy: false });
    running = sick.engine;
    await sick.engine.start();
    expect(await sick.engine.operator("power-on-all", "", "alice")).toEqual({ ok: false, message: "refused: the fileserver is unhealthy, so no Pi could boot (--force to power on anyway)" });
    expect(sick.ops).toEqual([]);
    await sick.engine.stop();

    const r = coldShelf(8);
    running = r.engine;
    await r.engine.start();
    expect((await r.engine.operator("power-on-all", "", "alice")).ok).toBe(true);
    const again = await r.engine.operator("power-on-all", "", "bob");
    expect(again).toEqual({ ok: false, message: "a power-on is already running (wave 1 of 2, requested by alice)" });
    await until(() => r.engine.wavesStatus() === undefined);
    expect(await r.engine.operator("power-on-all", "", "bob")).toEqual({ ok: true, message: "every Pi is healthy, held or quarantined: nothing to power on" });
  });
});

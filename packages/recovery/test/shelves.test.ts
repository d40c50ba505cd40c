import { afterEach, describe, expect, it } from "vitest";
import { RecoveryEngine, type AuditEvent, type Health, type PowerPort, type RecoveryConfig } from "@pifleet/recovery";
import { FAST_CONFIG } from "./fast-config.js";

/**
 * Two shelves of four Pis, each on its own in-memory switch, with the same port numbers on both
 * (unit tests only). Power ops are recorded per switch, so a cycle on the wrong switch shows.
 */
function twoShelves(config: Partial<RecoveryConfig> = {}) {
  const shelves = ["a", "b"];
  const pis = shelves.flatMap((shelf) => Array.from({ length: 4 }, (_, i) => ({ name: `${shelf}${i + 1}`, port: i + 1, shelf })));
  const health = new Map<string, Health>(pis.map((p) => [p.name, "healthy"]));
  const ops: Record<string, string[]> = { a: [], b: [] };
  /** Concurrent power-offs in flight, fleet-wide, and the most ever seen. */
  let off = 0;
  let maxOff = 0;
  const unreachable = new Map<string, string>();
  const switchOf = (shelf: string): PowerPort => ({
    async set(port, on) {
      if (unreachable.has(shelf)) throw new Error(`switch of shelf ${shelf} did not answer`);
      ops[shelf].push(`${port}:${on ? "on" : "off"}`);
      const pi = pis.find((p) => p.shelf === shelf && p.port === port)!;
      if (!on) {
        off++;
        maxOff = Math.max(maxOff, off);
        health.set(pi.name, "down");
      } else {
        off--;
        setTimeout(() => health.set(pi.name, "healthy"), 30);
      }
    },
    async get() {
      return true;
    },
  });
  const switches = { a: switchOf("a"), b: switchOf("b") } as Record<string, PowerPort>;
  const audit: AuditEvent[] = [];
  let nextIntent = 1;
  const open = new Map<number, { id: number; pi: string; port: number; reason: string; createdMs: number }>();
  const engine = new RecoveryEngine({
    pis,
    power: {
      set: () => Promise.reject(new Error("the fleet-wide power port must not be used when each shelf has its own")),
      get: () => Promise.reject(new Error("unused")),
    },
    powerFor: (shelf) => switches[shelf],
    reach: { unreachable: (shelf) => unreachable.get(shelf) },
    intents: {
      openIntent(pi, port, reason) {
        const id = nextIntent++;
        open.set(id, { id, pi, port, reason, createdMs: Date.now() });
        return id;
      },
      closeIntent: (id) => void open.delete(id),
      openIntents: () => [...open.values()],
    },
    health: (pi) => health.get(pi)!,
    setState: () => undefined,
    audit: (e) => audit.push(e),
    config: { ...FAST_CONFIG, ...config },
  });
  return { engine, health, ops, audit, unreachable, maxOff: () => maxOff };
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("recovery per shelf", () => {
  let engine: RecoveryEngine | undefined;
  afterEach(async () => {
    await engine?.stop();
    engine = undefined;
  });

  it("a shelf whose switch is unreachable pauses that shelf only; the other shelf's dead Pi is cycled on its own switch", async () => {
    const r = twoShelves();
    engine = r.engine;
    await engine.start();
    r.unreachable.set("a", "switch a does not answer SNMP");
    await sleep(50);
    r.health.set("a2", "down");
    r.health.set("b3", "down");
    await until("b3 cycled and healthy", () => r.ops.b.includes("3:off") && r.ops.b.includes("3:on") && r.health.get("b3") === "healthy");
    await sleep(200);
    expect(r.ops.a).toEqual([]);
    const paused = r.audit.find((e) => e.message.startsWith("recovery paused on shelf a"));
    expect(paused?.message).toContain("switch a does not answer SNMP");
    expect(paused?.fields?.shelf).toBe("a");
    expect(r.audit.some((e) => e.message.startsWith("recovery paused on shelf b"))).toBe(false);
    const status = engine.status();
    expect(status.shelves.find((s) => s.shelf === "a")?.paused).toContain("does not answer");
    expect(status.shelves.find((s) => s.shelf === "b")?.paused).toBe("");

    // Reachable again: shelf a resumes, and its dead Pi is cycled on shelf a's switch (port 2), not b's.
    r.unreachable.delete("a");
    await until("a2 cycled", () => r.ops.a.includes("2:off") && r.ops.a.includes("2:on"));
    expect(r.ops.b.filter((o) => o.startsWith("2:"))).toEqual([]);
    expect(r.audit.some((e) => e.message === "recovery resumed on shelf a")).toBe(true);
  });

  it("the dark-share alarm counts per shelf: a dark shelf is held, a lone dead Pi on the other is cycled", async () => {
    const r = twoShelves();
    engine = r.engine;
    await engine.start();
    await sleep(30);
    // 3 of 4 on shelf a dark (75 % > 30 %); 1 of 4 on shelf b. Fleet-wide, 4 of 8 would alarm the whole fleet.
    for (const n of ["a1", "a2", "a3"]) r.health.set(n, "down");
    r.health.set("b1", "down");
    await until("b1 cycled", () => r.ops.b.includes("1:on"));
    await sleep(200);
    expect(r.ops.a).toEqual([]);
    const alarm = r.audit.find((e) => e.kind === "alarm" && e.message.startsWith("FLEET ALARM"));
    expect(alarm?.message).toContain("shelf a:");
    expect(alarm?.fields?.shelf).toBe("a");
    expect(engine.status().shelves.find((s) => s.shelf === "b")?.alarm).toBe(false);
  });

  it("the cap on concurrent power-cycles stays fleet-wide across shelves", async () => {
    const r = twoShelves({ maxConcurrent: 1, dwellMs: 60 });
    engine = r.engine;
    await engine.start();
    await sleep(30);
    r.health.set("a1", "down");
    r.health.set("b1", "down");
    await until("both cycled", () => r.ops.a.includes("1:on") && r.ops.b.includes("1:on"));
    expect(r.maxOff()).toBe(1);
  });

  it("an operator cycle on an unreachable shelf is refused naming the shelf", async () => {
    const r = twoShelves();
    engine = r.engine;
    await engine.start();
    r.unreachable.set("b", "switch b does not answer SNMP");
    const res = await engine.operator("cycle", "b2", "alice");
    expect(res.ok).toBe(false);
    expect(res.message).toContain("shelf b: switch b does not answer SNMP");
    expect(r.ops.b).toEqual([]);
    const ok = await engine.operator("cycle", "a2", "alice");
    expect(ok.ok).toBe(true);
  });
});

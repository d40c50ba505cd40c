import { describe, expect, it } from "vitest";
import { PowerOnWaves, type WaveAction, type WavePi } from "@pifleet/recovery";

const shelf = (n: number, netboot = true): WavePi[] => Array.from({ length: n }, (_, i) => ({ name: `pi${String(i + 1).padStart(2, "0")}`, port: i + 1, netboot }));
const kinds = (actions: WaveAction[], kind: WaveAction["kind"]) => actions.filter((a) => a.kind === kind);
const powered = (actions: WaveAction[]) => actions.flatMap((a) => (a.kind === "power-on" ? [a.pi.name] : []));

/** A fake clock and a fake fleet: Pis report healthy `bootMs` after their port goes on, unless dead. */
function fleet(bootMs: number, dead: Set<string> = new Set(), bootsOnCycle: Set<string> = new Set()) {
  const onAt = new Map<string, number>();
  const cycled = new Set<string>();
  let now = 0;
  return {
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
    },
    apply(actions: WaveAction[]) {
      for (const a of actions) {
        if (a.kind === "power-on") onAt.set(a.pi.name, now);
        if (a.kind === "cycle") {
          onAt.set(a.pi.name, now);
          cycled.add(a.pi.name);
        }
      }
    },
    healthy: (pi: string) => {
      const t = onAt.get(pi);
      if (t === undefined || now - t < bootMs) return false;
      return !dead.has(pi) || (bootsOnCycle.has(pi) && cycled.has(pi));
    },
  };
}

describe("power-on in waves", () => {
  it("96 Pis, 8 at a time: a wave starts only when the last one reported", () => {
    const f = fleet(40_000);
    const w = new PowerOnWaves(shelf(96), { size: 8, timeoutMs: 180_000 });
    const waves: string[][] = [];
    let maxBooting = 0;
    for (let i = 0; i < 2000 && !w.done; i++) {
      const actions = w.tick(f.now, f.healthy);
      f.apply(actions);
      if (powered(actions).length) waves.push(powered(actions));
      maxBooting = Math.max(maxBooting, w.status().booting);
      f.advance(1000);
    }
    expect(w.done).toBe(true);
    expect(waves).toHaveLength(12);
    expect(waves.every((batch) => batch.length === 8)).toBe(true);
    expect(waves[0]).toEqual(["pi01", "pi02", "pi03", "pi04", "pi05", "pi06", "pi07", "pi08"]);
    expect(waves[11][7]).toBe("pi96");
    expect(maxBooting).toBe(8);
    expect(w.status()).toMatchObject({ healthy: 96, quarantined: 0, wave: 12 });
  });

  it("a wave that never reports: the next wave starts after the timeout, the silent Pis are retried", () => {
    const f = fleet(10_000, new Set(shelf(8).map((p) => p.name)));
    const w = new PowerOnWaves(shelf(16), { size: 8, timeoutMs: 60_000, retries: 1, retryBackoffMs: 30_000 });
    f.apply(w.tick(f.now, f.healthy));
    f.advance(59_000);
    expect(powered(w.tick(f.now, f.healthy))).toEqual([]);
    f.advance(1000);
    // 60 s: wave 1 timed out; its Pis wait out their back-off, so all 8 slots go to wave 2.
    const second = w.tick(f.now, f.healthy);
    expect(powered(second)).toEqual(["pi09", "pi10", "pi11", "pi12", "pi13", "pi14", "pi15", "pi16"]);
    expect(kinds(second, "wave")).toEqual([{ kind: "wave", wave: 2, pis: shelf(16).slice(8) }]);
  });

  it("a silent netbooted Pi is cycled with back-off; a retry that succeeds brings it back", () => {
    const f = fleet(10_000, new Set(["pi03"]), new Set(["pi03"]));
    const w = new PowerOnWaves(shelf(8), { size: 8, timeoutMs: 60_000, retries: 2, retryBackoffMs: 30_000 });
    const cycles: Array<{ at: number; attempt: number }> = [];
    for (let i = 0; i < 400 && !w.done; i++) {
      const actions = w.tick(f.now, f.healthy);
      f.apply(actions);
      for (const a of actions) if (a.kind === "cycle") cycles.push({ at: f.now, attempt: a.attempt });
      f.advance(1000);
    }
    expect(cycles).toEqual([{ at: 90_000, attempt: 1 }]);
    expect(w.status()).toMatchObject({ healthy: 8, quarantined: 0 });
  });

  it("quarantine with the reason after the retry limit, back-off doubling; an SD Pi is left to recovery", () => {
    const pis = [...shelf(2), { name: "sd01", port: 3, netboot: false }];
    const f = fleet(10_000, new Set(["pi02", "sd01"]));
    const w = new PowerOnWaves(pis, { size: 8, timeoutMs: 60_000, retries: 2, retryBackoffMs: 30_000 });
    const seen: Array<{ at: number; action: WaveAction }> = [];
    for (let i = 0; i < 1000 && !w.done; i++) {
      const actions = w.tick(f.now, f.healthy);
      f.apply(actions);
      for (const action of actions) if (action.kind !== "power-on" && action.kind !== "wave") seen.push({ at: f.now, action });
      f.advance(1000);
    }
    // Timed out at 60 s; retry 1 after 30 s; timed out at 150 s; retry 2 after 60 s; timed out at 270 s.
    expect(seen.map((s) => `${s.at / 1000} ${s.action.kind} ${"pi" in s.action ? s.action.pi.name : ""}`)).toEqual([
      "60 late sd01",
      "90 cycle pi02",
      "210 cycle pi02",
      "270 quarantine pi02",
      "270 finished ",
    ]);
    const q = seen.find((s) => s.action.kind === "quarantine")!.action as Extract<WaveAction, { kind: "quarantine" }>;
    expect(q.reason).toBe("netbooted and no healthy report 60 s after power-on, also after 2 power-cycle(s): check its DHCP reservation (MAC), TFTP folder (serial) and switch port (STP edge)");
    expect(w.owns("pi02")).toBe(false);
    expect(w.status()).toMatchObject({ healthy: 1, quarantined: 1, late: 1, done: true });
  });

  it("a retry refused now (rate limit) is deferred, not counted", () => {
    const f = fleet(10_000, new Set(["pi01"]));
    const w = new PowerOnWaves(shelf(1), { size: 8, timeoutMs: 60_000, retries: 1, retryBackoffMs: 30_000 });
    for (let i = 0; i <= 90; i++) {
      f.apply(w.tick(f.now, f.healthy));
      f.advance(1000);
    }
    expect(w.status().booting).toBe(1);
    w.defer("pi01", f.now + 5000);
    expect(w.status()).toMatchObject({ waiting: 1, booting: 0 });
    f.advance(5000);
    const again = w.tick(f.now, f.healthy);
    expect(kinds(again, "cycle")).toMatchObject([{ attempt: 1 }]);
  });

  it("Pis already healthy are not powered; retries share the wave's slots", () => {
    const f = fleet(10_000, new Set(["pi01", "pi02"]));
    const w = new PowerOnWaves(shelf(6), { size: 2, timeoutMs: 20_000, retries: 1, retryBackoffMs: 1000 });
    const already = (pi: string) => pi === "pi06" || f.healthy(pi);
    const onAll: string[] = [];
    let maxBooting = 0;
    for (let i = 0; i < 500 && !w.done; i++) {
      const actions = w.tick(f.now, already);
      f.apply(actions);
      onAll.push(...powered(actions));
      maxBooting = Math.max(maxBooting, w.status().booting);
      f.advance(1000);
    }
    expect(onAll).not.toContain("pi06");
    expect(maxBooting).toBe(2);
    expect(w.status()).toMatchObject({ quarantined: 2, healthy: 4 });
  });
});

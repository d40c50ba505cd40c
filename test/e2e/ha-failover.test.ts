import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteStore, type EventRecord } from "@pifleet/coordinator";
import { startEtcdCluster, type EtcdCluster } from "../../packages/coordinator/src/ha/etcd-cluster.js";
import { startShelf, type Shelf } from "./helpers/shelf.js";

// Three coordinators elect a leader on a real three-member etcd cluster (loopback, started here).
// Every act with an outside effect is an etcd transaction guarded by the leader key's create
// revision, written before the act. These cases kill, freeze and starve the leader mid-cycle.

const DWELL_S = 5;
const TTL_S = 5;
const LEADER_KEY = "/pifleet/demo/leader";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe("coordinator high availability on etcd", () => {
  let dir: string;
  let etcd: EtcdCluster;
  let shelf: Shelf;
  const index = (name: string) => Number(name.slice(1)) - 1;
  const leader = () => {
    try {
      return etcd.get(LEADER_KEY);
    } catch {
      return undefined;
    }
  };
  /** Every coordinator's own event log, merged by time (each event names its coordinator). */
  const events = (sinceMs: number, subject?: string): (EventRecord & { from: string })[] =>
    shelf.demo.coordinatorDatabases
      .flatMap((db, i) => {
        const s = new SqliteStore(db);
        try {
          return s.events({ limit: 100_000 }).map((e) => ({ ...e, from: `c${i + 1}` }));
        } finally {
          s.close();
        }
      })
      .filter((e) => e.timeMs >= sinceMs && (!subject || e.subject === subject))
      .sort((a, b) => a.timeMs - b.timeMs);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "pifleet-ha-etcd-"));
    etcd = await startEtcdCluster(dir);
    shelf = await startShelf({
      name: "ha",
      pis: 4,
      dwellSeconds: DWELL_S,
      recovery: { startupGraceMs: 1000, confirmMs: 1500, bootTimeoutMs: 30_000 },
      ha: { etcdEndpoints: etcd.endpoints, coordinators: 3, leaseTtlS: TTL_S },
    });
    await until("a leader", () => leader(), 20_000);
  }, 420_000);

  afterAll(async () => {
    await shelf?.stop();
    await etcd?.stop();
    if (dir && !process.env.PIFLEET_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it("a SIGSTOPped leader resumed after its lease expired does not write to the switch; the follower that took over switches the port back on", async () => {
    const { demo, power } = shelf;
    const old = leader()!;
    const from = power.length;
    const t0 = Date.now();
    await demo.pis[2]!.fault("kill");
    const off = await until("pi03's port off", () => power.slice(from).find((c) => c.port === 3 && !c.on), 30_000);
    // Frozen mid-dwell: its job still means to switch the port on once it wakes.
    const frozen = demo.coordinators[index(old)]!;
    frozen.kill("SIGSTOP");
    const stoppedAt = Date.now();
    let setsBefore = 0;
    let powerBefore = 0;
    let resumedAt = 0;
    try {
      const next = await until("another leader", () => {
        const l = leader();
        return l && l !== old ? l : undefined;
      }, 20_000);
      const on = await until("pi03's port on again", () => power.slice(from).find((c) => c.port === 3 && c.on), 20_000);
      expect(on.at - off.at).toBeGreaterThanOrEqual(DWELL_S * 1000);
      process.stderr.write(`SIGSTOP ${old}: ${next} leads; port 3 on ${on.at - stoppedAt} ms after the freeze\n`);
      // Past the old lease for sure, then wake the old leader and read the switch's SET count.
      await sleep(1000);
    } finally {
      setsBefore = demo.emulator.stats.sets;
      powerBefore = power.length;
      // Taken before the signal: the woken coordinator may log its step-down before this process
      // runs again on a busy machine.
      resumedAt = Date.now();
      frozen.kill("SIGCONT");
    }
    // The woken coordinator's job tries to switch the port on: its fence is refused, it steps down.
    const down = await until(
      `${old} stepping down`,
      () => events(resumedAt).find((e) => e.from === old && /stepped down/.test(e.message)),
      20_000,
    );
    expect(down.message).toMatch(/another coordinator holds the leader key|lease was lost|etcd unreachable/);
    await sleep(3000);
    expect(demo.emulator.stats.sets).toBe(setsBefore);
    expect(power.slice(powerBefore)).toEqual([]);
    // Both coordinators' steps, in order: the old one switched it off, the new one on.
    const story = events(t0, "pi03").filter((e) => e.kind === "power");
    process.stderr.write(`pi03 power events:\n${story.map((e) => `  ${e.from} ${e.message}`).join("\n")}\n`);
    const offBy = story.findIndex((e) => e.from === old && /off/.test(e.message));
    const onBy = story.findIndex((e) => e.from !== old && /switched back on/.test(e.message));
    expect(offBy).toBeGreaterThanOrEqual(0);
    expect(onBy).toBeGreaterThan(offBy);
    // Cycled once: one off, one on.
    expect(power.slice(from).filter((c) => c.port === 3).map((c) => c.on)).toEqual([false, true]);
  }, 150_000);

  it("kill -9 of the leader while a Pi's port is off: a follower leads within the lease TTL, switches it back on, the Pi is not cycled twice", async () => {
    const { demo, power } = shelf;
    await until("pi03 healthy again", () => events(0, "pi03").some((e) => /healthy again/.test(e.message)), 60_000);
    const old = leader()!;
    const from = power.length;
    const t0 = Date.now();
    await demo.pis[1]!.fault("kill");
    const off = await until("pi02's port off", () => power.slice(from).find((c) => c.port === 2 && !c.on), 30_000);
    const victim = demo.coordinators[index(old)]!;
    victim.kill("SIGKILL");
    const killedAt = Date.now();
    const next = await until("a new leader", () => {
      const l = leader();
      return l && l !== old ? l : undefined;
    }, 20_000);
    const electedIn = Date.now() - killedAt;
    const on = await until("pi02's port on again", () => power.slice(from).find((c) => c.port === 2 && c.on), 20_000);
    process.stderr.write(`kill -9 ${old}: ${next} leads after ${electedIn} ms, port 2 on ${on.at - killedAt} ms after the kill (${on.at - off.at} ms off)\n`);
    expect(electedIn).toBeLessThanOrEqual(TTL_S * 1000 + 1000);
    expect(on.at - off.at).toBeGreaterThanOrEqual(DWELL_S * 1000);
    await until("pi02 healthy again", () => events(killedAt, "pi02").some((e) => /healthy again/.test(e.message)), 60_000);
    expect(power.slice(from).filter((c) => c.port === 2).map((c) => c.on)).toEqual([false, true]);
    expect(power.slice(from).every((c) => c.port === 2)).toBe(true);
    const story = events(t0, "pi02").filter((e) => e.kind === "power");
    const offBy = story.findIndex((e) => e.from === old);
    const onBy = story.findIndex((e) => e.from === next && /switched back on/.test(e.message));
    expect(offBy).toBeGreaterThanOrEqual(0);
    expect(onBy).toBeGreaterThan(offBy);
    await demo.startCoordinatorAt(index(old));
  }, 150_000);

  it("etcd quorum lost (2 of 3 members stopped): no power-cycle while it lasts, and a fleet event says why", async () => {
    const { demo, power } = shelf;
    await until("pi02 healthy", () => events(0, "pi02").some((e) => /healthy again/.test(e.message)), 60_000);
    const l = leader()!;
    const from = power.length;
    const lostAt = Date.now();
    await etcd.kill(1);
    await etcd.kill(2);
    await demo.pis[0]!.fault("kill");
    // Long enough for detection, confirmation and a cycle many times over.
    await sleep(20_000);
    expect(power.slice(from)).toEqual([]);
    const why = events(lostAt).filter((e) => /stepped down/.test(e.message));
    process.stderr.write(`quorum lost: ${why.map((e) => `${e.from}: ${e.message}`).join("; ")}\n`);
    expect(why.some((e) => e.from === l && /etcd unreachable|lease was lost/.test(e.message))).toBe(true);
    // Quorum back: recovery resumes and pi01 is cycled (the pause was the reason, nothing else).
    etcd.start(1);
    etcd.start(2);
    await etcd.waitHealthy(30_000);
    await until("pi01's port cycled after quorum returned", () => power.slice(from).find((c) => c.port === 1 && c.on), 60_000);
  }, 180_000);
});

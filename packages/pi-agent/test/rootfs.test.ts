import { describe, it, expect, afterEach } from "vitest";
import path from "node:path";
import { BoundedStat, RootfsCollector } from "@pifleet/pi-agent";
import { mountHungFuse } from "./helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stat we control: each call returns a promise the test settles. */
function controlledStat() {
  const calls: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  const fn = (_path: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { fn, calls };
}

describe("bounded stat (injected stat function: the deadline and no-pile-up logic)", () => {
  it("reports the latency of a stat that returns in time", async () => {
    const s = new BoundedStat("/", async () => sleep(20));
    const r = await s.check(500);
    expect(r).toMatchObject({ stalled: false, started: true });
    expect(r.latencyMs).toBeGreaterThanOrEqual(15);
    expect(r.latencyMs).toBeLessThan(500);
  });

  it("reports stalled at the deadline, and never issues a second stat while the first hangs", async () => {
    const { fn, calls } = controlledStat();
    const s = new BoundedStat("/", fn);
    const t0 = performance.now();
    const first = await s.check(100);
    expect(performance.now() - t0).toBeLessThan(400);
    expect(first).toMatchObject({ stalled: true, started: true });
    expect(first.latencyMs).toBeGreaterThanOrEqual(95);

    // Five more reports while the NFS server is dead: still one stat outstanding, its age growing.
    let last = first.latencyMs;
    for (let i = 0; i < 5; i++) {
      const r = await s.check(50);
      expect(r).toMatchObject({ stalled: true, started: false });
      expect(r.latencyMs).toBeGreaterThan(last);
      last = r.latencyMs;
    }
    expect(calls).toHaveLength(1);
    expect(s.outstanding).toBe(true);

    // The server comes back while a check waits: that check sees the (long) stat return.
    const waiting = s.check(1000);
    await sleep(20);
    calls[0].resolve();
    const back = await waiting;
    expect(back).toMatchObject({ stalled: false, started: false });
    expect(back.latencyMs).toBeGreaterThan(last);
    expect(s.outstanding).toBe(false);

    // And the next check issues a fresh stat.
    const next = s.check(1000);
    await sleep(0);
    expect(calls).toHaveLength(2);
    calls[1].resolve();
    expect(await next).toMatchObject({ stalled: false, started: true });
  });

  it("counts a failing stat (EIO/ESTALE from a soft mount) as stalled, with the error", async () => {
    const s = new BoundedStat("/nfs", async () => {
      throw Object.assign(new Error("stale"), { code: "ESTALE" });
    });
    expect(await s.check(500)).toMatchObject({ stalled: true, error: "/nfs: ESTALE" });
  });

  it("the rootfs collector answers within its deadline however long the stat hangs", async () => {
    const { fn, calls } = controlledStat();
    const c = new RootfsCollector("/", 80, undefined, fn);
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const part = await c.collect();
      expect(performance.now() - t0).toBeLessThan(400);
      expect(part.rootfs!.stalled).toBe(true);
    }
    expect(calls).toHaveLength(1);
    calls[0].resolve();
  });
});

/**
 * The honest version: a real stat(2) that does not return. A FUSE mount whose server never reads
 * /dev/fuse behaves like an NFS root whose server died: every lookup below it waits for an answer
 * that never comes. The fusectl filesystem counts the requests waiting on that connection, which
 * shows from the kernel's side that the agent issues one stat, not one per report.
 * Needs root (CAP_SYS_ADMIN) and /dev/fuse; the mount lives in a temp dir and is removed after.
 */
describe("bounded stat against a real hung filesystem (unanswered FUSE mount)", () => {
  let cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const f of cleanup.reverse()) f();
    cleanup = [];
  });

  it("reports stalled within the deadline and keeps exactly one stat waiting on the dead server", async () => {
    const fs = mountHungFuse(cleanup);
    const before = fs.waiting();
    const c = new RootfsCollector(path.join(fs.dir, "srv", "www"), 150);
    const latencies: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const part = await c.collect();
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(part.rootfs!.stalled).toBe(true);
      latencies.push(part.rootfs!.latencyMs!);
    }
    // The outstanding stat's age grows from report to report...
    expect(latencies[5]).toBeGreaterThan(latencies[0] + 4 * 140);
    // ...and the kernel holds one request from us, not six.
    expect(fs.waiting() - before).toBe(1);

    // The server "dies" for good (connection aborted): the stat returns an error, still stalled,
    // and the next report issues one fresh stat, which fails at once.
    fs.abort();
    const part = await c.collect();
    expect(part.rootfs!.stalled).toBe(true);
  });
});

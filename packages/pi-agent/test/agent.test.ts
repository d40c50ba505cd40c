import { describe, it, expect, afterEach } from "vitest";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { createNotifier } from "@pifleet/core";
import { generateAgentCredential, v1 } from "@pifleet/proto";
import { PiAgent, checkAgentConfig, type AgentConfig, type Collector } from "@pifleet/pi-agent";
import { MiniCoordinator } from "../src/bench/mini-coordinator.js";
import { notifySocket, piPaths, sleep, tempDir, waitFor } from "./helpers.js";

const cred = generateAgentCredential("pi1");
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

async function coordinator(opts: Partial<ConstructorParameters<typeof MiniCoordinator>[0]> = {}) {
  const c = await new MiniCoordinator({ agents: { pi1: cred.publicKey }, ...opts }).start();
  cleanup.push(() => c.stop());
  return c;
}

function config(url: string, dir: string, extra: Record<string, unknown> = {}): AgentConfig {
  return checkAgentConfig({
    coordinator: { url },
    identity: "pi1",
    secretFile: "/unused",
    localAddress: "::1",
    intervalMs: 200,
    paths: piPaths(dir),
    collectors: { apache: false, probe: false, rootfs: { path: dir, deadlineMs: 100 } },
    ...extra,
  });
}

function agent(cfg: AgentConfig, more: Partial<ConstructorParameters<typeof PiAgent>[0]> = {}) {
  const a = new PiAgent({ config: cfg, secret: cred.secret, notifier: createNotifier({}), ...more });
  cleanup.push(() => a.stop());
  return a;
}

describe("pi agent ↔ coordinator", () => {
  it("authenticates as its Pi and sends a full report every interval", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator();
    const versions: string[] = [];
    c.on("hello", (_id, v) => versions.push(v));
    const a = agent(config(c.url, dir));
    a.start();
    await waitFor("5 reports", () => c.reports.length >= 5, 5000);
    const times = c.reports.map((r) => r.at);
    // ~200 ms apart (generous room: the test machine's two cores are shared).
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(Math.max(...gaps)).toBeLessThan(1000);
    const last = c.reports.at(-1)!;
    expect(last.identity).toBe("pi1");
    // A compact sample, read with the facts the hello carried.
    expect(last.sample).not.toBeNull();
    expect(last.report).toBeNull();
    const r = last.reading;
    expect(r.replayed).toBe(false);
    expect(r.load).toMatchObject({ one: 0.52, five: 0.58, fifteen: 0.59 });
    expect(Number(r.memTotalBytes)).toBe(949448 * 1024);
    expect(r.temperatureC).toBe(51.5);
    expect(r.net.map((n) => n.interface)).toEqual(["eth0", "eth0.131"]);
    expect(Number(r.uptimeS)).toBe(302465);
    expect(r.rootfs).toMatchObject({ stalled: false });
    // Disabled collectors leave their fields out.
    expect(r.apache).toBeFalsy();
    expect(r.probe).toBeFalsy();
    expect(versions[0]).toMatch(/^pi-agent\//);
  });

  it("sends facts once in the hello and samples after; a coordinator before 0.2 gets full PiReports instead", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator();
    const a = agent(config(c.url, dir));
    a.start();
    await waitFor("3 reports", () => c.reports.length >= 3, 5000);
    const facts = c.facts.get("pi1")!;
    expect(facts).toMatchObject({ memTotalKib: 949448, interfaces: ["eth0", "eth0.131"], nodeVersion: process.version, arch: process.arch });
    expect(facts.agentVersion).toMatch(/^pi-agent\//);
    // The fixture's counters do not move: from the second sample on, each carries zero increases.
    const s = c.reports.at(-1)!.sample!;
    expect(s.net).toEqual(new Array(12).fill(0));
    expect(s.spanMs).toBeGreaterThan(0);
    expect(s.load).toEqual([52, 58, 59]);
    await a.stop();

    const old = await coordinator({ acceptsSamples: false });
    const b = agent(config(old.url, dir));
    b.start();
    await waitFor("2 reports", () => old.reports.length >= 2, 5000);
    await waitFor("a report after the HelloAck", () => old.reports.some((r) => r.report !== null), 5000);
    const legacy = old.reports.filter((r) => r.report !== null).at(-1)!.report!;
    expect(legacy.pi).toBe("pi1");
    expect(legacy.net.map((n) => n.interface)).toEqual(["eth0", "eth0.131"]);
  });

  it("queues reports while the coordinator is away and replays them, marked, on reconnect; the queue is bounded", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator();
    const a = agent(config(c.url, dir, { queue: 3 }));
    const local: Array<{ time: number; sent: boolean }> = [];
    a.on("report", (r, sent) => local.push({ time: Number(r.timeMs), sent }));
    a.start();
    await waitFor("live reports", () => c.reports.length >= 2, 5000);

    await c.stop();
    const outageStart = local.length;
    await waitFor("6 reports built during the outage", () => local.length >= outageStart + 6 && local.slice(outageStart).filter((l) => !l.sent).length >= 6, 5000);
    const before = c.reports.length;
    await c.start();
    await waitFor("replayed and live reports", () => c.reports.slice(before).some((r) => !r.reading.replayed), 20_000);

    const after = c.reports.slice(before);
    const replayed = after.filter((r) => r.reading.replayed);
    // Only the newest 3 of the unsent reports survive the bounded queue, oldest first.
    expect(replayed).toHaveLength(3);
    const unsent = local.filter((l) => !l.sent).map((l) => l.time);
    expect(replayed.map((r) => Number(r.reading.timeMs))).toEqual(unsent.slice(-3));
    // Replays arrive before anything live from the new connection.
    expect(after.findIndex((r) => !r.reading.replayed)).toBe(3);
    expect(a.client.dropped).toBeGreaterThanOrEqual(3);
  });

  it("adopts the report interval the coordinator names in HelloAck", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator({ reportIntervalMs: 100 });
    const a = agent(config(c.url, dir, { intervalMs: 1000 }));
    a.start();
    await waitFor("connected", () => c.sockets.has("pi1"), 5000);
    const n = c.reports.length;
    await sleep(1200);
    expect(a.interval).toBe(100);
    expect(c.reports.length - n).toBeGreaterThanOrEqual(6);
  });

  it("is refused with a key that is not the enrolled one", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator();
    const a = agent(config(c.url, dir), { secret: generateAgentCredential("pi1").secret });
    const refused: string[] = [];
    a.client.on("refused", (e) => refused.push(e.code));
    a.start();
    await waitFor("refusal", () => refused.length > 0, 5000);
    expect(refused[0]).toBe("unauthenticated");
    expect(c.reports).toHaveLength(0);
  });
});

describe("commands", () => {
  async function withAgent(commands: Record<string, unknown>) {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = await coordinator();
    const a = agent(config(c.url, dir, { commands }));
    a.start();
    await waitFor("connected", () => c.sockets.has("pi1"), 5000);
    const results: v1.CommandResult[] = [];
    c.on("result", (_id, r) => results.push(r));
    const send = async (cmd: v1.Command.$Properties) => {
      const n = results.length;
      c.sendCommand("pi1", cmd);
      return waitFor(`result of ${cmd.id}`, () => results.length > n && results.find((r) => r.id === cmd.id), 5000);
    };
    return { send };
  }

  it("restart-apache runs the configured command and reports success", async () => {
    const marker = path.join(tempDir("pi-agent-cmd-"), "restarted");
    cleanup.push(() => rmSync(path.dirname(marker), { recursive: true, force: true }));
    const { send } = await withAgent({ restartApache: ["/bin/sh", "-c", `echo restarted >> ${marker}; echo done`] });
    const r = await send({ id: "c1", target: "pi1", kind: "restart-apache" });
    expect(r).toMatchObject({ id: "c1", ok: true });
    expect(r.message).toContain("done");
    expect(readFileSync(marker, "utf8")).toBe("restarted\n");
  });

  it("reboot runs its configured command; a failing command reports its exit status and output", async () => {
    const { send } = await withAgent({ reboot: ["/bin/sh", "-c", "echo no power >&2; exit 3"] });
    const r = await send({ id: "c2", target: "pi1", kind: "reboot" });
    expect(r).toMatchObject({ id: "c2", ok: false });
    expect(r.message).toMatch(/exit status 3: no power/);
  });

  it("refuses an unknown kind and a command for another Pi", async () => {
    const { send } = await withAgent({});
    expect(await send({ id: "c3", target: "pi1", kind: "format-disk" })).toMatchObject({
      ok: false,
      message: 'unknown command kind "format-disk"; a Pi agent runs restart-apache, reboot',
    });
    expect(await send({ id: "c4", target: "pi2", kind: "reboot" })).toMatchObject({ ok: false, message: "command is for pi2, this is pi1" });
  });

  it("kills a command that outlives its timeout", async () => {
    const { send } = await withAgent({ restartApache: ["/bin/sleep", "30"] });
    const t0 = Date.now();
    const r = await send({ id: "c5", target: "pi1", kind: "restart-apache", timeoutMs: 300 });
    expect(r).toMatchObject({ ok: false, message: expect.stringContaining("timed out after 300 ms") });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("refuses a second restart while one runs", async () => {
    const { send } = await withAgent({ restartApache: ["/bin/sleep", "1"] });
    const first = send({ id: "c6", target: "pi1", kind: "restart-apache" });
    await sleep(100);
    expect(await send({ id: "c7", target: "pi1", kind: "restart-apache" })).toMatchObject({ ok: false, message: "restart-apache is already running" });
    expect(await first).toMatchObject({ ok: true });
  });
});

describe("report deadlines and systemd", () => {
  it("a collector that never answers does not delay reports, is not restarted while pending, and READY/WATCHDOG still flow", async () => {
    const dir = tempDir("pi-agent-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const notify = notifySocket(dir);
    cleanup.push(() => notify.close());
    const c = await coordinator();
    let calls = 0;
    const stuck: Collector = { collect: () => (calls++, new Promise(() => undefined)) };
    const quick: Collector = { collect: async () => ({ uptimeS: 42 }) };
    const a = agent(config(c.url, dir), {
      notifier: createNotifier({ NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "200000" }),
      collectors: [
        { name: "apache", collector: stuck, deadlineMs: 100 },
        { name: "uptime", collector: quick, deadlineMs: 100 },
      ],
    });
    a.start();
    await waitFor("6 reports", () => c.reports.length >= 6, 5000);
    expect(c.reports.every((r) => Number(r.reading.uptimeS) === 42)).toBe(true);
    // Each report arrived about the deadline plus grace (150 ms) after its tick began.
    const delays = c.reports.map((r) => r.at - Number(r.reading.timeMs));
    expect(Math.max(...delays)).toBeLessThan(700);
    expect(calls).toBe(1);
    await waitFor("READY=1", () => notify.messages.some((m) => m.split("\n").includes("READY=1")), 2000);
    await waitFor("WATCHDOG=1", () => notify.messages.includes("WATCHDOG=1"), 2000);
  });
});

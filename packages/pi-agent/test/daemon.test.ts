import { describe, it, expect, afterEach } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateAgentCredential } from "@pifleet/proto";
import { MiniCoordinator } from "../src/bench/mini-coordinator.js";
import { AGENT_MAIN, mountHungFuse, notifySocket, piPaths, tempDir, waitFor, writeAgentConfig } from "./helpers.js";

// These run the built daemon (dist/main.js), as systemd would.
const cred = generateAgentCredential("pi1");
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

function runAgent(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; stderr: () => string; exited: Promise<number | null>; signal: () => NodeJS.Signals | null } {
  const child = spawn(process.execPath, [AGENT_MAIN, ...args], { env: { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, stderr: () => err, exited, signal: () => child.signalCode };
}

async function setup(extra: Record<string, unknown> = {}) {
  const dir = tempDir("pi-agent-daemon-");
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  // IPv4 loopback, so the agent can bind a source address other than the one it connects to.
  const c = await new MiniCoordinator({ agents: { pi1: cred.publicKey }, host: "127.0.0.1" }).start();
  cleanup.push(() => c.stop());
  const notify = notifySocket(dir);
  cleanup.push(() => notify.close());
  const file = writeAgentConfig(dir, cred.secret, {
    coordinator: { url: c.url },
    identity: "pi1",
    localAddress: "127.0.0.2",
    intervalMs: 300,
    paths: piPaths(dir),
    collectors: { apache: false, probe: false, rootfs: { path: dir } },
    ...extra,
  });
  return { dir, c, notify, file };
}

describe("pi-agent daemon (dist/main.js)", () => {
  it("reports from its configured source address, sends READY=1 after the first report, and stops cleanly on SIGTERM", async () => {
    const { c, notify, file } = await setup();
    const agent = runAgent(["--config", file], { NOTIFY_SOCKET: notify.path });
    await waitFor("3 reports", () => c.reports.length >= 3, 15_000);
    expect(c.remotes.get("pi1")).toBe("127.0.0.2");
    // A collector past its deadline leaves its fields out of that one report (a loaded CI machine
    // can make the very first read slow), so look for the fixture's figures in any early report.
    expect(c.reports[0].identity).toBe("pi1");
    expect(c.reports.some((r) => r.reading.load?.one === 0.52)).toBe(true);
    const ready = notify.messages.findIndex((m) => m.split("\n").includes("READY=1"));
    expect(ready).toBeGreaterThanOrEqual(0);

    agent.child.kill("SIGTERM");
    const t0 = Date.now();
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(notify.messages).toContain("STOPPING=1");
    expect(agent.stderr()).toContain('"msg":"pi agent stopped"');
  });

  it("reports a hung root filesystem as stalled, keeps reporting on time, and still stops on SIGTERM", async () => {
    const mounts: Array<() => void> = [];
    cleanup.push(() => mounts.reverse().forEach((f) => f()));
    const hung = mountHungFuse(mounts);
    const { c, file } = await setup({ collectors: { apache: false, probe: false, rootfs: { path: path.join(hung.dir, "root"), deadlineMs: 100 } } });
    const agent = runAgent(["--config", file]);
    await waitFor("5 reports", () => c.reports.length >= 5, 15_000);
    const reports = c.reports.map((r) => r.reading);
    expect(reports.every((r) => r.rootfs?.stalled === true)).toBe(true);
    // One stat outstanding for the whole run, its age growing report after report.
    expect(Number(reports.at(-1)!.rootfs!.latencyMs)).toBeGreaterThan(Number(reports[0].rootfs!.latencyMs) + 3 * 250);
    expect(hung.waiting()).toBeLessThanOrEqual(2); // FUSE_INIT, never answered, plus our one stat
    // process.exit() would hang joining the stuck pool thread: the agent re-raises SIGTERM instead,
    // which systemd counts as a clean stop.
    agent.child.kill("SIGTERM");
    const t0 = Date.now();
    expect(await agent.exited).toBe(null);
    expect(agent.signal()).toBe("SIGTERM");
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("refuses a bad config naming the file and field, and starts nothing", async () => {
    const dir = tempDir("pi-agent-daemon-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "pi-agent.yaml");
    writeFileSync(file, "coordinator:\n  url: ws://[::1]:7300/agent\nidentity: pi1\nsecretFile: /etc/pifleet/s\nintervalMs: fast\n");
    const agent = runAgent(["--config", file]);
    expect(await agent.exited).toBe(1);
    expect(agent.stderr().trim()).toBe(`pi-agent: ${file}: intervalMs: Invalid input: expected number, received string`);
  });

  it("names an unreadable secret file", async () => {
    const dir = tempDir("pi-agent-daemon-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "pi-agent.yaml");
    writeFileSync(file, `coordinator:\n  url: ws://[::1]:7300/agent\nidentity: pi1\nsecretFile: ${dir}/missing.secret\n`);
    const agent = runAgent(["--config", file]);
    expect(await agent.exited).toBe(1);
    expect(agent.stderr()).toContain(`secret: cannot read ${dir}/missing.secret: ENOENT`);
  });

  it("--check validates without starting; usage errors exit 2", () => {
    const dir = tempDir("pi-agent-daemon-");
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "pi-agent.yaml");
    writeFileSync(file, "coordinator:\n  url: ws://[::1]:7300/agent\nidentity: pi1\nsecretFile: /etc/pifleet/s\n");
    const ok = spawnSync(process.execPath, [AGENT_MAIN, "--config", file, "--check"], { encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(`${file}: ok\n`);
    const usage = spawnSync(process.execPath, [AGENT_MAIN], { encoding: "utf8" });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("usage: pi-agent --config");
  });
});

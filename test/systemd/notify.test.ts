import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

/**
 * Plays systemd's side of Type=notify: binds a unix datagram socket, hands it to a process as
 * NOTIFY_SOCKET with a small WATCHDOG_USEC, and records what arrives. The processes are the real
 * built daemons (dist/main.js) and core's createNotifier on its own.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// The same addon the daemons send with, from the package that depends on it.
const unixDgram = createRequire(path.join(repo, "packages/core/package.json"))("unix-dgram") as {
  createSocket(type: "unix_dgram", onMessage: (buf: Buffer) => void): { bind(path: string): void; close(): void; on(e: "error", f: (err: Error) => void): void };
};

const WATCHDOG_USEC = 400_000; // pings expected every 200 ms
let tmp: string;
const children: ChildProcess[] = [];
const sockets: Array<{ close(): void }> = [];

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "pifleet-notify-"));
  // A real Ed25519 agent secret: the agents refuse to start without one they can parse.
  const proto = await import(pathToFileURL(path.join(repo, "packages/proto/dist/index.js")).href);
  writeFileSync(path.join(tmp, "agent.secret"), (proto.generateAgentCredential("pi01") as { secret: string }).secret, { mode: 0o600 });
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const s of sockets.splice(0)) s.close();
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Datagram {
  text: string;
  at: number;
}

function listen(name: string): { path: string; got: Datagram[] } {
  const socketPath = path.join(tmp, `${name}.notify`);
  const got: Datagram[] = [];
  const sock = unixDgram.createSocket("unix_dgram", (buf) => got.push({ text: buf.toString(), at: Date.now() }));
  sock.on("error", () => undefined);
  sock.bind(socketPath);
  sockets.push(sock);
  return { path: socketPath, got };
}

function start(args: string[], notifySocket: string, extraEnv: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, {
    cwd: tmp,
    env: { ...process.env, NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: String(WATCHDOG_USEC), PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "warn", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  children.push(child);
  return { child, output: () => out };
}

async function until(what: string, ok: () => boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; process output:\n${output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const isWatchdog = (d: Datagram) => d.text.split("\n").includes("WATCHDOG=1");
const readyIndex = (got: Datagram[]) => got.findIndex((d) => d.text.split("\n").includes("READY=1"));

/** READY=1 first, then WATCHDOG=1 about every WATCHDOG_USEC/2; returns the gaps between pings. */
async function expectReadyThenPings(got: Datagram[], output: () => string, readyTimeoutMs: number): Promise<number[]> {
  await until("READY=1", () => readyIndex(got) >= 0, readyTimeoutMs, output);
  const afterReady = () => got.slice(readyIndex(got) + 1).filter(isWatchdog);
  await until("four WATCHDOG=1 after READY=1", () => afterReady().length >= 4, 5000, output);
  const pings = afterReady();
  const gaps = pings.slice(1).map((p, i) => p.at - pings[i].at);
  // Half the watchdog interval, with room for a busy 2-core machine; never near the 400 ms limit on average.
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  expect(mean).toBeGreaterThan(100);
  expect(mean).toBeLessThan(350);
  return gaps;
}

async function stopsCleanly(child: ChildProcess, got: Datagram[], output: () => string): Promise<void> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 10_000))]);
  expect(code, output()).toBe(0);
  expect(got.some((d) => d.text.includes("STOPPING=1"))).toBe(true);
}

describe("core createNotifier, in a child process", () => {
  const script = (healthy: string) =>
    [
      `import { createNotifier } from ${JSON.stringify(pathToFileURL(path.join(repo, "packages/core/dist/index.js")).href)};`,
      "const n = createNotifier();",
      "process.stdout.write(n.transport + '\\n');",
      "await n.ready('serving');",
      `n.startWatchdog(() => ${healthy});`,
      "setInterval(() => undefined, 1000);",
      "process.on('SIGTERM', async () => { await n.stopping(); n.close(); process.exit(0); });",
    ].join("\n");

  it("sends READY=1 with a status, then WATCHDOG=1 at half of WATCHDOG_USEC, from its own process", async () => {
    const { path: sock, got } = listen("core");
    const { child, output } = start(["--input-type=module", "-e", script("true")], sock);
    await expectReadyThenPings(got, output, 10_000);
    expect(got[readyIndex(got)].text).toBe("READY=1\nSTATUS=serving");
    expect(output()).toBe("socket\n"); // the addon, not the systemd-notify fallback
    await stopsCleanly(child, got, output);
  });

  it("sends no WATCHDOG=1 when WATCHDOG_PID names another process, or when the health check vetoes", async () => {
    for (const [name, env, healthy] of [
      ["otherpid", { WATCHDOG_PID: "1" }, "true"],
      ["vetoed", {}, "false"],
    ] as const) {
      const { path: sock, got } = listen(name);
      const { child, output } = start(["--input-type=module", "-e", script(healthy)], sock, env);
      await until("READY=1", () => readyIndex(got) >= 0, 10_000, output);
      await new Promise((r) => setTimeout(r, 700));
      expect(got.filter(isWatchdog), name).toEqual([]);
      child.kill("SIGKILL");
    }
  });
});

describe("the daemons under a fake systemd", () => {
  it("coordinator: READY=1 once listening, then WATCHDOG=1, STOPPING=1 on SIGTERM", async () => {
    const config = path.join(tmp, "coordinator.yaml");
    writeFileSync(config, `fleet: ${path.join(repo, "examples/seed-8.yaml")}\nlisten: { host: "::1", port: 0 }\ndatabase: ${path.join(tmp, "coordinator.db")}\n`);
    const { path: sock, got } = listen("coordinator");
    const { child, output } = start([path.join(repo, "packages/coordinator/dist/main.js"), "--config", config], sock);
    await expectReadyThenPings(got, output, 20_000);
    expect(got[readyIndex(got)].text).toMatch(/^READY=1\nSTATUS=serving 8 Pis of seed on port \d+$/);
    await stopsCleanly(child, got, output);
  });

  it("Pi agent: READY=1 after its first report (coordinator unreachable), then WATCHDOG=1", async () => {
    const config = path.join(tmp, "pi-agent.yaml");
    // Port 9 (discard) on loopback: nothing answers, the agent queues reports and keeps going.
    writeFileSync(config, `coordinator: { url: "ws://[::1]:9/agent" }\nidentity: pi01\nsecretFile: ${path.join(tmp, "agent.secret")}\n`);
    const { path: sock, got } = listen("pi-agent");
    const { child, output } = start([path.join(repo, "packages/pi-agent/dist/main.js"), "--config", config], sock);
    await expectReadyThenPings(got, output, 20_000);
    await stopsCleanly(child, got, output);
  });

  it("fileserver agent (sandbox root, live=off): READY=1, then WATCHDOG=1", async () => {
    const config = path.join(tmp, "fileserver.yaml");
    writeFileSync(
      config,
      [
        `fleet: ${path.join(repo, "examples/seed-8.yaml")}`,
        'coordinator: { url: "ws://[::1]:9/agent" }',
        "identity: fileserver",
        `secretFile: ${path.join(tmp, "agent.secret")}`,
        `rootPrefix: ${path.join(tmp, "fileserver-root")}`,
        'live: "off"',
        "dryRun: true",
        "",
      ].join("\n"),
    );
    mkdirSync(path.join(tmp, "fileserver-root"), { recursive: true });
    const { path: sock, got } = listen("fileserver");
    const { child, output } = start([path.join(repo, "packages/fileserver-agent/dist/main.js"), "--config", config], sock);
    await expectReadyThenPings(got, output, 20_000);
    await stopsCleanly(child, got, output);
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../../packages/cli/src/install/bundle.js";
import { ROLES } from "../../packages/cli/src/install/roles.js";
import { listenNotify, type Datagram, type NotifySocket } from "./notify-socket.js";

/**
 * Plays systemd's side of Type=notify: a unix datagram socket that records each message with the
 * sender's PID as the kernel reports it (SCM_CREDENTIALS, what systemd checks for
 * NotifyAccess=main), handed to a process as NOTIFY_SOCKET with a small WATCHDOG_USEC. The
 * processes are the real built daemons (dist/main.js), started as the units start them: through
 * systemd/notify-exec.pl. Every datagram must come from the PID that was started — the wrapper's,
 * which exec made node's — as under systemd the unit's main PID.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WRAPPER = path.join(repo, "systemd/notify-exec.pl");
const WATCHDOG_USEC = 400_000; // pings expected every 200 ms
let tmp: string;
const children: ChildProcess[] = [];
const sockets: NotifySocket[] = [];

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

let sockets_n = 0;
async function listen(name: string, abstract = false): Promise<NotifySocket> {
  const s = await listenNotify(abstract ? `@pifleet-test-${process.pid}-${sockets_n++}` : path.join(tmp, `${name}.notify`));
  sockets.push(s);
  return s;
}

interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Starts `node ARGS` as a unit would: through the wrapper unless `wrapped` is false. */
function start(args: string[], notifySocket: string, options: { env?: Record<string, string>; wrapped?: boolean; node?: string } = {}): Started {
  const node = options.node ?? process.execPath;
  const [cmd, argv] = options.wrapped === false ? [node, args] : ["/usr/bin/perl", [WRAPPER, node, ...args]];
  const child = spawn(cmd, argv, {
    cwd: tmp,
    // No NODE_PATH (pnpm exec sets one that reaches every package in the store): a unit has none.
    env: { ...process.env, NODE_PATH: "", NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: String(WATCHDOG_USEC), PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "warn", ...options.env },
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

/**
 * READY=1 first, then WATCHDOG=1 about every WATCHDOG_USEC/2, every datagram from the started
 * process itself (what NotifyAccess=main accepts), which is node, not a child of the wrapper.
 */
async function expectReadyThenPings(s: Started, got: Datagram[], readyTimeoutMs: number): Promise<void> {
  await until("READY=1", () => readyIndex(got) >= 0, readyTimeoutMs, s.output);
  const afterReady = () => got.slice(readyIndex(got) + 1).filter(isWatchdog);
  await until("four WATCHDOG=1 after READY=1", () => afterReady().length >= 4, 5000, s.output);
  const pings = afterReady();
  const gaps = pings.slice(1).map((p, i) => p.at - pings[i].at);
  // Half the watchdog interval, with room for a busy 2-core machine; never near the 400 ms limit on average.
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  expect(mean).toBeGreaterThan(100);
  expect(mean).toBeLessThan(350);
  expect(new Set(got.map((d) => d.pid))).toEqual(new Set([s.child.pid]));
  expect(realpathSync(readlinkSync(`/proc/${s.child.pid}/exe`))).toBe(realpathSync(process.execPath));
}

async function stopsCleanly(child: ChildProcess, got: Datagram[], output: () => string): Promise<void> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 10_000))]);
  expect(code, output()).toBe(0);
  expect(got.some((d) => d.text.includes("STOPPING=1") && d.pid === child.pid)).toBe(true);
}

const coreScript = (healthy: string) =>
  [
    `import { createNotifier } from ${JSON.stringify(pathToFileURL(path.join(repo, "packages/core/dist/index.js")).href)};`,
    "const n = createNotifier();",
    "process.stdout.write(n.transport + ' ' + (process.env.PIFLEET_NOTIFY_FD ?? 'unset') + '\\n');",
    "await n.ready('serving');",
    `n.startWatchdog(() => ${healthy});`,
    "setInterval(() => undefined, 1000);",
    "process.on('SIGTERM', async () => { await n.stopping(); n.close(); process.exit(0); });",
  ].join("\n");

describe("core createNotifier through notify-exec.pl, in a child process", () => {
  for (const abstract of [false, true]) {
    it(`sends READY=1 with a status, then WATCHDOG=1 at half of WATCHDOG_USEC, from its own PID (${abstract ? "abstract @socket" : "socket path"})`, async () => {
      const { address, got } = await listen("core", abstract);
      const s = start(["--input-type=module", "-e", coreScript("true")], address);
      await expectReadyThenPings(s, got, 10_000);
      expect(got[readyIndex(got)].text).toBe("READY=1\nSTATUS=serving");
      // The inherited socket, not the addon fallback; the number is gone from the environment.
      expect(s.output()).toBe("fd unset\n");
      await stopsCleanly(s.child, got, s.output);
    });
  }

  it("sends no WATCHDOG=1 when WATCHDOG_PID names another process, or when the health check vetoes", async () => {
    for (const [name, env, healthy] of [
      ["otherpid", { WATCHDOG_PID: "1" }, "true"],
      ["vetoed", {}, "false"],
    ] as const) {
      const { address, got } = await listen(name);
      const { child, output } = start(["--input-type=module", "-e", coreScript(healthy)], address, { env });
      await until("READY=1", () => readyIndex(got) >= 0, 10_000, output);
      await new Promise((r) => setTimeout(r, 700));
      expect(got.filter(isWatchdog), name).toEqual([]);
      child.kill("SIGKILL");
    }
  });

  it("without NOTIFY_SOCKET the wrapper only execs; with an unreachable one it says so and still starts the program", async () => {
    const bare = start(["-e", "process.stdout.write(String(process.env.PIFLEET_NOTIFY_FD))"], "", { env: { PIFLEET_NOTIFY_FD: "5" } });
    await new Promise((r) => bare.child.once("exit", r));
    expect(bare.child.exitCode).toBe(0);
    expect(bare.output()).toBe("undefined"); // a stale number from outside is never passed on

    const { output, child } = start(["--input-type=module", "-e", coreScript("true")], path.join(tmp, "nobody.notify"));
    await until("the program's first line", () => output().includes("\n") && /^(fd|addon|binary) /m.test(output()), 10_000, output);
    expect(output()).toContain(`notify-exec: cannot connect to NOTIFY_SOCKET=${path.join(tmp, "nobody.notify")}`);
    // The daemon then says which fallback it took (the workspace has the unix-dgram addon).
    expect(output()).toMatch(/"msg":"sd_notify: no notify socket inherited; sending through the unix-dgram addon instead"/);
    expect(output()).toMatch(/^addon unset$/m);
    child.kill("SIGKILL");
  });
});

describe("the daemons under a fake systemd, started through notify-exec.pl", () => {
  it("coordinator: READY=1 once listening, then WATCHDOG=1, STOPPING=1 on SIGTERM", async () => {
    const config = path.join(tmp, "coordinator.yaml");
    writeFileSync(config, `fleet: ${path.join(repo, "examples/seed-8.yaml")}\nlisten: { host: "::1", port: 0 }\ndatabase: ${path.join(tmp, "coordinator.db")}\n`);
    const { address, got } = await listen("coordinator");
    const s = start([path.join(repo, "packages/coordinator/dist/main.js"), "--config", config], address);
    await expectReadyThenPings(s, got, 20_000);
    expect(got[readyIndex(got)].text).toMatch(/^READY=1\nSTATUS=serving 8 Pis of seed on port \d+$/);
    await stopsCleanly(s.child, got, s.output);
  });

  it("Pi agent: READY=1 after its first report (coordinator unreachable), then WATCHDOG=1", async () => {
    const config = writePiConfig();
    const { address, got } = await listen("pi-agent");
    const s = start([path.join(repo, "packages/pi-agent/dist/main.js"), "--config", config], address);
    await expectReadyThenPings(s, got, 20_000);
    // Start progress before READY=1: once as it starts, once after the config check (a child node).
    expect(got.slice(0, readyIndex(got)).map((d) => d.text)).toEqual(["EXTEND_TIMEOUT_USEC=60000000", "EXTEND_TIMEOUT_USEC=60000000"]);
    // That child must not have notified (or tried to): every datagram came from the main PID.
    expect(s.output()).not.toContain("sd_notify");
    await stopsCleanly(s.child, got, s.output);
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
    const { address, got } = await listen("fileserver");
    const s = start([path.join(repo, "packages/fileserver-agent/dist/main.js"), "--config", config], address);
    await expectReadyThenPings(s, got, 20_000);
    await stopsCleanly(s.child, got, s.output);
  });

  it("the Pi agent's bundle started without the wrapper logs that READY=1 will not arrive (no addon to fall back on)", async () => {
    const bundle = path.join(tmp, "pi-bundle");
    await buildBundle(ROLES.pi, { outDir: bundle });
    const { address } = await listen("pi-bundle-bare");
    const s = start([path.join(bundle, "main.js"), "--config", writePiConfig()], address, { wrapped: false });
    await until("the fallback warning", () => s.output().includes("sd_notify: no notify socket inherited"), 20_000, s.output);
    const line = s.output().split("\n").find((l) => l.includes("sd_notify: no notify socket inherited"))!;
    expect(JSON.parse(line)).toMatchObject({
      level: 40,
      transport: "binary",
      problem: "PIFLEET_NOTIFY_FD is not set: the unit does not start this daemon through notify-exec.pl",
      msg: expect.stringContaining("READY=1 will not arrive"),
    });
  });
});

function writePiConfig(): string {
  const config = path.join(tmp, "pi-agent.yaml");
  // Port 9 (discard) on loopback: nothing answers, the agent queues reports and keeps going.
  writeFileSync(config, `coordinator: { url: "ws://[::1]:9/agent" }\nidentity: pi01\nsecretFile: ${path.join(tmp, "agent.secret")}\n`);
  return config;
}

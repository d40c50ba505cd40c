import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@pifleet/core";
import { createToken, enrollAgent, SqliteStore } from "@pifleet/coordinator";
import { FleetClient, v1 } from "@pifleet/proto";
import { manageService, type InstallOptions } from "../src/install/installer.js";
import { InstallError } from "../src/install/remote.js";
import { ReportWatch, type WaitRole } from "../src/install/report-wait.js";
import { ROLES } from "../src/install/roles.js";
import { startApache, type ApacheInstance } from "../../../test/apache/apache-server.js";
import { startSshd } from "./install-harness.js";

/**
 * `pifleet install --wait-report` against a real coordinator (its built daemon, a child process on
 * ::1) and real agents: the Pi agent's built daemon, started by the fake remote's `systemctl
 * restart` as systemd would start it (no systemd here: the remote is the install-service test's
 * kind of fake; the real systemctl path runs in the lab's VMs).
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const COORDINATOR_MAIN = path.join(repo, "packages/coordinator/dist/main.js");
const AGENT_MAIN = path.join(repo, "packages/pi-agent/dist/main.js");
const CLI = path.join(repo, "packages/cli/dist/main.js");
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const JOURNAL = "pi-agent: connecting to ws://[::1]:7300/agent\npi-agent: connection refused, retrying in 1 s";

let dir: string;
let port: number;
let watcherToken: string;
let coordinator: ChildProcess;
let coordinatorLog = "";
const secrets = new Map<string, string>();
const agents: ChildProcess[] = [];
let apache: ApacheInstance;

function piAgentConfig(pi: string): string {
  writeFileSync(path.join(dir, `${pi}.secret`), `${secrets.get(pi)}\n`, { mode: 0o600 });
  const file = path.join(dir, `${pi}.yaml`);
  writeFileSync(
    file,
    json({
      coordinator: { url: `ws://[::1]:${port}/agent` },
      identity: pi,
      secretFile: path.join(dir, `${pi}.secret`),
      localAddress: "::1",
      intervalMs: 500,
      // Debian's Apache on loopback, watched as on a Pi.
      collectors: { apache: { url: apache.statusUrl }, probe: { url: `${apache.base}/` } },
    }),
  );
  return file;
}

function startPiAgent(pi: string): ChildProcess {
  const child = spawn(process.execPath, [AGENT_MAIN, "--config", piAgentConfig(pi)], { env: { PATH: process.env.PATH, PIFLEET_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "ignore"] });
  agents.push(child);
  return child;
}

function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/**
 * The target as the installer sees it over SSH: systemctl and journalctl answered from a table;
 * `systemctl restart` stops the unit's process and starts the next (`start`), as systemd would.
 */
function fakeTarget(unit: string, start: () => ChildProcess | undefined, activeAlready = false, stop: (child: ChildProcess) => Promise<void> = stopAgent) {
  const ran: string[] = [];
  let running: ChildProcess | undefined;
  const target = {
    ran,
    adopt(child: ChildProcess) {
      running = child;
    },
    remote: {
      label: "root@target",
      async run(command: string) {
        ran.push(command);
        if (command === `systemctl is-enabled ${unit}`) return { code: 0, stdout: "enabled\n", stderr: "" };
        if (command === `systemctl is-active ${unit}`) return { code: 0, stdout: activeAlready || running ? "active\n" : "inactive\n", stderr: "" };
        if (command === `systemctl restart ${unit}`) {
          if (running) await stop(running);
          running = start();
          activeAlready = true;
          return { code: 0, stdout: "", stderr: "" };
        }
        if (command === `systemctl show -p ActiveState,SubState,Result ${unit}`) return { code: 0, stdout: "ActiveState=active\nSubState=running\nResult=success\n", stderr: "" };
        if (command === `journalctl -u ${unit} -n 20 --no-pager -o cat`) return { code: 0, stdout: `${JOURNAL}\n`, stderr: "" };
        throw new Error(`unexpected command ${command}`);
      },
      async check(command: string) {
        ran.push(command);
        return "";
      },
    },
  };
  return target;
}

function watch(role: WaitRole, agent: string, timeoutMs: number): ReportWatch {
  return new ReportWatch({ urls: [`ws://[::1]:${port}/feed`], token: watcherToken, watcher: "install-test", role, agent, timeoutMs });
}

/** manageService as installOn calls it (the watcher started first), collecting what it prints. */
async function runService(t: ReturnType<typeof fakeTarget>, role: WaitRole, w: ReportWatch, filesChanged: boolean) {
  const changes: string[] = [];
  const same: string[] = [];
  const options = { role: ROLES[role], prefix: "/", start: true, dryRun: false, activeTimeoutMs: 5000, reportWait: w, out: () => undefined } as unknown as InstallOptions;
  w.start();
  try {
    await manageService(t.remote as never, options, { unitChanged: false, filesChanged, configMissing: false }, (l) => changes.push(l), (l) => same.push(l), () => undefined);
    return { changes, same, error: undefined as Error | undefined };
  } catch (err) {
    return { changes, same, error: err as Error };
  } finally {
    await w.stop();
  }
}

function healthz(): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "::1", port, path: "/healthz", timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-install-report-"));
  port = await freePort("::1");
  apache = await startApache();
  writeFileSync(
    path.join(dir, "fleet.yaml"),
    json({
      name: "install-report",
      switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "PIFLEET_SNMP_COMMUNITY" } }, trunkPort: 24 },
      fileserver: { name: "fs01", goldenImage: "/srv/pifleet/golden" },
      private: { range: "10.46.189.0/24", firstVlan: 10 },
      public: { vlan: 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1" },
      pis: ["pi01", "pi02", "pi03", "pi04"].map((name, i) => ({ name, port: i + 1 })),
    }),
  );
  const store = new SqliteStore(path.join(dir, "coordinator.db"));
  for (const pi of ["pi01", "pi02", "pi03", "pi04"]) secrets.set(pi, enrollAgent(store, pi, "pi").secret);
  secrets.set("fs01", enrollAgent(store, "fs01", "fileserver").secret);
  // pi04 was enrolled and then revoked (issue 17): its agent is refused for its credentials.
  store.revokeAgent("pi04");
  watcherToken = createToken(store, "install-test", "watcher");
  store.close();
  writeFileSync(
    path.join(dir, "coordinator.yaml"),
    json({
      fleet: "fleet.yaml",
      listen: { host: "::1", port },
      database: "coordinator.db",
      reportIntervalMs: 500,
      startupGraceMs: 0,
      switch: { enabled: false },
      loadBalancer: { enabled: false },
    }),
  );
  coordinator = spawn(process.execPath, [COORDINATOR_MAIN, "--config", path.join(dir, "coordinator.yaml")], { env: { PATH: process.env.PATH, PIFLEET_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"] });
  coordinator.stderr!.on("data", (d: Buffer) => (coordinatorLog = (coordinatorLog + d.toString()).slice(-20_000)));
  const until = Date.now() + 20_000;
  while ((await healthz()) !== 200) {
    if (Date.now() > until || coordinator.exitCode !== null) throw new Error(`coordinator not serving:\n${coordinatorLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map(stopAgent));
  if (coordinator && coordinator.exitCode === null) {
    await new Promise<void>((resolve) => {
      coordinator.once("exit", () => resolve());
      coordinator.kill("SIGTERM");
    });
  }
  await apache?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("pifleet install --wait-report (a real coordinator on ::1)", () => {
  it("waits for the installed Pi agent's first report and says how long it took; a second run changes nothing and is satisfied by the running agent", async () => {
    const t = fakeTarget("pifleet-pi-agent.service", () => startPiAgent("pi01"));
    const first = await runService(t, "pi", watch("pi", "pi01", 20_000), true);
    expect(first.error).toBeUndefined();
    expect(first.changes).toEqual(["systemctl restart pifleet-pi-agent.service (was inactive)"]);
    expect(first.same.at(-1)).toMatch(new RegExp(`^pi01: healthy .* — first report to the coordinator \\(ws://\\[::1\\]:${port}/feed\\) \\d+\\.\\d s after systemctl restart returned$`));

    // Nothing changed: no restart, no change, and the agent already reporting is seen.
    const before = t.ran.length;
    const second = await runService(t, "pi", watch("pi", "pi01", 20_000), false);
    expect(second.error).toBeUndefined();
    expect(second.changes).toEqual([]);
    expect(t.ran.slice(before)).toEqual(["systemctl is-enabled pifleet-pi-agent.service", "systemctl is-active pifleet-pi-agent.service"]);
    expect(second.same.at(-1)).toMatch(/^pi01: healthy .* — reporting to the coordinator \(.*\): a report \d+\.\d s after asking$/);
  }, 60_000);

  it("an agent that never connects fails after --report-timeout with 'never connected' and the unit's journal", async () => {
    // The unit "runs" (systemd says active) but nothing reaches the coordinator.
    const t = fakeTarget("pifleet-pi-agent.service", () => undefined, true);
    const r = await runService(t, "pi", watch("pi", "pi02", 1500), true);
    expect(r.error).toBeInstanceOf(InstallError);
    expect(r.error!.message).toBe(
      `root@target: pifleet-pi-agent.service is active (ActiveState=active SubState=running Result=success), but its agent did not report to the coordinator (ws://[::1]:${port}/feed) within 1.5 s: pi02: never connected. Last journal lines:\n${JOURNAL}`,
    );
  }, 30_000);

  it("a report from before the restart (or before the wait, when nothing restarted) does not count, even while the old connection looks open", async () => {
    const old = startPiAgent("pi03");
    // The restart leaves the old process frozen, its TCP connection open (as a connection the
    // coordinator has not yet seen drop), and starts nothing that reports.
    const t = fakeTarget("pifleet-pi-agent.service", () => undefined, false, async (child) => {
      child.kill("SIGSTOP");
      // As systemctl restart returns only once the old process is stopped and the new one started:
      // stopped for sure, and a start's worth of time for a report it wrote just before to land.
      while (!/^\d+ \(.*\) T/.test(readFileSync(`/proc/${child.pid}/stat`, "utf8"))) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 300));
    });
    t.adopt(old);
    try {
      // pi03 reporting now, as a previous install left it.
      const seen = await runService(t, "pi", watch("pi", "pi03", 20_000), false);
      expect(seen.error).toBeUndefined();
      const r = await runService(t, "pi", watch("pi", "pi03", 2000), true);
      expect(r.error).toBeInstanceOf(InstallError);
      expect(r.error!.message).toMatch(/within 2\.0 s: pi03: connected, but no report since the restart; last report \d+\.\d s ago; shown \w+/);
      expect(r.error!.message).toContain(`Last journal lines:\n${JOURNAL}`);
      // Nothing to restart on the next run, but the frozen agent is no more reporting for that.
      const again = await runService(t, "pi", watch("pi", "pi03", 1500), false);
      expect(again.changes).toEqual([]);
      expect(again.error!.message).toMatch(/within 1\.5 s: pi03: connected, but no report since the wait began; last report \d+\.\d s ago/);
    } finally {
      old.kill("SIGCONT");
    }
  }, 60_000);

  it("an agent refused for its credentials is reported as such", async () => {
    const t = fakeTarget("pifleet-pi-agent.service", () => startPiAgent("pi04"));
    const r = await runService(t, "pi", watch("pi", "pi04", 3000), true);
    expect(r.error).toBeInstanceOf(InstallError);
    expect(r.error!.message).toMatch(/within 3\.0 s: pi04: refused: credentials — its agent is refused for its credentials \(\w+\)/);
  }, 30_000);

  it("waits for the fileserver's first report (FleetStatus), and names an agent that is not the fleet's fileserver", async () => {
    // A fileserver agent's connection as the real one makes it (its role, secret and report frame).
    let client: FleetClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    const fake = { exitCode: null, signalCode: null, once: (_: string, fn: () => void) => fn(), kill: () => undefined } as unknown as ChildProcess;
    const t = fakeTarget("pifleet-fileserver.service", () => {
      client = new FleetClient({ url: `ws://[::1]:${port}/agent`, role: v1.Role.ROLE_FILESERVER, identity: "fs01", secret: secrets.get("fs01"), initialBackoffMs: 50 });
      client.on("ready", () => {
        const report = () => client!.send({ fileserverReport: { fileserver: "fs01", healthy: true, nfsServerRunning: true } });
        report();
        timer = setInterval(report, 500);
      });
      client.start();
      return fake;
    });
    try {
      const r = await runService(t, "fileserver", watch("fileserver", "fs01", 20_000), true);
      expect(r.error).toBeUndefined();
      expect(r.same.at(-1)).toMatch(/^fs01: healthy \(reporting healthy\) — first report to the coordinator \(.*\) \d+\.\d s after systemctl restart returned$/);

      const other = await runService(fakeTarget("pifleet-fileserver.service", () => undefined, true), "fileserver", watch("fileserver", "fs99", 1000), false);
      expect(other.error!.message).toContain('within 1.0 s: fs99: not the coordinator\'s fileserver (it expects "fs01")');
    } finally {
      clearInterval(timer);
      await client?.stop();
    }
  }, 60_000);
});

describe("pifleet install --wait-report: the watcher's own token", () => {
  it("a watcher token the coordinator refuses ends the wait at once, saying so", async () => {
    const t = fakeTarget("pifleet-pi-agent.service", () => undefined, true);
    const w = new ReportWatch({ urls: [`ws://[::1]:${port}/feed`], token: "nobody.c2VjcmV0LXRoYXQtaXMtbm90LWlzc3VlZA", watcher: "nobody", role: "pi", agent: "pi01", timeoutMs: 30_000 });
    const r = await runService(t, "pi", w, false);
    expect(r.error).toBeInstanceOf(InstallError);
    expect(r.error!.message).toMatch(/is active \(.*\), but its report cannot be waited for: the coordinator refused the watcher token nobody: unauthenticated \(\w+\)/);
  }, 20_000);
});

describe("pifleet install --wait-report: arguments", () => {
  const cli = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, PIFLEET_URL: "", PIFLEET_TOKEN: "", SSH_AUTH_SOCK: "" }, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("exit", (code) => resolve({ code, stderr }));
    });

  it("a bad --url is a usage error before anything on the target is touched", async () => {
    // Stands where the target's sshd would be: it must not see a single connection.
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const sshPort = (server.address() as net.AddressInfo).port;
    const tokenFile = path.join(dir, "watcher.token");
    writeFileSync(tokenFile, `${watcherToken}\n`);
    const config = piAgentConfig("pi01");
    const base = ["install", "127.0.0.1", "--role", "pi", "--port", String(sshPort), "--config", config, "--wait-report", "--token-file", tokenFile];
    try {
      const bad = await cli([...base, "--url", "http://[::1]:7300/feed"]);
      expect(bad).toEqual({ code: 2, stderr: 'pifleet: --url: "http://[::1]:7300/feed" must start with ws:// or wss://\n' });
      const none = await cli(base);
      expect(none).toEqual({ code: 2, stderr: "pifleet: --url or $PIFLEET_URL is required (the coordinator's feed, e.g. wss://coordinator:7300/feed)\n" });
      const noAgent = await cli(["install", "127.0.0.1", "--role", "pi", "--port", String(sshPort), "--wait-report", "--token-file", tokenFile, "--url", "ws://[::1]:1/feed"]);
      expect(noAgent).toEqual({ code: 2, stderr: "pifleet: --wait-report: without --config, --agent NAME says which agent to wait for\n" });
      const coordinatorRole = await cli(["install", "127.0.0.1", "--role", "coordinator", "--port", String(sshPort), "--wait-report", "--url", "ws://[::1]:1/feed"]);
      expect(coordinatorRole.code).toBe(2);
      expect(coordinatorRole.stderr).toMatch(/--wait-report: the coordinator is not an agent/);
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  }, 30_000);

  it("with good arguments (URL and token from the environment, the agent from --config) a failure on the target ends the run: the feed watcher started beside the install does not hold it open", async () => {
    const sshDir = mkdtempSync(path.join(dir, "sshd-"));
    const sshd = await startSshd(sshDir);
    const knownHosts = path.join(sshDir, "known_hosts");
    writeFileSync(knownHosts, `${sshd.hostKeyLine}\n`);
    try {
      // $PIFLEET_URL and $PIFLEET_TOKEN as the other feed commands take them; the agent from --config.
      const child = spawn(process.execPath, [CLI, "install", "127.0.0.1", "--role", "pi", "--port", String(sshd.port), "--identity", sshd.wrongKey, "--known-hosts", knownHosts, "--config", piAgentConfig("pi01"), "--wait-report", "--report-timeout", "5"], {
        env: { ...process.env, PIFLEET_URL: `ws://[::1]:${port}`, PIFLEET_TOKEN: watcherToken },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect({ code, stderr }).toEqual({ code: 1, stderr: `pifleet: ssh root@[127.0.0.1]:${sshd.port}: authentication failed: the server refused the key in ${sshd.wrongKey} for user root\n` });
    } finally {
      await sshd.stop();
    }
  }, 60_000);
});

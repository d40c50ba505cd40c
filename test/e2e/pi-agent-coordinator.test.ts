import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FleetClient, readingOf, v1 } from "@pifleet/proto";
import { createToken, enrollAgent, FeedMirror, SqliteStore } from "@pifleet/coordinator";
import { freePort, startApache, type ApacheInstance } from "../apache/apache-server.js";

/**
 * The real thing on one machine: the coordinator daemon and three Pi agent daemons (built dist,
 * each its own process, talking WebSocket + protobuf over ::1), each Pi agent watching its own
 * real Apache. A watcher on the feed sees all three healthy; when one Apache stops, that Pi turns
 * suspect within a report interval or two, and the others stay healthy.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const COORDINATOR_MAIN = path.join(ROOT, "packages/coordinator/dist/main.js");
const AGENT_MAIN = path.join(ROOT, "packages/pi-agent/dist/main.js");
// YAML is a superset of JSON: configs are written as JSON (the root package has no YAML library).
const stringify = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const PIS = ["pi01", "pi02", "pi03"];
const REPORT_INTERVAL_MS = 1000;

let dir: string;
let port: number;
let watcherToken: string;
const apaches = new Map<string, ApacheInstance>();
const procs: Array<{ name: string; child: ChildProcess; stderr: () => string }> = [];
let watcher: FleetClient | undefined;
const mirror = new FeedMirror();

function daemon(name: string, main: string, config: string): ChildProcess {
  const child = spawn(process.execPath, [main, "--config", config], {
    env: { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  procs.push({ name, child, stderr: () => err });
  return child;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) {
      const logs = procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? "running"})\n${p.stderr().slice(-2000)}`).join("\n");
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 25));
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

const state = (pi: string) => {
  const s = mirror.pis.get(pi);
  return s ? v1.PiState[s.state] : undefined;
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "pifleet-e2e-agent-"));
  port = await freePort("::1");

  writeFileSync(
    path.join(dir, "fleet.yaml"),
    stringify({
      name: "e2e",
      switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "PIFLEET_SNMP_COMMUNITY" } }, trunkPort: 24 },
      fileserver: { goldenImage: "/srv/pifleet/golden" },
      private: { range: "10.46.189.0/24", firstVlan: 10 },
      public: { vlan: 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1" },
      pis: PIS.map((name, i) => ({ name, port: i + 1 })),
    }),
  );

  // Enrol the agents and a watcher in the coordinator's database before it starts.
  const store = new SqliteStore(path.join(dir, "coordinator.db"));
  const secrets = new Map(PIS.map((pi) => [pi, enrollAgent(store, pi, "pi").secret]));
  watcherToken = createToken(store, "e2e-watch", "watcher");
  store.close();

  writeFileSync(
    path.join(dir, "coordinator.yaml"),
    stringify({
      fleet: "fleet.yaml",
      listen: { host: "::1", port },
      database: "coordinator.db",
      reportIntervalMs: REPORT_INTERVAL_MS,
      startupGraceMs: 0,
      // No switch or load balancer in this test: only the agents' reports matter.
      switch: { enabled: false },
      loadBalancer: { enabled: false },
    }),
  );
  daemon("coordinator", COORDINATOR_MAIN, path.join(dir, "coordinator.yaml"));

  for (const pi of PIS) apaches.set(pi, await startApache());
  const until = Date.now() + 20_000;
  while ((await healthz()) !== 200) {
    if (Date.now() > until) throw new Error(`coordinator not serving:\n${procs[0].stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  for (const pi of PIS) {
    const a = apaches.get(pi)!;
    writeFileSync(path.join(dir, `${pi}.secret`), `${secrets.get(pi)}\n`, { mode: 0o600 });
    writeFileSync(
      path.join(dir, `${pi}.yaml`),
      stringify({
        coordinator: { url: `ws://[::1]:${port}/agent` },
        identity: pi,
        secretFile: path.join(dir, `${pi}.secret`),
        localAddress: "::1",
        intervalMs: REPORT_INTERVAL_MS,
        collectors: { apache: { url: a.statusUrl }, probe: { url: `${a.base}/` } },
      }),
    );
    daemon(pi, AGENT_MAIN, path.join(dir, `${pi}.yaml`));
  }

  watcher = new FleetClient({ url: `ws://[::1]:${port}/feed`, role: v1.Role.ROLE_WATCHER, identity: "e2e-watch", token: watcherToken, initialBackoffMs: 50, maxBackoffMs: 500 });
  watcher.on("message", (env) => mirror.apply(env));
  watcher.start();
}, 120_000);

afterAll(async () => {
  await watcher?.stop();
  const exits = procs.map(
    ({ child }) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : (child.once("exit", () => r()), child.kill("SIGTERM")))),
  );
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
  for (const { child } of procs) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const a of apaches.values()) await a.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Pi agents ↔ the coordinator, end to end", () => {
  it("a watcher sees every Pi healthy, with the agent's figures in its last report", async () => {
    // Healthy, and the report behind it shows Apache, the probe and the root filesystem fine. (Under
    // heavy load a feed delta can carry a newer report before the judge has seen it.)
    const fine = (pi: string) => {
      const s = mirror.pis.get(pi);
      const r = s ? readingOf(s) : null;
      return state(pi) === "PI_STATE_HEALTHY" && r?.apache?.reachable && r.probe?.ok && r.rootfs && !r.rootfs.stalled;
    };
    await waitFor("all Pis healthy in the feed", () => PIS.every(fine), 30_000);
    for (const pi of PIS) {
      const s = mirror.pis.get(pi)!;
      expect(s.connected).toBe(true);
      const r = readingOf(s)!;
      expect(s.facts!.agentVersion).toMatch(/^pi-agent\//);
      expect(r.apache).toMatchObject({ reachable: true });
      // The test Apache's 10-slot scoreboard, as counts per state.
      expect(s.facts!.scoreboardSlots).toBe(10);
      expect(Object.values(r.apache!.slots).reduce((a, b) => a + b, 0)).toBe(10);
      expect(r.probe).toMatchObject({ ok: true, status: 200 });
      expect(Number(r.memTotalBytes)).toBeGreaterThan(0);
      expect(r.rootfs).toMatchObject({ stalled: false });
    }
  });

  it("stopping one Pi's Apache turns that Pi suspect within the report interval; the others stay healthy", async () => {
    await waitFor("all Pis healthy", () => PIS.every((pi) => state(pi) === "PI_STATE_HEALTHY"), 30_000);
    const t0 = Date.now();
    await apaches.get("pi01")!.stop();
    await waitFor("pi01 suspect", () => state("pi01") === "PI_STATE_SUSPECT", 10_000);
    const took = Date.now() - t0;
    // The next report (≤ one interval away, its collectors capped at 80% of it) carries the failure.
    expect(took).toBeLessThan(2 * REPORT_INTERVAL_MS + 1500);
    const s = mirror.pis.get("pi01")!;
    expect(s.reason).toMatch(/Apache unreachable: .*ECONNREFUSED/);
    expect(s.reason).toMatch(/HTTP probe failed/);
    expect(s.connected).toBe(true);
    expect(state("pi02")).toBe("PI_STATE_HEALTHY");
    expect(state("pi03")).toBe("PI_STATE_HEALTHY");
  });
});

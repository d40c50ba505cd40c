import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "@pifleet/core";
import { createToken, enrollAgent, FeedMirror, SqliteStore } from "@pifleet/coordinator";
import { FleetClient, v1 } from "@pifleet/proto";
import { repoRoot } from "./harness/index.js";

/**
 * The real coordinator daemon (built dist, the host's Node 20) on 127.0.0.1, with the given Pis
 * enrolled and a watcher mirroring its feed: where the ARM tests' Pi agents report. Only
 * loopback: a VM reaches it through QEMU's user network (10.0.2.2 is the host's 127.0.0.1).
 */
export interface TestCoordinator {
  port: number;
  /** Each Pi's agent secret, as `pifleet enroll` prints it. */
  secrets: Map<string, string>;
  mirror: FeedMirror;
  /** Host time (ms) when the feed first carried a report of each Pi. */
  firstReportAt: Map<string, number>;
  state(pi: string): string | undefined;
  log(): string;
  stop(): Promise<void>;
}

const stringify = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export async function startCoordinator(pis: string[], intervalMs = 1000): Promise<TestCoordinator> {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-arm-coordinator-"));
  const port = await freePort("127.0.0.1");
  writeFileSync(
    path.join(dir, "fleet.yaml"),
    stringify({
      name: "arm",
      switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "PIFLEET_SNMP_COMMUNITY" } }, trunkPort: 24 },
      fileserver: { goldenImage: "/srv/pifleet/golden" },
      private: { range: "10.46.189.0/24", firstVlan: 10 },
      public: { vlan: 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1" },
      pis: pis.map((name, i) => ({ name, port: i + 1 })),
    }),
  );
  const store = new SqliteStore(path.join(dir, "coordinator.db"));
  const secrets = new Map(pis.map((pi) => [pi, enrollAgent(store, pi, "pi").secret]));
  const token = createToken(store, "arm-watch", "watcher");
  store.close();
  writeFileSync(
    path.join(dir, "coordinator.yaml"),
    stringify({
      fleet: "fleet.yaml",
      listen: { host: "127.0.0.1", port },
      database: "coordinator.db",
      reportIntervalMs: intervalMs,
      startupGraceMs: 0,
      // Only the agents' reports matter here.
      switch: { enabled: false },
      loadBalancer: { enabled: false },
    }),
  );
  let log = "";
  const child: ChildProcess = spawn(process.execPath, [path.join(repoRoot, "packages/coordinator/dist/main.js"), "--config", path.join(dir, "coordinator.yaml")], {
    cwd: dir,
    env: { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  });
  const until = Date.now() + 30_000;
  while ((await healthz(port)) !== 200) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`coordinator not serving:\n${log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const mirror = new FeedMirror();
  const firstReportAt = new Map<string, number>();
  mirror.on("update", (u) => {
    for (const p of u.pis) if (p.lastSample && !firstReportAt.has(p.name)) firstReportAt.set(p.name, Date.now());
  });
  const watcher = new FleetClient({ url: `ws://127.0.0.1:${port}/feed`, role: v1.Role.ROLE_WATCHER, identity: "arm-watch", token, initialBackoffMs: 50, maxBackoffMs: 500 });
  watcher.on("message", (env) => mirror.apply(env));
  watcher.start();
  return {
    port,
    secrets,
    mirror,
    firstReportAt,
    state: (pi) => {
      const s = mirror.pis.get(pi);
      return s ? v1.PiState[s.state] : undefined;
    },
    log: () => log,
    async stop() {
      await watcher.stop();
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function healthz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/healthz", timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { v1 } from "@pifleet/proto";
import { createToken, enrollAgent, SqliteStore } from "@pifleet/coordinator";
import { freePort, startApache, type ApacheInstance } from "../apache/apache-server.js";
import { pifleet } from "./helpers/cli.js";
import { FeedWatch, waitFor } from "./helpers/feed-watch.js";

/**
 * Fleet-file reload on the real daemon (built dist, its own process, loopback): SIGHUP — what
 * `systemctl reload pifleet-coordinator` sends — re-reads the fleet file and applies it in place.
 * Two real Pi agents (each watching its own Apache) stay on their first connection throughout:
 * each logs "connected to the coordinator" once, with one session id, and the coordinator's
 * /healthz keeps counting both. A Pi added appears in the feed, a removed one leaves it, and a
 * broken file is refused with the field named while the running fleet stays as it was.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const COORDINATOR_MAIN = path.join(ROOT, "packages/coordinator/dist/main.js");
const AGENT_MAIN = path.join(ROOT, "packages/pi-agent/dist/main.js");
const stringify = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const AGENTS = ["pi01", "pi02"];

let dir: string;
let port: number;
let watch: FeedWatch;
let coordinator: ChildProcess;
const apaches = new Map<string, ApacheInstance>();
const procs: Array<{ name: string; child: ChildProcess; stderr: () => string }> = [];

function fleetFile(pis: Array<{ name: string; port: unknown }>): string {
  return stringify({
    name: "e2e",
    switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "PIFLEET_SNMP_COMMUNITY" } }, trunkPort: 24 },
    fileserver: { goldenImage: "/srv/pifleet/golden" },
    private: { range: "10.46.189.0/24", firstVlan: 10 },
    public: { vlan: 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1" },
    pis,
  });
}

function daemon(name: string, main: string, config: string): ChildProcess {
  const child = spawn(process.execPath, [main, "--config", config], {
    env: { PATH: process.env.PATH, PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  procs.push({ name, child, stderr: () => err });
  return child;
}

/** The sessions an agent's log says it connected with (one line per connection). */
function sessions(pi: string): string[] {
  const log = procs.find((p) => p.name === pi)!.stderr();
  return log
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { msg?: string; session?: string })
    .filter((l) => l.msg === "connected to the coordinator")
    .map((l) => String(l.session));
}

function healthz(): Promise<{ status: number; body: { agentsConnected?: number; pis?: number } }> {
  return new Promise((resolve) => {
    const req = request({ host: "::1", port, path: "/healthz", timeout: 1000 }, (res) => {
      let b = "";
      res.on("data", (d: Buffer) => (b += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: b ? JSON.parse(b) : {} }));
    });
    req.on("error", () => resolve({ status: 0, body: {} }));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

const reloadEvents = () => watch.events.filter((e) => e.kind === "reload");

async function reload(fleet: string): Promise<v1.FleetEvent> {
  const before = reloadEvents().length;
  writeFileSync(path.join(dir, "fleet.yaml"), fleet);
  coordinator.kill("SIGHUP");
  return waitFor("the reload event", () => reloadEvents()[before], 10_000, () => watch.describe());
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "pifleet-e2e-reload-"));
  port = await freePort("::1");
  writeFileSync(path.join(dir, "fleet.yaml"), fleetFile([{ name: "pi01", port: 1 }, { name: "pi02", port: 2 }]));
  const store = new SqliteStore(path.join(dir, "coordinator.db"));
  const secrets = new Map(AGENTS.map((pi) => [pi, enrollAgent(store, pi, "pi").secret]));
  const token = createToken(store, "e2e-watch", "watcher");
  store.close();
  writeFileSync(
    path.join(dir, "coordinator.yaml"),
    stringify({ fleet: "fleet.yaml", listen: { host: "::1", port }, database: "coordinator.db", reportIntervalMs: 1000, startupGraceMs: 0, switch: { enabled: false }, loadBalancer: { enabled: false } }),
  );
  coordinator = daemon("coordinator", COORDINATOR_MAIN, path.join(dir, "coordinator.yaml"));
  const until = Date.now() + 20_000;
  while ((await healthz()).status !== 200) {
    if (Date.now() > until) throw new Error(`coordinator not serving:\n${procs[0].stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const pi of AGENTS) {
    const a = await startApache();
    apaches.set(pi, a);
    writeFileSync(path.join(dir, `${pi}.secret`), `${secrets.get(pi)}\n`, { mode: 0o600 });
    writeFileSync(
      path.join(dir, `${pi}.yaml`),
      stringify({
        coordinator: { url: `ws://[::1]:${port}/agent` },
        identity: pi,
        secretFile: path.join(dir, `${pi}.secret`),
        localAddress: "::1",
        intervalMs: 1000,
        collectors: { apache: { url: a.statusUrl }, probe: { url: `${a.base}/` } },
      }),
    );
    daemon(pi, AGENT_MAIN, path.join(dir, `${pi}.yaml`));
  }
  watch = new FeedWatch(`ws://[::1]:${port}/feed`, token);
  await watch.until("both agents healthy", () => AGENTS.every((pi) => watch.state(pi) === "healthy"), 30_000);
}, 120_000);

afterAll(async () => {
  await watch?.stop();
  const exits = procs.map(({ child }) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : (child.once("exit", () => r()), child.kill("SIGTERM")))));
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
  for (const { child } of procs) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const a of apaches.values()) await a.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("fleet-file reload (SIGHUP) on the running coordinator", () => {
  it("a Pi added to the fleet file appears in the feed; no agent reconnects", async () => {
    const first = new Map(AGENTS.map((pi) => [pi, sessions(pi)]));
    for (const s of first.values()) expect(s).toHaveLength(1);
    const ev = await reload(fleetFile([{ name: "pi01", port: 1 }, { name: "pi02", port: 2 }, { name: "pi03", port: 3 }]));
    expect(ev.message).toBe("fleet file reloaded: 1 Pi added (pi03)");
    expect(ev.fields).toMatchObject({ ok: "true", added: "pi03", removed: "" });
    await watch.until("pi03 in the feed", () => watch.mirror.pis.get("pi03"));
    expect(watch.mirror.fleetStatus?.pisTotal).toBe(3);
    // The coordinator kept running (same process) and both agents are on their first connection.
    expect(coordinator.exitCode).toBeNull();
    for (const pi of AGENTS) expect(sessions(pi)).toEqual(first.get(pi));
    expect((await healthz()).body).toMatchObject({ pis: 3, agentsConnected: 2 });
    for (const pi of AGENTS) expect(watch.mirror.pis.get(pi)?.connected).toBe(true);
  });

  it("a Pi removed from the fleet file leaves the feed and its agent is closed; the other stays connected", async () => {
    const pi01 = sessions("pi01");
    const ev = await reload(fleetFile([{ name: "pi01", port: 1 }, { name: "pi03", port: 3 }]));
    expect(ev.message).toBe("fleet file reloaded: 1 removed (pi02)");
    await watch.until("pi02 gone from the feed", () => !watch.mirror.pis.has("pi02"));
    expect(watch.mirror.fleetStatus?.pisRemoved).toEqual(["pi02"]);
    expect([...watch.mirror.pis.keys()].sort()).toEqual(["pi01", "pi03"]);
    // pi02's agent is refused from now on; pi01's first connection is untouched.
    const until = Date.now() + 10_000;
    while ((await healthz()).body.agentsConnected !== 1) {
      if (Date.now() > until) throw new Error(`pi02's agent still connected:\n${watch.describe()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(sessions("pi01")).toEqual(pi01);
    expect(watch.state("pi01")).toBe("healthy");
  });

  it("a broken fleet file is refused with the field named; the running fleet is kept", async () => {
    const pi01 = sessions("pi01");
    const ev = await reload(fleetFile([{ name: "pi01", port: "one" }, { name: "pi03", port: 3 }]));
    expect(ev.fields).toMatchObject({ ok: "false" });
    expect(ev.message).toMatch(/^fleet file refused, the running fleet is kept: .*fleet\.yaml: pis\[0\]\.port: .*expected number/);
    expect([...watch.mirror.pis.keys()].sort()).toEqual(["pi01", "pi03"]);
    expect((await healthz()).body).toMatchObject({ pis: 2, agentsConnected: 1 });
    expect(sessions("pi01")).toEqual(pi01);
    expect(coordinator.exitCode).toBeNull();
    // Fixed again: applies as usual (the refused file left nothing half-applied).
    const ok = await reload(fleetFile([{ name: "pi01", port: 1 }, { name: "pi03", port: 4 }]));
    expect(ok.message).toBe("fleet file reloaded: 1 changed (pi03)");
    await watch.until("pi03 on port 4", () => watch.mirror.pis.get("pi03")?.port === 4);
  });

  it("pifleet coordinator reload: checks the file first (a bad one never reaches the coordinator), then signals it", async () => {
    const conf = path.join(dir, "coordinator.yaml");
    const before = reloadEvents().length;
    writeFileSync(path.join(dir, "fleet.yaml"), fleetFile([{ name: "pi01", port: 1 }, { name: "pi01", port: 2 }]));
    const bad = await pifleet(["coordinator", "reload", "--config", conf, "--pid", String(coordinator.pid)]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/fleet\.yaml: pis\[1\]\.name: /);
    await new Promise((r) => setTimeout(r, 500));
    expect(reloadEvents()).toHaveLength(before);

    writeFileSync(path.join(dir, "fleet.yaml"), fleetFile([{ name: "pi01", port: 1 }, { name: "pi03", port: 4 }, { name: "pi05", port: 5 }]));
    const good = await pifleet(["coordinator", "reload", "--config", conf, "--pid", String(coordinator.pid)]);
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("3 Pis: valid");
    const ev = await waitFor("the reload event", () => reloadEvents()[before], 10_000, () => watch.describe());
    expect(ev.message).toBe("fleet file reloaded: 1 Pi added (pi05)");
    await watch.until("pi05 in the feed", () => watch.mirror.pis.get("pi05"));
  });
});

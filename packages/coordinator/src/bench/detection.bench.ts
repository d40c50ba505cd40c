import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { checkFleet, createLogger, goalMet as met, type BenchRow, type FleetInput, freePort } from "@pifleet/core";
import { FleetClient, v1 } from "@pifleet/proto";
import { startSwitchEmulator, type SwitchEmulator } from "@pifleet/switch";
import { DEFAULT_RECOVERY_CONFIG } from "@pifleet/recovery";
import { createToken, enrollAgent } from "../enrollment.js";
import { displayStateName } from "../fleet-state.js";
import { SimFleet } from "../sim/agents.js";
import { SqliteStore } from "../store/sqlite.js";

// Failure detection and the first power action on an emulated shelf of 96: the coordinator
// daemon (a real process, recovery on, production defaults but for the rate limit), the PoE
// switch emulator over real SNMP, HAProxy when installed, a fileserver reporting healthy, and
// 96 simulated Pi agents (sim/agents.ts) in this process — 96 real Pi agent processes of ~45 MB
// each would measure this machine's scheduler more than the coordinator. Pis are stopped one at
// a time; each is "booted" again when the emulator switches its port back on.

const here = path.dirname(fileURLToPath(import.meta.url));
const PIS = 96;
const VICTIMS = Number(process.env.PIFLEET_BENCH_DETECT_PIS ?? 6);
const DWELL_S = 1;
const BOOT_MS = 500;
const HAPROXY = "/usr/sbin/haproxy";

interface Seen {
  at: number;
  status: v1.PiStatus;
}

interface Sample {
  pi: string;
  suspectAfterLastReport: number;
  downAfterLastReport: number;
  stopToDownOnFeed: number;
  downToPowerOff: number;
  stopToHealthy: number;
}

const piName = (i: number) => `pi${String(i + 1).padStart(2, "0")}`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}


async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`detection bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}


function started(proc: ChildProcess, name: string): void {
  proc.on("exit", (code, signal) => {
    if (code) process.stderr.write(`detection bench: ${name} exited with status ${code ?? signal}\n`);
  });
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-bench-detect-"));
  const children: ChildProcess[] = [];
  const clients: Array<{ stop(): Promise<void> }> = [];
  let emulator: SwitchEmulator | undefined;
  const victims = new Map<number, { name: string; fleet?: SimFleet; secret: string }>();
  try {
    const logger = createLogger("bench-detect", { level: process.env.PIFLEET_LOG_LEVEL ?? "error" });
    const community = randomBytes(12).toString("hex");
    const communityFile = path.join(dir, "community");
    writeFileSync(communityFile, community, { mode: 0o600 });
    emulator = await startSwitchEmulator({ ports: PIS + 1, address: "127.0.0.1", port: 0, community: "public", rwCommunity: community, selfPowered: [PIS + 1], logger });

    const haproxy = existsSync(HAPROXY);
    const socket = path.join(dir, "haproxy.sock");
    const pis = Array.from({ length: PIS }, (_, i) => ({ name: piName(i), port: i + 1 }));
    const fleet: FleetInput = {
      name: "bench",
      switch: { name: "bench-switch", address: "127.0.0.1", snmpPort: emulator.port, snmp: { version: "2c", community: { file: communityFile } }, trunkPort: PIS + 1, poe: { driver: "rfc3621", group: 1, dwellSeconds: DWELL_S } },
      fileserver: { name: "fileserver", goldenImage: "/srv/pifleet/golden" },
      private: { range: "10.46.188.0/23", firstVlan: 10 },
      public: { vlan: 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1" },
      loadBalancer: { driver: "haproxy", socket, backend: "pifleet" },
      pis,
    };
    checkFleet(fleet, "bench fleet");
    writeFileSync(path.join(dir, "fleet.yaml"), stringify(fleet));

    if (haproxy) {
      // Servers on a closed port without checks: only their admin state (drain/ready) matters here.
      const cfg = ["global", `\tstats socket ${socket} mode 600 level admin`, "defaults", "\tmode http", "\ttimeout connect 2s", "\ttimeout client 10s", "\ttimeout server 10s", "backend pifleet", ...pis.map((p) => `\tserver ${p.name} 127.0.0.1:9`), ""];
      writeFileSync(path.join(dir, "haproxy.cfg"), cfg.join("\n"));
      const hp = spawn(HAPROXY, ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: "ignore" });
      started(hp, "haproxy");
      children.push(hp);
      await until("HAProxy's admin socket", () => existsSync(socket), 10_000);
    }

    const db = path.join(dir, "coordinator.db");
    const store = new SqliteStore(db);
    const secrets = new Map<string, string>();
    for (const name of [...pis.map((p) => p.name), "fileserver"]) secrets.set(name, enrollAgent(store, name, name === "fileserver" ? "fileserver" : "pi").secret);
    const token = createToken(store, "bench", "watcher");
    store.close();

    const port = await freePort();
    const recovery = { enabled: true, startupGraceMs: 2000, bootTimeoutMs: 30_000, powerActionsPerWindow: 1000 };
    writeFileSync(
      path.join(dir, "coordinator.yaml"),
      stringify({ fleet: path.join(dir, "fleet.yaml"), listen: { host: "127.0.0.1", port }, database: db, recovery, switch: { enabled: true }, loadBalancer: { enabled: haproxy, sync: false } }),
    );
    const coord = spawn(process.execPath, [path.join(here, "../main.js"), "--config", path.join(dir, "coordinator.yaml")], { stdio: ["ignore", "ignore", process.env.PIFLEET_BENCH_VERBOSE ? "inherit" : "ignore"], env: { ...process.env, PIFLEET_LOG_LEVEL: process.env.PIFLEET_BENCH_VERBOSE ? "info" : "warn", PIFLEET_LOG_FORMAT: "json" } });
    started(coord, "coordinator");
    children.push(coord);
    const healthz = `http://127.0.0.1:${port}/healthz`;
    const up = Date.now() + 30_000;
    for (;;) {
      if (coord.exitCode !== null) throw new Error("detection bench: the coordinator exited at start");
      if (await fetch(healthz).then((r) => r.ok, () => false)) break;
      if (Date.now() > up) throw new Error("detection bench: the coordinator did not come up");
      await new Promise((r) => setTimeout(r, 100));
    }
    const agentUrl = `ws://127.0.0.1:${port}/agent`;

    // The fileserver: reports healthy, so recovery's fileserver guard lets power actions through.
    const fs = new FleetClient({ url: agentUrl, role: v1.Role.ROLE_FILESERVER, identity: "fileserver", secret: secrets.get("fileserver")!, logger });
    fs.start();
    clients.push(fs);
    const fsTimer = setInterval(() => fs.send({ fileserverReport: { fileserver: "fileserver", timeMs: Date.now(), healthy: true, nfsServerRunning: true } }, false), 1000);
    clients.push({ stop: async () => clearInterval(fsTimer) });

    // Victims spread over the shelf, each its own one-agent SimFleet so it can die and boot alone.
    const victimIdx = Array.from({ length: VICTIMS }, (_, k) => Math.floor(((k + 0.5) * PIS) / VICTIMS));
    for (const i of victimIdx) victims.set(i + 1, { name: piName(i), secret: secrets.get(piName(i))! });
    const steady = new SimFleet({ url: agentUrl, agents: pis.filter((_, i) => !victims.has(i + 1)).map((p) => ({ identity: p.name, secret: secrets.get(p.name)! })), intervalMs: 1000, logger });
    clients.push(steady);
    const boot = async (port: number) => {
      const v = victims.get(port)!;
      v.fleet = new SimFleet({ url: agentUrl, agents: [{ identity: v.name, secret: v.secret }], intervalMs: 1000, logger });
      await v.fleet.start();
    };
    const power: Array<{ at: number; port: number; on: boolean }> = [];
    emulator.on("power", (p: number, on: boolean) => {
      power.push({ at: Date.now(), port: p, on });
      const v = victims.get(p);
      if (!v) return;
      if (!on) void v.fleet?.stop();
      else setTimeout(() => void boot(p), BOOT_MS);
    });
    await Promise.all([steady.start(), ...[...victims.keys()].map(boot)]);
    clients.push({ stop: async () => void (await Promise.all([...victims.values()].map((v) => v.fleet?.stop()))) });

    const seen = new Map<string, Seen[]>();
    const events: v1.FleetEvent[] = [];
    let fleetStatus: v1.FleetStatus | undefined;
    const watcher = new FleetClient({ url: `ws://127.0.0.1:${port}/feed`, role: v1.Role.ROLE_WATCHER, identity: "bench", token, maxFrameBytes: 64 * 1024 * 1024, logger });
    watcher.on("message", (env) => {
      const at = Date.now();
      const body = env.body === "snapshot" ? env.snapshot! : env.body === "delta" ? env.delta! : undefined;
      if (!body) return;
      if (body.fleetStatus) fleetStatus = body.fleetStatus as v1.FleetStatus;
      if (env.body === "delta") events.push(...((body.events ?? []) as v1.FleetEvent[]));
      for (const s of body.pis ?? []) {
        const list = seen.get(s.name!) ?? [];
        list.push({ at, status: s as v1.PiStatus });
        seen.set(s.name!, list);
      }
    });
    watcher.start();
    clients.push(watcher);
    const state = (pi: string) => {
      const last = seen.get(pi)?.at(-1)?.status;
      return last ? displayStateName(last.state) : "unknown";
    };
    const t0 = Date.now();
    await until("all 96 Pis healthy and the fileserver healthy", () => pis.every((p) => state(p.name) === "healthy") && fleetStatus?.fileserverHealthy, 120_000);
    // Past the recovery engine's start-up grace, so the first victim is judged like the rest.
    await new Promise((r) => setTimeout(r, Math.max(0, recovery.startupGraceMs + 500 - (Date.now() - t0))));

    const samples: Sample[] = [];
    for (const [port, v] of victims) {
      // A random phase against the report interval, as a real failure has.
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
      const from = seen.get(v.name)!.length;
      const powerFrom = power.length;
      const stopAt = Date.now();
      await v.fleet!.stop();
      const firstIn = (s: string) => () => seen.get(v.name)!.slice(from).find((x) => displayStateName(x.status.state) === s);
      const suspect = await until(`${v.name} suspect`, firstIn("suspect"), 20_000);
      const down = await until(`${v.name} down`, firstIn("down"), 20_000);
      const off = await until(`${v.name}'s port off`, () => power.slice(powerFrom).find((c) => c.port === port && !c.on), 30_000);
      const back = await until(`${v.name} healthy again`, () => seen.get(v.name)!.slice(from).find((x) => x.at > off.at && displayStateName(x.status.state) === "healthy"), 60_000);
      const sample: Sample = {
        pi: v.name,
        // Coordinator clock: when it declared the state, minus when the last report arrived.
        suspectAfterLastReport: Number(suspect.status.stateSinceMs) - Number(suspect.status.lastSeenMs),
        downAfterLastReport: Number(down.status.stateSinceMs) - Number(down.status.lastSeenMs),
        stopToDownOnFeed: down.at - stopAt,
        // Same host, same clock: the emulator's power event minus the coordinator's down time.
        downToPowerOff: off.at - Number(down.status.stateSinceMs),
        stopToHealthy: back.at - stopAt,
      };
      samples.push(sample);
      if (sample.downToPowerOff > 3000 + 1000) {
        // An outlier is explained by what the recovery engine was doing meanwhile.
        const between = events.filter((e) => Number(e.timeMs) >= Number(down.status.stateSinceMs) && Number(e.timeMs) <= off.at && e.kind !== "state");
        process.stderr.write(`detection bench: ${v.name} waited ${sample.downToPowerOff} ms for its power-off; meanwhile:\n${between.map((e) => `  ${e.kind} ${e.subject}: ${e.message}`).join("\n")}\n`);
      }
      process.stderr.write(
        `detection bench: ${v.name} (port ${port}): suspect ${sample.suspectAfterLastReport} ms and down ${sample.downAfterLastReport} ms after its last report; down on the feed ${sample.stopToDownOnFeed} ms after it stopped; port off ${sample.downToPowerOff} ms after down; healthy again ${sample.stopToHealthy} ms after it stopped\n`,
      );
    }

    const alarms = events.filter((e) => e.kind === "alarm" && /^FLEET ALARM/.test(e.message)).length;
    const label = `detection, ${PIS} Pis (simulated agents, switch emulator${haproxy ? ", HAProxy" : ""})`;
    const col = (k: keyof Omit<Sample, "pi">) => samples.map((s) => s[k]);
    const n = `over ${samples.length} Pis stopped one at a time`;
    return [
      { name: `${label}: last report → suspect, p50`, value: percentile(col("suspectAfterLastReport"), 50), unit: "ms", note: `threshold 2 s (2 report intervals); max ${Math.max(...col("suspectAfterLastReport"))} ms ${n}` },
      { name: `${label}: last report → down, p50`, value: percentile(col("downAfterLastReport"), 50), unit: "ms", goal: met("≤ 3 s", percentile(col("downAfterLastReport"), 50) <= 3000), note: `threshold 3 s (3 report intervals); max ${Math.max(...col("downAfterLastReport"))} ms` },
      { name: `${label}: last report → down, max`, value: Math.max(...col("downAfterLastReport")), unit: "ms", goal: met("≤ 3 s + one tick", Math.max(...col("downAfterLastReport")) <= 3250), note: "coordinator clock: down's state_since − the last report's arrival" },
      { name: `${label}: agent stopped → down on the feed, p50`, value: percentile(col("stopToDownOnFeed"), 50), unit: "ms", note: `max ${Math.max(...col("stopToDownOnFeed"))} ms; less than the threshold by the time since the last report` },
      { name: `${label}: down → power-off at the switch, p50`, value: percentile(col("downToPowerOff"), 50), unit: "ms", goal: met("≤ 1 s", percentile(col("downToPowerOff"), 50) <= 1000), note: `confirmMs ${DEFAULT_RECOVERY_CONFIG.confirmMs} (the default) counted from down, + tick ≤ 250 ms + HAProxy drain + SNMP set with read-back; max ${Math.max(...col("downToPowerOff"))} ms${alarms ? `; ${alarms} fleet alarm(s) during the run` : ""}` },
      { name: `${label}: down → power-off at the switch, max`, value: Math.max(...col("downToPowerOff")), unit: "ms", goal: met("≤ 1 s", Math.max(...col("downToPowerOff")) <= 1000) },
      { name: `${label}: agent stopped → healthy again, p50`, value: percentile(col("stopToHealthy"), 50), unit: "ms", note: `whole cycle with a ${DWELL_S} s dwell and a ${BOOT_MS} ms emulated boot; max ${Math.max(...col("stopToHealthy"))} ms` },
    ];
  } finally {
    for (const c of clients.reverse()) await c.stop().catch(() => undefined);
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      c.kill("SIGTERM");
      await new Promise((r) => c.once("exit", r));
    }
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

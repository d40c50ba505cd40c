import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { checkFleet, plan, type Logger, freePorts } from "@pifleet/core";
import { SqliteStore, enrollAgent, createToken } from "@pifleet/coordinator";
import { dashboardDir } from "@pifleet/dashboard";
import { startSwitchEmulator, type SwitchEmulator } from "@pifleet/switch";
import type { ChildProcess } from "node:child_process";
import { startControlServer } from "./control.js";
import { EmulatedPi, PI_FAULTS, ROOT_MARKER, type PiFault } from "./emulated-pi.js";
import { demoFleet, demoPiName, demoShelvesFleet, fleetYaml } from "./fleet.js";
import { startDemoHaproxy } from "./haproxy.js";
import { daemonEntry, exited, ProcessSet } from "./processes.js";

export interface DemoOptions {
  /** Pis per shelf. */
  pis: number;
  /** Shelves, each its own switch emulator with the same ports and VLAN ids; default 1. */
  shelves?: number;
  /** Overrides of the coordinator's recovery settings (tests shorten the waits). */
  recovery?: Record<string, number | boolean>;
  /** Seconds a power-cycled port stays off (the fleet's switch.poe.dwellSeconds); default 2. */
  dwellSeconds?: number;
  /** Folder for the demo's files; default a new temporary folder, removed on exit. */
  dir?: string;
  port: number;
  httpPort: number;
  logger: Logger;
  out: (line: string) => void;
  /**
   * High availability: one coordinator per port (the first is `port`), each with its own
   * SQLite copy of the enrolled identities, electing a leader on these etcd endpoints.
   */
  ha?: { etcdEndpoints: string[]; ports: number[]; leaseTtlS?: number };
}

export interface DemoHandle {
  dir: string;
  port: number;
  operatorToken: string;
  watcherToken: string;
  dashboardUrl: string;
  /** The first shelf's switch emulator (the only one of a one-shelf demo). */
  emulator: SwitchEmulator;
  /** Every shelf's switch emulator, in shelf order (shelf1, shelf2, …). */
  emulators: SwitchEmulator[];
  /** Every Pi, shelf after shelf. */
  pis: EmulatedPi[];
  /** The shelf each Pi is on, by name. */
  shelfOf: Map<string, string>;
  haproxy?: { socket: string; url: string };
  /** The coordinator process now running (replaced by restartCoordinator). */
  readonly coordinator: ChildProcess;
  processes: ProcessSet;
  /** Starts the coordinator again (after it was killed, or after stopping it) and waits until it serves. */
  restartCoordinator(signal?: NodeJS.Signals): Promise<ChildProcess>;
  /** High availability: every coordinator process by index (names c1, c2, …), and their SQLite files. */
  coordinators: ChildProcess[];
  coordinatorDatabases: string[];
  /** Starts coordinator i again after it was killed. */
  startCoordinatorAt(i: number): Promise<ChildProcess>;
  /** Stops or starts the (emulated) fileserver's NFS server: the agent then reports it unhealthy. */
  setNfsServer(up: boolean): void;
  stop(): Promise<void>;
}

export const DEFAULT_DEMO_DIR = path.join(tmpdir(), "pifleet-demo");

/**
 * `pifleet demo`: an emulated shelf on one machine with the real daemons — the coordinator with
 * its SQLite file, the PoE switch emulator over real SNMP, HAProxy when installed, the fileserver
 * agent on a sandbox folder, and one real Pi agent process per Pi watching its own web server.
 */
export async function runDemo(o: DemoOptions): Promise<void> {
  const demo = await startDemo(o);
  let coordinatorDied = false;
  try {
    // The flag is read only after the race: stop() itself ends the coordinator, which must not
    // count as it dying on its own (Ctrl-C is a clean exit).
    await Promise.race([signalled(), exited(demo.coordinator).then(() => (coordinatorDied = true))]);
  } finally {
    const died = coordinatorDied;
    await demo.stop();
    if (died) {
      const log = path.join(demo.dir, "logs", "coordinator.log");
      throw new Error(`the coordinator exited on its own; ${existsSync(log) ? `see ${log}` : "run with --dir DIR to keep its log"}`);
    }
  }
}

/** Starts the whole shelf and returns once the coordinator serves; `stop()` ends every part. */
export async function startDemo(o: DemoOptions): Promise<DemoHandle> {
  const ownDir = !o.dir;
  const dir = o.dir ?? DEFAULT_DEMO_DIR;
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, "logs"), { recursive: true });
  const processes = new ProcessSet();
  const cleanups: Array<() => Promise<void> | void> = [];
  const onExit = () => processes.killAllSync();
  process.on("exit", onExit);

  try {
    const sandbox = path.join(dir, "fileserver");
    const golden = "/srv/pifleet/golden";
    makeGoldenImage(path.join(sandbox, golden));
    const communityFile = path.join(dir, "snmp-community");
    const community = randomBytes(12).toString("hex");
    writeFileSync(communityFile, community, { mode: 0o600 });

    // The switches first: a shelf's port power is what runs each of its Pis.
    const shelfCount = o.shelves ?? 1;
    const byShelf: EmulatedPi[][] = Array.from({ length: shelfCount }, () => []);
    const emulators: SwitchEmulator[] = [];
    for (let k = 0; k < shelfCount; k++) {
      const em = await startSwitchEmulator({
        ports: o.pis + 1,
        address: "127.0.0.1",
        port: 0,
        community: "public",
        rwCommunity: community,
        selfPowered: [o.pis + 1],
        stateFile: path.join(dir, k === 0 ? "switch-state.json" : `switch-state-${k + 1}.json`),
        onPowerChange: (port, on) => byShelf[k][port - 1]?.power(on),
        logger: o.logger.child({ part: "switch-emulator", shelf: k + 1 }),
      });
      emulators.push(em);
      cleanups.push(() => em.stop());
    }
    const emulator = emulators[0];

    const names = Array.from({ length: shelfCount * o.pis }, (_, j) => demoPiName(shelfCount, Math.floor(j / o.pis), j % o.pis));
    const sitePorts = await freePorts(names.length);
    const sitePortOf = new Map(names.map((n, j) => [n, sitePorts[j]]));
    const lb = startDemoHaproxy({ dir, httpPort: o.httpPort, servers: names.map((name, j) => ({ name, port: sitePorts[j] })), processes });
    const fleetCommon = { pis: o.pis, communityFile, goldenImage: golden, exportRoot: "/export", lbSocket: lb?.socket ?? path.join(dir, "no-haproxy.sock"), dwellSeconds: o.dwellSeconds };
    const fleetInput = shelfCount > 1 ? demoShelvesFleet({ ...fleetCommon, snmpPorts: emulators.map((e) => e.port) }) : demoFleet({ ...fleetCommon, snmpPort: emulator.port });
    const fleetFile = path.join(dir, "fleet.yaml");
    writeFileSync(fleetFile, fleetYaml(fleetInput));
    const planned = plan(checkFleet(fleetInput, fleetFile));

    // Identities: every agent gets its own key; the person at the dashboard an operator token.
    const dbFile = path.join(dir, "coordinator.db");
    const store = new SqliteStore(dbFile);
    const secretFile = (name: string) => path.join(dir, "secrets", `${name}.secret`);
    mkdirSync(path.join(dir, "secrets"), { recursive: true, mode: 0o700 });
    for (const name of [...planned.pis.map((p) => p.name), "fileserver"]) {
      const { secret } = enrollAgent(store, name, name === "fileserver" ? "fileserver" : "pi");
      writeFileSync(secretFile(name), secret, { mode: 0o600 });
    }
    const operatorToken = createToken(store, "operator", "operator");
    const watcherToken = createToken(store, "watcher", "watcher");
    store.close();
    writeFileSync(path.join(dir, "operator.token"), operatorToken, { mode: 0o600 });

    // The fileserver: roots from the golden image before any Pi boots, then the agent.
    const fsCli = path.join(path.dirname(daemonEntry("@pifleet/fileserver-agent")), "cli.js");
    execFileSync(process.execPath, [fsCli, "--fleet", fleetFile, "--root-prefix", sandbox, "apply"], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, PIFLEET_LOG_LEVEL: "warn" } });

    const ports = o.ha ? o.ha.ports : [o.port];
    const databases = ports.map((_, i) => (i === 0 ? dbFile : path.join(dir, `coordinator-${i + 1}.db`)));
    // Each coordinator keeps its own SQLite (identities, reports, events): copies of the enrolled one.
    for (const db of databases.slice(1)) copyFileSync(dbFile, db);
    const configs = ports.map((port, i) => {
      const file = path.join(dir, i === 0 ? "coordinator.yaml" : `coordinator-${i + 1}.yaml`);
      writeFileSync(
        file,
        stringify({
          fleet: fleetFile,
          listen: { host: "::", port },
          database: databases[i],
          staticDir: dashboardDir,
          recovery: {
            enabled: true,
            maxConcurrent: 2,
            darkShare: 0.3,
            suspectActMs: 8000,
            bootTimeoutMs: 20_000,
            cyclesBeforeRebuild: 1,
            backoffMs: 5000,
            powerActionsPerWindow: 12,
            powerWindowMs: 60_000,
            // The demo's Pis are processes with no NFS client to wait for after a fileserver outage.
            nfsRetryMs: 15_000,
            ...o.recovery,
          },
          switch: { enabled: true },
          loadBalancer: { enabled: Boolean(lb), sync: false },
          ...(o.ha ? { ha: { name: `c${i + 1}`, leaseTtlS: o.ha.leaseTtlS ?? 5, etcd: { endpoints: o.ha.etcdEndpoints } } } : {}),
        }),
      );
      return file;
    });
    const coordinators: ChildProcess[] = [];
    const startCoordinatorAt = async (i: number) => {
      const name = i === 0 ? "coordinator" : `coordinator-${i + 1}`;
      const child = processes.start(name, process.execPath, [daemonEntry("@pifleet/coordinator"), "--config", configs[i]!], { logFile: path.join(dir, "logs", `${name}.log`) });
      await waitForHttp(`http://127.0.0.1:${ports[i]}/healthz`, 20_000, child);
      coordinators[i] = child;
      return child;
    };
    const startCoordinator = () => startCoordinatorAt(0);
    let coordinator = await startCoordinator();
    for (let i = 1; i < ports.length; i++) await startCoordinatorAt(i);
    const agentUrl = `ws://[::1]:${o.port}/agent`;
    const agentUrls = ports.map((p) => `ws://[::1]:${p}/agent`);

    writeFileSync(
      path.join(dir, "fileserver.yaml"),
      stringify({
        fleet: fleetFile,
        coordinator: { url: agentUrl, ...(agentUrls.length > 1 ? { urls: agentUrls } : {}) },
        identity: "fileserver",
        secretFile: secretFile("fileserver"),
        intervalMs: 2000,
        rootPrefix: sandbox,
        live: "emulate",
        contentSources: ["/srv/pifleet/content"],
      }),
    );
    processes.start("fileserver-agent", process.execPath, [daemonEntry("@pifleet/fileserver-agent"), "--config", path.join(dir, "fileserver.yaml")], { logFile: path.join(dir, "logs", "fileserver.log") });

    const pis: EmulatedPi[] = [];
    const shelfIndex = new Map(planned.shelves.map((s, k) => [s.name, k]));
    const shelfOf = new Map(planned.pis.map((p) => [p.name, p.shelf]));
    for (const pi of planned.pis) {
      const e = new EmulatedPi({
          name: pi.name,
          root: path.join(sandbox, pi.nfsRoot),
          sitePort: sitePortOf.get(pi.name)!,
          coordinatorUrl: agentUrl,
          ...(agentUrls.length > 1 ? { coordinatorUrls: agentUrls } : {}),
          secretFile: secretFile(pi.name),
          dir,
          bootDelayMs: 1500,
          processes,
          logger: o.logger,
        });
      pis.push(e);
      byShelf[shelfIndex.get(pi.shelf) ?? 0][pi.port - 1] = e;
    }
    for (const pi of planned.pis) {
      const k = shelfIndex.get(pi.shelf) ?? 0;
      if (emulators[k].state.power(pi.port)) await byShelf[k][pi.port - 1].power(true);
    }
    cleanups.push(async () => {
      for (const pi of pis) await pi.power(false);
    });

    const control = await startControlServer(path.join(dir, "demo.sock"), async (req) => {
      if (req.action === "state") return { ok: true, message: "state", data: pis.map((p) => p.state()) };
      if (req.action !== "fault") return { ok: false, message: `unknown action "${req.action}"` };
      if (req.pi === "fileserver") {
        if (req.kind !== "nfs-down" && req.kind !== "nfs-up") return { ok: false, message: "the fileserver's faults are nfs-down and nfs-up" };
        setNfsServer(sandbox, req.kind === "nfs-up");
        return { ok: true, message: `fileserver: NFS server ${req.kind === "nfs-up" ? "started" : "stopped"}` };
      }
      const pi = pis.find((p) => p.name === req.pi);
      if (!pi) return { ok: false, message: `no Pi named "${req.pi}" in the demo (${pis[0]?.name}…${pis.at(-1)?.name})` };
      if (!PI_FAULTS.includes(req.kind as PiFault)) return { ok: false, message: `fault must be one of ${PI_FAULTS.join(", ")}` };
      return { ok: true, message: await pi.fault(req.kind as PiFault) };
    });
    cleanups.push(() => control.close());

    const url = `http://[::1]:${o.port}/#name=operator&role=operator&token=${encodeURIComponent(operatorToken)}`;
    o.out(
      [
        "",
        shelfCount > 1
          ? `pifleet demo: ${shelfCount} shelves of ${o.pis} emulated Pis, each on its own PoE switch emulator (SNMP on 127.0.0.1:${emulators.map((e) => e.port).join(", ")}), files in ${dir}`
          : `pifleet demo: ${o.pis} emulated Pis on a PoE switch emulator (SNMP on 127.0.0.1:${emulator.port}), files in ${dir}`,
        `  dashboard      ${url}`,
        `  operator token ${operatorToken}`,
        `  watch          pnpm pifleet watch --url ws://[::1]:${o.port}/feed --token ${watcherToken}`,
        `  inject a fault pnpm pifleet fault ${planned.pis[0].name} kill|hang-apache|slow|corrupt-root|heal${ownDir ? "" : ` --dir ${dir}`}`,
        lb ? `  load balancer  ${lb.url} (HAProxy, admin socket ${lb.socket})` : "  load balancer  none: HAProxy is not installed, the demo runs without one",
        "  Ctrl-C stops everything.",
        "",
      ].join("\n"),
    );

    const stop = async () => {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
      cleanups.length = 0;
      await processes.stopAll();
      process.off("exit", onExit);
      if (ownDir && !process.env.PIFLEET_DEMO_KEEP) rmSync(dir, { recursive: true, force: true });
    };
    return {
      dir,
      port: o.port,
      operatorToken,
      watcherToken,
      dashboardUrl: url,
      emulator,
      emulators,
      pis,
      shelfOf,
      haproxy: lb && { socket: lb.socket, url: lb.url },
      get coordinator() {
        return coordinator;
      },
      processes,
      coordinators,
      coordinatorDatabases: databases,
      startCoordinatorAt,
      setNfsServer: (up: boolean) => setNfsServer(sandbox, up),
      async restartCoordinator(signal: NodeJS.Signals = "SIGTERM") {
        processes.kill(coordinator, signal);
        await exited(coordinator);
        coordinator = await startCoordinator();
        return coordinator;
      },
      stop,
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    await processes.stopAll();
    process.off("exit", onExit);
    throw err;
  }
}

/** The sandbox's emulated host keeps its NFS server state in a JSON file the fileserver agent reads. */
function setNfsServer(sandbox: string, up: boolean): void {
  const file = path.join(sandbox, "var/lib/pifleet/emulated-host.json");
  const state = JSON.parse(readFileSync(file, "utf8")) as { nfsServer: boolean };
  state.nfsServer = up;
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${file}.tmp`, file);
}


function makeGoldenImage(root: string): void {
  if (existsSync(path.join(root, ROOT_MARKER))) return;
  for (const d of ["etc", "var/www/html", "usr/lib/cgi-bin", "home/pi"]) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, ROOT_MARKER), "pifleet demo golden image 1\n");
  writeFileSync(path.join(root, "etc/hostname"), "raspberrypi\n");
  writeFileSync(path.join(root, "var/www/html/index.html"), "<!doctype html><title>Raspberry Pi</title><h1>The little computer that did</h1>\n");
}

function signalled(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}


async function waitForHttp(url: string, timeoutMs: number, child: import("node:child_process").ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`coordinator exited with status ${child.exitCode} before serving (see its log)`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`coordinator did not answer ${url} within ${timeoutMs / 1000} s`);
}

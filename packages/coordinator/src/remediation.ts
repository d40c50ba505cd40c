import { z } from "zod";
import type { Fleet, Logger, Plan } from "@pifleet/core";
import { MAX_RECONNECT_BACKOFF_MS, v1 } from "@pifleet/proto";
import { driverForFleet, type LoadBalancerDriver } from "@pifleet/lb";
import { RecoveryEngine, DEFAULT_RECOVERY_CONFIG, type FileserverPort, type LoadBalancerPort, type PowerPort, type RecoveryConfig } from "@pifleet/recovery";
import { openSwitch, switchResourceFromFleet, type SwitchHandle } from "@pifleet/switch";
import type { Coordinator } from "./coordinator.js";
import { ShelfReach } from "./shelf-reach.js";
import type { HaBackend } from "./ha/backend.js";
import { singleBackend } from "./ha/single.js";

const ms = z.int().min(0).max(86_400_000);

/** coordinator.yaml `recovery:` — every field optional, defaults in @pifleet/recovery. */
export const RecoverySectionSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    maxConcurrent: z.int().min(1).max(96).optional(),
    darkShare: z.number().gt(0).lt(1).optional(),
    confirmMs: ms.optional(),
    reconnectBackoffMs: ms.optional(),
    nfsRetryMs: ms.optional(),
    suspectActMs: ms.optional(),
    startupGraceMs: ms.optional(),
    bootTimeoutMs: ms.optional(),
    cyclesBeforeRebuild: z.int().min(0).max(20).optional(),
    quarantinePowerOff: z.boolean().optional(),
    backoffMs: ms.optional(),
    maxBackoffMs: ms.optional(),
    powerActionsPerWindow: z.int().min(1).max(1000).optional(),
    powerWindowMs: ms.optional(),
    stableMs: ms.optional(),
    waveSize: z.int().min(1).max(96).optional(),
    waveTimeoutMs: ms.optional(),
    waveRetries: z.int().min(0).max(10).optional(),
    waveRetryBackoffMs: ms.optional(),
  })
  .prefault({});

/** `switch:` — the fleet file's switch drives power; off means the coordinator never touches it. */
export const SwitchSectionSchema = z.strictObject({ enabled: z.boolean().default(true) }).prefault({});

/** `loadBalancer:` — `sync: false` when the servers are written in the load balancer's own config. */
export const LoadBalancerSectionSchema = z.strictObject({ enabled: z.boolean().default(true), sync: z.boolean().default(true) }).prefault({});

export type RecoverySection = z.infer<typeof RecoverySectionSchema>;

export interface Remediation {
  engine: RecoveryEngine;
  stop(): Promise<void>;
}

/**
 * Wires the recovery engine to the real parts: the switch's PoE driver over SNMP, the load
 * balancer's driver, the fileserver agent (rebuild over the protocol), the store's durable
 * power intents, and the coordinator's health judge, state and audit log.
 */
export async function startRemediation(opts: {
  coordinator: Coordinator;
  fleet: Fleet;
  plan: Plan;
  recovery: RecoverySection;
  switchEnabled: boolean;
  loadBalancer: { enabled: boolean; sync: boolean };
  logger: Logger;
  /** Who may act; every act is fenced by it before it is carried out (default: single, no fence). */
  ha?: HaBackend;
}): Promise<Remediation | undefined> {
  const { coordinator: c, fleet, logger } = opts;
  // One switch driver per shelf: VLAN ids and port numbers repeat across shelves, so a Pi's
  // port is only meaningful on its own shelf's switch.
  const switches = new Map<string, SwitchHandle>();
  const ha = opts.ha ?? singleBackend(c.store);
  let lb: LoadBalancerDriver | undefined;
  if (opts.switchEnabled) for (const s of fleet.shelves) switches.set(s.name, openSwitch(switchResourceFromFleet(fleet, process.env, s.name)));
  const closeSwitches = async () => {
    for (const sw of switches.values()) await sw.close();
  };
  const sw = switches.get(fleet.shelves[0].name);
  if (opts.loadBalancer.enabled) {
    lb = driverForFleet(fleet);
    if (opts.loadBalancer.sync) {
      try {
        await ha.fence("load balancer sync");
        const r = await lb.sync(opts.plan.loadBalancer.servers);
        c.audit({ kind: "lb", subject: fleet.loadBalancer.backend, message: `servers synced: ${r.added.length} added, ${r.updated.length} updated, ${r.removed.length} removed`, actor: "coordinator" });
      } catch (err) {
        c.audit({ kind: "lb", subject: fleet.loadBalancer.backend, message: `sync failed: ${(err as Error).message}`, actor: "coordinator" });
      }
    }
  }
  if (!opts.recovery.enabled || !sw) {
    if (opts.recovery.enabled) logger.warn("recovery is enabled but the switch is not: no Pi can be power-cycled, recovery is off");
    await lb?.close();
    await closeSwitches();
    return undefined;
  }

  // The fence comes first: a refused fence (deposed leader, etcd without quorum) means the switch
  // is not touched at all; the error reaches the engine like a switch that did not answer.
  const powerOf = (h: SwitchHandle, shelf: string): PowerPort => ({
    async set(port, on) {
      await ha.fence(`power ${on ? "on" : "off"} port ${port}${fleet.shelves.length > 1 ? ` of shelf ${shelf}` : ""}`);
      await h.power.powerSet(port, on);
    },
    get: (port) => h.power.powerGet(port),
  });
  const power = powerOf(sw, fleet.shelves[0].name);
  const powers = new Map([...switches].map(([name, h]) => [name, powerOf(h, name)]));
  // Each switch is asked on its own whether it answers; one that does not pauses its shelf only.
  const reach = new ShelfReach(
    fleet.shelves.map((s) => {
      const h = switches.get(s.name)!;
      const port = s.pis[0].port;
      return { shelf: s.name, label: `${h.resource.name} (${h.resource.address}:${h.resource.snmpPort})`, probe: () => h.power.powerGet(port) };
    }),
    { logger: logger.child({ part: "shelf-reach" }) },
  );
  reach.start();
  const balancer: LoadBalancerPort | undefined = lb && {
    async drain(pi) {
      await ha.fence(`drain ${pi}`);
      await lb!.drain(pi);
    },
    async ready(pi) {
      await ha.fence(`ready ${pi}`);
      await lb!.ready(pi);
    },
  };
  // A Pi (or the fileserver) connected to another coordinator is judged by that one's verdict.
  const local = () => new Set(c.connectedAgents());
  const fileserver: FileserverPort = {
    // The fleet state tracks one fileserver agent today; every shelf it serves shares its health.
    healthy: () => c.fileserverHealthy() || (!local().has(opts.plan.fileservers[0].name) && ha.peerVerdict("fileserver")?.health === "healthy"),
    async rebuild(pi) {
      const fsName = opts.plan.fileservers[0].name;
      // The port is verified off before this is sent, so the agent may replace the root.
      const r = await c.sendCommand(fsName, "rebuild", { pi, pi_powered: "no" }, { force: true, timeoutMs: 600_000 });
      if (!r.ok) throw new Error(`rebuild of ${pi}'s root failed: ${r.message}`);
    },
  };
  const { enabled: _enabled, ...overrides } = opts.recovery;
  const config: Partial<RecoveryConfig> = {
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
    dwellMs: fleet.shelves[0].switch.poe.dwellSeconds * 1000,
    // What the fleet's own agents do (FleetClient), unless the config says otherwise.
    reconnectBackoffMs: overrides.reconnectBackoffMs ?? MAX_RECONNECT_BACKOFF_MS,
  };
  const engine = new RecoveryEngine({
    pis: opts.plan.pis.map((p) => ({ name: p.name, port: p.port, shelf: p.shelf, netboot: p.boot === "netboot" })),
    power,
    powerFor: (shelf) => powers.get(shelf),
    reach,
    lb: balancer,
    fileserver,
    intents: ha.intents,
    credentials: {
      refused: (pi) => c.fleet.credentialsRefused(pi),
      clear: (pi, actor) => void c.fleet.clearCredentialsRefused(pi, `released by ${actor}`, actor),
    },
    health: (pi) => {
      if (ha.kind === "single" || local().has(pi)) return c.health(pi);
      return (ha.peerVerdict(pi)?.health as ReturnType<typeof c.health> | undefined) ?? c.health(pi);
    },
    setState: (pi, state, reason) => c.setRecoveryState(pi, state, reason),
    setHeld: (pi, held) => c.fleet.setHeld(pi, held),
    setAttempts: (pi, n) => c.fleet.setAttempts(pi, n),
    audit: (e) => {
      // The gateway already records every operator request with its outcome and the operator's role.
      if (e.kind === "operator") return;
      // With several coordinators, each event says whose step it was (their logs are merged by time).
      const fields = ha.kind === "single" ? e.fields : { ...e.fields, coordinator: ha.name };
      c.audit({ kind: e.kind, subject: e.subject, message: e.message, actor: e.actor ?? "recovery", fields });
    },
    logger: logger.child({ part: "recovery" }),
    config,
  });
  engine.on("status", (s) => c.fleet.setRecoveryStatus(s));
  const restored = [...c.fleet.pis.values()];
  await engine.start({
    held: restored.filter((e) => e.status.held).map((e) => e.ref.name),
    quarantined: restored.filter((e) => e.status.state === v1.PiState.PI_STATE_QUARANTINED).map((e) => e.ref.name),
    inFlight: restored.filter((e) => e.override !== null && e.override !== "quarantined" && !e.status.held).map((e) => e.ref.name),
  });
  c.setOperations({ operator: (action, pi, actor, reason, force) => engine.operator(action, pi, actor, reason, force) });
  logger.info({ ...DEFAULT_RECOVERY_CONFIG, ...config }, "recovery engine running");
  return {
    engine,
    async stop() {
      c.setOperations(undefined);
      reach.stop();
      await engine.stop();
      await lb?.close();
      await closeSwitches();
    },
  };
}

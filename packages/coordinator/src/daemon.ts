import { monitorEventLoopDelay } from "node:perf_hooks";
import { createLogger, createNotifier, loadFleet, plan, type Logger } from "@pifleet/core";
import { loadCoordinatorConfig } from "./config.js";
import { Coordinator } from "./coordinator.js";
import { desiredFromPlan } from "./desired.js";
import { SqliteStore } from "./store/sqlite.js";
import { startRemediation, type Remediation } from "./remediation.js";
import { openHaBackend } from "./ha/registry.js";

/**
 * Runs the coordinator as a service: READY=1 once listening, WATCHDOG=1 while the event loop
 * keeps up, a clean stop on SIGTERM/SIGINT (connections closed, states written, WAL checkpointed).
 * Resolves when stopped.
 */
export async function runCoordinatorDaemon(configFile: string, logger: Logger = createLogger("coordinator")): Promise<void> {
  const config = loadCoordinatorConfig(configFile);
  const fleet = loadFleet(config.fleet);
  const planned = plan(fleet);
  const desired = desiredFromPlan(planned);
  const store = new SqliteStore(config.database);
  const coordinator = new Coordinator({ desired, store, settings: config.settings, listen: config.listen, tls: config.tls, staticDir: config.staticDir, retention: config.retention, logger });
  const notifier = createNotifier();
  let addr;
  try {
    addr = await coordinator.start();
  } catch (err) {
    store.close();
    throw err;
  }
  const ha = openHaBackend({ ha: config.ha, store, fleet: desired.fleet, logger });
  // A single coordinator's feed is as it was: the HA fields stay empty.
  const showHa = () => {
    if (ha.kind === "single") return;
    coordinator.fleet.setHaStatus({ leader: ha.leader() ?? "", coordinator: ha.name, storeHealthy: ha.healthy(), backend: ha.kind });
    // Reports stay here; verdicts on the agents connected here are shared with the leader.
    const view: Record<string, string> = {};
    for (const name of coordinator.connectedAgents()) {
      if (name === planned.fileservers[0]?.name) view.fileserver = coordinator.fileserverHealthy() ? "healthy" : "down";
      else if (coordinator.fleet.pis.has(name)) view[name] = coordinator.health(name);
    }
    ha.shareView(view);
  };
  showHa();
  const haStatus = setInterval(showHa, 500);
  haStatus.unref();
  let remediation: Remediation | undefined;
  let stopping = false;
  // Only the leader drives switches, the load balancer and recovery; every coordinator serves
  // agents and watchers. The single backend leads at once, so this runs before READY as it did:
  // open power intents from a previous run are finished first (ports back on).
  const lead = async (): Promise<void> => {
    await ha.start();
    if (stopping) return;
    if (ha.kind !== "single") coordinator.audit({ kind: "recovery", subject: "fleet", message: `${ha.name} leads: it drives the switch, the load balancer and recovery`, actor: "coordinator", fields: { coordinator: ha.name } });
    try {
      remediation = await startRemediation({ coordinator, fleet, plan: planned, recovery: config.recovery, switchEnabled: config.switch.enabled, loadBalancer: config.loadBalancer, logger, ha });
    } catch (err) {
      logger.error({ err: (err as Error).message }, "recovery engine not started");
      coordinator.audit({ kind: "recovery", subject: "fleet", message: `recovery engine not started: ${(err as Error).message}`, actor: "coordinator" });
    }
  };
  ha.onLost((reason) => {
    coordinator.audit({ kind: "recovery", subject: "fleet", message: `${ha.name} stepped down (${reason}): recovery paused here, no power action until a leader is elected`, actor: "coordinator", fields: { coordinator: ha.name } });
    const r = remediation;
    remediation = undefined;
    void Promise.resolve(r?.stop())
      .catch((err: Error) => logger.error({ err: err.message }, "error while stepping down"))
      .then(() => (stopping ? undefined : lead()));
  });
  if (ha.kind === "single") await lead();
  else void lead();
  await notifier.ready(`serving ${desired.pis.length} Pis of ${desired.fleet} on port ${addr.port}`);

  // A loop stuck for seconds must not be reported alive: systemd's watchdog then restarts us.
  const lag = monitorEventLoopDelay({ resolution: 50 });
  lag.enable();
  let lastCheck = Date.now();
  const stopWatchdog = notifier.startWatchdog(() => {
    const ok = Date.now() - lastCheck < 30_000 && lag.max / 1e6 < 10_000;
    lastCheck = Date.now();
    lag.reset();
    return ok;
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "stopping");
      void notifier.stopping();
      stopWatchdog();
      lag.disable();
      clearInterval(haStatus);
      Promise.resolve(remediation?.stop())
        .then(() => ha.stop())
        .then(() => coordinator.stop())
        .catch((err: Error) => logger.error({ err: err.message }, "error while stopping"))
        .finally(() => {
          store.close();
          notifier.close();
          process.off("SIGTERM", onTerm);
          process.off("SIGINT", onInt);
          resolve();
        });
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
}

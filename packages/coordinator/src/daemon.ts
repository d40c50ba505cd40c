import { monitorEventLoopDelay } from "node:perf_hooks";
import { createLogger, createNotifier, type Logger } from "@pifleet/core";
import { loadCoordinatorConfig } from "./config.js";
import { Coordinator } from "./coordinator.js";
import { changed, describeChanges, fleetChanges, loadPlannedFleet, type LoadedFleet } from "./reload.js";
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
  let current: LoadedFleet = loadPlannedFleet(config.fleet);
  const { plan: planned, desired } = current;
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
  /** This coordinator leads (the single backend always does): it drives switches, the LB and recovery. */
  let leading = false;
  // Only the leader drives switches, the load balancer and recovery; every coordinator serves
  // agents and watchers. The single backend leads at once, so this runs before READY as it did:
  // open power intents from a previous run are finished first (ports back on).
  const lead = async (): Promise<void> => {
    await ha.start();
    if (stopping) return;
    leading = true;
    if (ha.kind !== "single") coordinator.audit({ kind: "recovery", subject: "fleet", message: `${ha.name} leads: it drives the switch, the load balancer and recovery`, actor: "coordinator", fields: { coordinator: ha.name } });
    try {
      // The plan as of now: a reload may have changed it since the start.
      remediation = await startRemediation({ coordinator, fleet: current.fleet, plan: current.plan, recovery: config.recovery, switchEnabled: config.switch.enabled, loadBalancer: config.loadBalancer, logger, ha });
    } catch (err) {
      logger.error({ err: (err as Error).message }, "recovery engine not started");
      coordinator.audit({ kind: "recovery", subject: "fleet", message: `recovery engine not started: ${(err as Error).message}`, actor: "coordinator" });
    }
  };
  ha.onLost((reason) => {
    coordinator.audit({ kind: "recovery", subject: "fleet", message: `${ha.name} stepped down (${reason}): recovery paused here, no power action until a leader is elected`, actor: "coordinator", fields: { coordinator: ha.name } });
    const r = remediation;
    remediation = undefined;
    leading = false;
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

  // SIGHUP (systemctl reload, pifleet coordinator reload): the fleet file again, applied in place.
  let reloading: Promise<void> = Promise.resolve();
  const reload = async () => {
    const file = config.fleet;
    let next: LoadedFleet;
    try {
      next = loadPlannedFleet(file);
    } catch (err) {
      // The running fleet is kept; the error names the field (the loader's FleetError).
      const message = (err as Error).message;
      logger.error({ file, err: message }, "fleet file refused: the running fleet is kept");
      coordinator.audit({ kind: "reload", subject: desired.fleet, message: `fleet file refused, the running fleet is kept: ${message}`, actor: "coordinator", fields: { ok: "false", file } });
      return;
    }
    const c = fleetChanges(current, next);
    if (!changed(c)) {
      logger.info({ file }, "fleet file reloaded: nothing changed");
      coordinator.audit({ kind: "reload", subject: desired.fleet, message: "fleet file reloaded: nothing changed", actor: "coordinator", fields: { ok: "true", file } });
      return;
    }
    await notifier.notify({ RELOADING: 1, MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) });
    try {
      coordinator.replan(next.desired);
    } catch (err) {
      const message = (err as Error).message;
      logger.error({ file, err: message }, "fleet file refused: the running fleet is kept");
      coordinator.audit({ kind: "reload", subject: desired.fleet, message: `fleet file refused, the running fleet is kept: ${message}`, actor: "coordinator", fields: { ok: "false", file } });
      await notifier.ready();
      return;
    }
    current = next;
    const summary = describeChanges(c);
    logger.info({ file, added: c.added, removed: c.removed, changed: c.changed, switch: c.switch, loadBalancer: c.loadBalancer }, `fleet file reloaded: ${summary}`);
    coordinator.audit({
      kind: "reload",
      subject: desired.fleet,
      message: `fleet file reloaded: ${summary}`,
      actor: "coordinator",
      fields: { ok: "true", file, added: c.added.join(","), removed: c.removed.join(","), changed: c.changed.join(","), switch: String(c.switch), loadBalancer: String(c.loadBalancer) },
    });
    // The recovery engine and the switch/LB drivers are built from the plan: started again on the
    // new one (open power intents are finished first, as at start-up; the LB is synced to the new servers).
    // A follower drives nothing: it takes up the new plan when it is elected.
    if (leading) try {
      await remediation?.stop();
      remediation = await startRemediation({ coordinator, fleet: next.fleet, plan: next.plan, recovery: config.recovery, switchEnabled: config.switch.enabled, loadBalancer: config.loadBalancer, logger, ha });
    } catch (err) {
      remediation = undefined;
      logger.error({ err: (err as Error).message }, "recovery engine not restarted after reload");
      coordinator.audit({ kind: "recovery", subject: "fleet", message: `recovery engine not restarted after reload: ${(err as Error).message}`, actor: "coordinator" });
    }
    await notifier.ready(`serving ${next.desired.pis.length} Pis of ${next.desired.fleet} on port ${addr.port}`);
  };
  const onHup = () => {
    reloading = reloading.then(reload).catch((err: Error) => logger.error({ err: err.message }, "reload failed"));
  };
  process.on("SIGHUP", onHup);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "stopping");
      void notifier.stopping();
      stopWatchdog();
      lag.disable();
      process.off("SIGHUP", onHup);
      clearInterval(haStatus);
      reloading
        .then(() => remediation?.stop())
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

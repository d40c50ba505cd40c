import { v1 } from "@pifleet/proto";
import type { FileserverView } from "@pifleet/core";
import type { Observed } from "./observe/observe.js";
import type { DriftEntry } from "./reconcile/drift.js";

export interface Health {
  healthy: boolean;
  /** Why not, for the report's error field. */
  reasons: string[];
}

/**
 * "Could a Pi boot from this fileserver at all?": observation worked, the NFS server runs and
 * the trunk is up. One Pi's missing root or VLAN is drift about that Pi, not fileserver ill
 * health: the coordinator must still be free to power-cycle the others.
 */
export function assessHealth(plan: FileserverView, obs: Observed): Health {
  const reasons = [...obs.errors];
  if (obs.exportRootProblem) reasons.push(obs.exportRootProblem);
  if (obs.live.nfs === "off") reasons.push("NFS server not observed (live=off)");
  else if (!obs.nfsRunning) reasons.push("NFS server not running");
  if (obs.links) {
    for (const name of plan.fileserver.trunkInterfaces) {
      const trunk = obs.links.find((l) => l.name === name);
      if (!trunk) reasons.push(`trunk ${name} missing`);
      else if (!trunk.up) reasons.push(`trunk ${name} down`);
    }
  }
  return { healthy: reasons.length === 0, reasons };
}

export function buildReport(plan: FileserverView, identity: string, obs: Observed, drift: DriftEntry[], now = Date.now()): v1.FileserverReport {
  const health = assessHealth(plan, obs);
  return v1.FileserverReport.create({
    fileserver: identity,
    timeMs: now,
    healthy: health.healthy,
    nfsServerRunning: obs.nfsRunning === true,
    drift: drift.map((d) => v1.Drift.create(d)),
    roots: obs.roots.map((r) =>
      v1.RootStatus.create({ pi: r.pi.name, present: r.state === "present", contentVersion: r.content.version, hasPrevious: r.hasPrevious }),
    ),
    error: health.reasons.join("; "),
  });
}

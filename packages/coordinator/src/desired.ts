import type { Plan } from "@pifleet/core";
import type { PiRef } from "./fleet-state.js";

/** What the coordinator must know of the desired state: which Pis exist (name, switch port) and which fileserver. */
export interface DesiredState {
  fleet: string;
  fileserver?: string;
  pis: PiRef[];
}

export function desiredFromPlan(plan: Plan): DesiredState {
  if (plan.fileservers.length > 1) {
    throw new Error(`fleet ${plan.fleet} has ${plan.fileservers.length} fileservers; this coordinator watches one (${plan.fileservers.map((f) => f.name).join(", ")})`);
  }
  return { fleet: plan.fleet, fileserver: plan.fileservers[0]?.name, pis: plan.pis.map((p) => ({ name: p.name, port: p.port, shelf: p.shelf })) };
}

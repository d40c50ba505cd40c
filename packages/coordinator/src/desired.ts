import type { Plan } from "@pifleet/core";
import type { PiRef } from "./fleet-state.js";

/** What the coordinator must know of the desired state: which Pis exist (name, switch port) and which fileserver. */
export interface DesiredState {
  fleet: string;
  fileserver?: string;
  pis: PiRef[];
}

export function desiredFromPlan(plan: Plan): DesiredState {
  return { fleet: plan.fleet, fileserver: plan.fileserver.name, pis: plan.pis.map((p) => ({ name: p.name, port: p.port })) };
}

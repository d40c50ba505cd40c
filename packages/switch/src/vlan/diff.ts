import type { SwitchPlan } from "@pifleet/core";
import { samePorts } from "../snmp/portlist.js";
import type { SwitchVlanTable, VlanEntry } from "./driver.js";

/** Q-BRIDGE dot1qVlanStaticName is an SnmpAdminString of at most 32 octets. */
export const VLAN_NAME_MAX = 32;

export interface PlannedVlan {
  vlan: number;
  name: string;
  egress: number[];
  untagged: number[];
}

export type SwitchDrift =
  | { kind: "missing-vlan"; vlan: number; want: PlannedVlan }
  | { kind: "inactive-vlan"; vlan: number; status: string }
  | { kind: "vlan-name"; vlan: number; want: string; have: string }
  | { kind: "vlan-ports"; vlan: number; want: { egress: number[]; untagged: number[] }; have: { egress: number[]; untagged: number[] } }
  | { kind: "pvid"; port: number; want: number; have: number | null };

/** A VLAN on the switch the plan does not know: never touched, always reported. */
export interface ForeignVlan extends VlanEntry {
  /** Ports of the plan (Pi ports, trunk, uplinks) that are members of it. */
  plannedPorts: number[];
}

export interface SwitchDiff {
  /** What apply would change; empty when the switch matches the plan. */
  drift: SwitchDrift[];
  foreign: ForeignVlan[];
}

export class SwitchPlanError extends Error {
  override name = "SwitchPlanError";
}

/** The plan's VLAN table in switch terms: egress = untagged ∪ tagged, names cut to what a switch stores. */
export function plannedVlans(plan: SwitchPlan): PlannedVlan[] {
  return plan.vlans.map((v) => ({
    vlan: v.vlan,
    name: Buffer.from(v.name).subarray(0, VLAN_NAME_MAX).toString("utf8"),
    egress: [...new Set([...v.untagged, ...v.tagged])].sort((a, b) => a - b),
    untagged: [...v.untagged].sort((a, b) => a - b),
  }));
}

/** Every port the plan uses. */
export function plannedPorts(plan: SwitchPlan): number[] {
  const ports = new Set<number>([plan.trunkPort]);
  for (const v of plan.vlans) for (const p of [...v.untagged, ...v.tagged]) ports.add(p);
  for (const p of plan.pvids) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}

/**
 * Compares the plan with what the switch reports. Pure. Throws SwitchPlanError when the plan
 * uses ports the switch does not have (no write could fix that).
 */
export function diffSwitch(plan: SwitchPlan, table: SwitchVlanTable): SwitchDiff {
  const used = plannedPorts(plan);
  if (table.bridgePorts.size > 0) {
    const absent = used.filter((p) => !table.bridgePorts.has(p));
    if (absent.length > 0) {
      throw new SwitchPlanError(`the plan uses port${absent.length > 1 ? "s" : ""} ${absent.join(", ")}, which switch ${plan.name} does not have (it has ${table.bridgePorts.size} bridge ports)`);
    }
  }
  const have = new Map(table.vlans.map((v) => [v.vlan, v]));
  const planned = plannedVlans(plan);
  const plannedIds = new Set(planned.map((v) => v.vlan));
  const drift: SwitchDrift[] = [];
  for (const want of planned) {
    const cur = have.get(want.vlan);
    if (!cur) {
      drift.push({ kind: "missing-vlan", vlan: want.vlan, want });
      continue;
    }
    if (cur.status !== "active") drift.push({ kind: "inactive-vlan", vlan: want.vlan, status: cur.status });
    if (cur.name !== want.name) drift.push({ kind: "vlan-name", vlan: want.vlan, want: want.name, have: cur.name });
    if (!samePorts(cur.egress, want.egress) || !samePorts(cur.untagged, want.untagged)) {
      drift.push({ kind: "vlan-ports", vlan: want.vlan, want: { egress: want.egress, untagged: want.untagged }, have: { egress: cur.egress, untagged: cur.untagged } });
    }
  }
  for (const p of plan.pvids) {
    const cur = table.pvids.get(p.port) ?? null;
    if (cur !== p.vlan) drift.push({ kind: "pvid", port: p.port, want: p.vlan, have: cur });
  }
  const usedSet = new Set(used);
  const foreign = table.vlans
    .filter((v) => !plannedIds.has(v.vlan))
    .map((v) => ({ ...v, plannedPorts: v.egress.filter((p) => usedSet.has(p)) }));
  return { drift, foreign };
}

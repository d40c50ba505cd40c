import { isDeepStrictEqual } from "node:util";
import { loadFleet, plan, type Fleet, type Plan } from "@pifleet/core";
import { desiredFromPlan, type DesiredState } from "./desired.js";

/** What a fleet-file reload changes, worked out before anything is applied. */
export interface FleetChanges {
  added: string[];
  removed: string[];
  /** Pis whose plan (port, shelf, addresses, VLANs) differs. */
  changed: string[];
  /** Switch settings (address, SNMP, PoE driver, trunk, uplinks) of any shelf differ. */
  switch: boolean;
  loadBalancer: boolean;
}

export interface LoadedFleet {
  file: string;
  fleet: Fleet;
  plan: Plan;
  desired: DesiredState;
}

/** Reads and plans a fleet file with the same loader and errors as start-up (a FleetError names the field). */
export function loadPlannedFleet(file: string): LoadedFleet {
  const fleet = loadFleet(file);
  const planned = plan(fleet);
  return { file, fleet, plan: planned, desired: desiredFromPlan(planned) };
}

export function fleetChanges(from: LoadedFleet, to: LoadedFleet): FleetChanges {
  const before = new Map(from.plan.pis.map((p) => [p.name, p]));
  const after = new Map(to.plan.pis.map((p) => [p.name, p]));
  return {
    added: [...after.keys()].filter((n) => !before.has(n)),
    removed: [...before.keys()].filter((n) => !after.has(n)),
    changed: [...after.keys()].filter((n) => before.has(n) && !isDeepStrictEqual(before.get(n), after.get(n))),
    switch: !isDeepStrictEqual(
      from.fleet.shelves.map((s) => s.switch),
      to.fleet.shelves.map((s) => s.switch),
    ),
    // The section itself; its server list follows the Pis (added/removed above) and is synced anyway.
    loadBalancer: !isDeepStrictEqual(from.fleet.loadBalancer, to.fleet.loadBalancer),
  };
}

export function changed(c: FleetChanges): boolean {
  return c.added.length > 0 || c.removed.length > 0 || c.changed.length > 0 || c.switch || c.loadBalancer;
}

/** One line for the log, the event and the CLI: "2 Pis added (pi04, pi05), 1 removed (pi01), switch settings changed". */
export function describeChanges(c: FleetChanges): string {
  const list = (names: string[]) => (names.length > 10 ? `${names.slice(0, 10).join(", ")} and ${names.length - 10} more` : names.join(", "));
  const parts: string[] = [];
  if (c.added.length) parts.push(`${c.added.length} Pi${c.added.length === 1 ? "" : "s"} added (${list(c.added)})`);
  if (c.removed.length) parts.push(`${c.removed.length} removed (${list(c.removed)})`);
  if (c.changed.length) parts.push(`${c.changed.length} changed (${list(c.changed)})`);
  if (c.switch) parts.push("switch settings changed");
  if (c.loadBalancer) parts.push("load-balancer settings changed");
  return parts.length ? parts.join(", ") : "nothing changed";
}

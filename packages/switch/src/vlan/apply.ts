import type { Logger } from "@pifleet/core";
import type { SwitchPlan } from "@pifleet/core";
import type { VlanDriver, VlanSetting } from "./driver.js";
import { diffSwitch, plannedVlans, type SwitchDiff } from "./diff.js";

export type SwitchAction =
  | { kind: "create-vlan"; vlan: number }
  | { kind: "activate-vlan"; vlan: number }
  | ({ kind: "configure-vlan" } & VlanSetting)
  | { kind: "set-pvid"; port: number; vlan: number };

/** The writes that turn the diff into nothing, in the order a switch accepts them. */
export function actionsFor(plan: SwitchPlan, diff: SwitchDiff): SwitchAction[] {
  const byId = new Map(plannedVlans(plan).map((v) => [v.vlan, v]));
  const creates: SwitchAction[] = [];
  const activates: SwitchAction[] = [];
  const configure = new Map<number, SwitchAction>();
  const pvids: SwitchAction[] = [];
  for (const d of diff.drift) {
    switch (d.kind) {
      case "missing-vlan":
        creates.push({ kind: "create-vlan", vlan: d.vlan });
        configure.set(d.vlan, { kind: "configure-vlan", ...d.want });
        break;
      case "inactive-vlan":
        activates.push({ kind: "activate-vlan", vlan: d.vlan });
        break;
      case "vlan-name":
      case "vlan-ports":
        configure.set(d.vlan, { kind: "configure-vlan", ...byId.get(d.vlan)! });
        break;
      case "pvid":
        pvids.push({ kind: "set-pvid", port: d.port, vlan: d.want });
        break;
    }
  }
  // VLANs must exist (and carry the port) before a port's PVID may point at them.
  return [...creates, ...activates, ...configure.values(), ...pvids];
}

export interface ApplyResult {
  before: SwitchDiff;
  actions: SwitchAction[];
  /** The switch re-read after applying (undefined on a dry run or when nothing was to do). */
  after?: SwitchDiff;
}

/**
 * Makes the switch's VLAN table match the plan: creates missing VLANs, corrects names and port
 * membership, sets PVIDs. Foreign VLANs are left alone. Idempotent: with no drift, nothing is
 * written. Every write is verified by read-back, and the whole table is re-read at the end.
 */
export async function applySwitchPlan(driver: VlanDriver, plan: SwitchPlan, options: { dryRun?: boolean; logger?: Logger } = {}): Promise<ApplyResult> {
  const table = await driver.read();
  const before = diffSwitch(plan, table);
  const actions = actionsFor(plan, before);
  if (options.dryRun || actions.length === 0) return { before, actions };
  const log = options.logger;
  const creates = actions.flatMap((a) => (a.kind === "create-vlan" ? [a.vlan] : []));
  const activates = actions.flatMap((a) => (a.kind === "activate-vlan" ? [a.vlan] : []));
  const settings = actions.flatMap((a) => (a.kind === "configure-vlan" ? [{ vlan: a.vlan, name: a.name, egress: a.egress, untagged: a.untagged }] : []));
  const pvids = actions.flatMap((a) => (a.kind === "set-pvid" ? [{ port: a.port, vlan: a.vlan }] : []));
  if (creates.length) {
    log?.info({ vlans: creates }, "creating VLANs");
    await driver.create(creates);
  }
  if (activates.length) {
    log?.info({ vlans: activates }, "activating VLANs");
    await driver.activate(activates);
  }
  if (settings.length) {
    log?.info({ vlans: settings.map((s) => s.vlan) }, "setting VLAN names and ports");
    await driver.configure(settings, table.portListOctets);
  }
  if (pvids.length) {
    log?.info({ ports: pvids.map((p) => p.port) }, "setting PVIDs");
    await driver.setPvids(pvids);
  }
  const after = diffSwitch(plan, await driver.read());
  if (after.drift.length > 0) {
    throw new Error(`switch ${plan.name} still differs from the plan after apply: ${after.drift.length} item(s), first: ${JSON.stringify(after.drift[0])}`);
  }
  return { before, actions, after };
}

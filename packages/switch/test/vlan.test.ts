import { afterEach, describe, expect, it } from "vitest";
import { plan, type Plan } from "@pifleet/core";
import {
  applySwitchPlan,
  diffSwitch,
  OID,
  openSwitch,
  plannedVlans,
  startSwitchEmulator,
  switchResourceFromFleet,
  SwitchPlanError,
  type SwitchEmulator,
  type SwitchHandle,
  type SwitchVlanTable,
} from "@pifleet/switch";
import { exampleFleet, quiet, snmpTool, v2cArgs } from "./helpers.js";

const RW = "rw-Secret-7";
const env = { PIFLEET_SNMP_COMMUNITY: RW };
let emu: SwitchEmulator | undefined;
let sw: SwitchHandle | undefined;

afterEach(async () => {
  await sw?.close();
  await emu?.stop();
  sw = undefined;
  emu = undefined;
});

async function setup(example: "seed-8.yaml" | "shelf-96.yaml", ports: number): Promise<{ derived: Plan; sw: SwitchHandle; emu: SwitchEmulator }> {
  emu = await startSwitchEmulator({ ports, rwCommunity: RW, community: "public", logger: quiet });
  const fleet = exampleFleet(example, emu.port);
  sw = openSwitch(switchResourceFromFleet(fleet, env), { timeoutMs: 1000, logger: quiet });
  return { derived: plan(fleet), sw, emu };
}

/** The switch's table holds every planned VLAN exactly (name, egress, untagged, active) and every planned PVID. */
function expectExactly(derived: Plan, table: SwitchVlanTable): void {
  for (const want of plannedVlans(derived.shelves[0].switch)) {
    const have = table.vlans.find((v) => v.vlan === want.vlan);
    expect(have, `vlan ${want.vlan}`).toEqual({ vlan: want.vlan, name: want.name, egress: want.egress, untagged: want.untagged, status: "active" });
  }
  for (const p of derived.shelves[0].switch.pvids) expect(table.pvids.get(p.port), `pvid of port ${p.port}`).toBe(p.vlan);
}

describe("the plan's VLAN table applied over Q-BRIDGE-MIB", () => {
  it("seed-8: applies, reads back exactly as planned (as snmpget sees it too), and a second apply sets nothing", async () => {
    const { derived, sw, emu } = await setup("seed-8.yaml", 24);
    const first = await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet });
    expect(first.before.drift.filter((d) => d.kind === "missing-vlan")).toHaveLength(9);
    expect(first.actions.filter((a) => a.kind === "set-pvid")).toHaveLength(8);
    expect(first.after?.drift).toEqual([]);

    const table = await sw.vlans.read();
    expectExactly(derived, table);
    expect(diffSwitch(derived.shelves[0].switch, table).drift).toEqual([]);
    // The factory VLAN 1 is not ours: left as it was, and reported.
    expect(diffSwitch(derived.shelves[0].switch, table).foreign.map((f) => f.vlan)).toEqual([1]);
    expect(emu.state.vlans().find((v) => v.vlan === 1)?.egress).toHaveLength(24);

    // Bit order as an independent SNMP implementation reads it: VLAN 10 = port 1 untagged + trunk 24.
    const tool = await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.dot1qVlanStaticEgressPorts}.10`, `${OID.dot1qVlanStaticUntaggedPorts}.10`, `${OID.dot1qVlanStaticName}.10`, `${OID.dot1qPvid}.1`]);
    expect(tool.out).toContain(`.${OID.dot1qVlanStaticEgressPorts}.10 = Hex-STRING: 80 00 01`);
    expect(tool.out).toContain(`.${OID.dot1qVlanStaticUntaggedPorts}.10 = Hex-STRING: 80 00 00`);
    expect(tool.out).toContain(`.${OID.dot1qVlanStaticName}.10 = STRING: "pifleet-pi01"`);
    expect(tool.out).toContain(`.${OID.dot1qPvid}.1 = Gauge32: 10`);

    const sets = sw.snmp.stats.setPdus;
    const again = await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet });
    expect(again.actions).toEqual([]);
    expect(sw.snmp.stats.setPdus).toBe(sets);
  });

  it("shelf-96: the 96-Pi table on a 104-port switch, exactly as planned, idempotent", async () => {
    const { derived, sw } = await setup("shelf-96.yaml", 104);
    const result = await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet });
    expect(result.actions.filter((a) => a.kind === "create-vlan")).toHaveLength(97);
    const table = await sw.vlans.read();
    expectExactly(derived, table);
    expect(table.portListOctets).toBe(13);
    const pub = table.vlans.find((v) => v.vlan === 131)!;
    expect(pub.untagged).toEqual([]);
    expect(pub.egress).toEqual([...Array.from({ length: 96 }, (_, i) => i + 1), 98]);
    expect(diffSwitch(derived.shelves[0].switch, table).drift).toEqual([]);
    const sets = sw.snmp.stats.setPdus;
    expect((await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet })).actions).toEqual([]);
    expect(sw.snmp.stats.setPdus).toBe(sets);
  });

  it("drift made behind the driver's back with snmpset is reported by diff and undone by apply; a foreign VLAN is left alone", async () => {
    const { derived, sw, emu } = await setup("seed-8.yaml", 24);
    await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet });
    const set = (...args: string[]) => snmpTool("snmpset", [...v2cArgs(RW, emu.port), ...args]);

    // VLAN 12 loses the trunk, VLAN 11 is renamed, port 5's PVID moves, VLAN 17 is deleted, and
    // someone adds VLAN 999 with port 3 tagged in it.
    expect((await set(`${OID.dot1qVlanStaticEgressPorts}.12`, "x", "200000", `${OID.dot1qVlanStaticUntaggedPorts}.12`, "x", "200000")).ok).toBe(true);
    expect((await set(`${OID.dot1qVlanStaticName}.11`, "s", "someone-else")).ok).toBe(true);
    expect((await set(`${OID.dot1qPvid}.5`, "u", "1")).ok).toBe(true);
    expect((await set(`${OID.dot1qVlanStaticRowStatus}.17`, "i", "6")).ok).toBe(true);
    expect((await set(`${OID.dot1qVlanStaticRowStatus}.999`, "i", "4")).ok).toBe(true);
    expect((await set(`${OID.dot1qVlanStaticName}.999`, "s", "lab", `${OID.dot1qVlanStaticEgressPorts}.999`, "x", "200000")).ok).toBe(true);

    const diff = diffSwitch(derived.shelves[0].switch, await sw.vlans.read());
    const drift = diff.drift.map((d) => `${d.kind}:${"vlan" in d ? d.vlan : `port ${d.port}`}`);
    // Deleting VLAN 17 also sends port 8 back to PVID 1, as switches do.
    expect(drift.sort()).toEqual(["missing-vlan:17", "pvid:port 5", "pvid:port 8", "vlan-name:11", "vlan-ports:12"]);
    expect(diff.foreign.map((f) => [f.vlan, f.name, f.plannedPorts])).toEqual([
      [1, "default", [1, 2, 3, 4, 5, 6, 7, 8, 23, 24]],
      [999, "lab", [3]],
    ]);

    const fix = await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { logger: quiet });
    expect(fix.actions.map((a) => a.kind).sort()).toEqual(["configure-vlan", "configure-vlan", "configure-vlan", "create-vlan", "set-pvid", "set-pvid"]);
    const table = await sw.vlans.read();
    expectExactly(derived, table);
    expect(diffSwitch(derived.shelves[0].switch, table).drift).toEqual([]);
    expect(table.vlans.find((v) => v.vlan === 999)).toEqual({ vlan: 999, name: "lab", egress: [3], untagged: [], status: "active" });
  });

  it("--dry-run lists the writes and writes nothing", async () => {
    const { derived, sw, emu } = await setup("seed-8.yaml", 24);
    const before = JSON.stringify(emu.state.snapshot());
    const result = await applySwitchPlan(sw.vlans, derived.shelves[0].switch, { dryRun: true });
    expect(result.actions.length).toBe(9 + 9 + 8);
    expect(result.after).toBeUndefined();
    expect(sw.snmp.stats.setPdus).toBe(0);
    expect(JSON.stringify(emu.state.snapshot())).toBe(before);
  });

  it("refuses a plan whose ports the switch lacks, before writing anything", async () => {
    const { derived, sw } = await setup("shelf-96.yaml", 48);
    await expect(applySwitchPlan(sw.vlans, derived.shelves[0].switch)).rejects.toThrow(SwitchPlanError);
    await expect(applySwitchPlan(sw.vlans, derived.shelves[0].switch)).rejects.toThrow(/ports 49, 50, .* 98, which switch shelf-switch does not have \(it has 48 bridge ports\)/);
    expect(sw.snmp.stats.setPdus).toBe(0);
  });
});

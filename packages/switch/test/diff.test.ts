import { describe, expect, it } from "vitest";
import { plan } from "@pifleet/core";
import { actionsFor, diffSwitch, plannedVlans, SwitchPlanError, VLAN_NAME_MAX, type SwitchVlanTable } from "@pifleet/switch";
import { exampleFleet } from "./helpers.js";

const seed = plan(exampleFleet("seed-8.yaml", 16161));
const bridge = (n: number): Map<number, number> => new Map(Array.from({ length: n }, (_, i) => [i + 1, 1000 + i + 1]));

/** The switch exactly as the plan wants it, plus the factory default VLAN. */
function matching(): SwitchVlanTable {
  return {
    vlans: [
      { vlan: 1, name: "default", egress: Array.from({ length: 24 }, (_, i) => i + 1), untagged: Array.from({ length: 24 }, (_, i) => i + 1), status: "active" },
      ...plannedVlans(seed.shelves[0].switch).map((v) => ({ ...v, status: "active" })),
    ],
    pvids: new Map(seed.shelves[0].switch.pvids.map((p) => [p.port, p.vlan])),
    bridgePorts: bridge(24),
    portListOctets: 3,
  };
}

describe("switch diff (plan vs what the switch reports)", () => {
  it("finds nothing to do when the switch matches, and reports foreign VLANs with the planned ports they carry", () => {
    const diff = diffSwitch(seed.shelves[0].switch, matching());
    expect(diff.drift).toEqual([]);
    expect(diff.foreign).toHaveLength(1);
    expect(diff.foreign[0].vlan).toBe(1);
    expect(diff.foreign[0].plannedPorts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 23, 24]);
  });

  it("names each kind of drift", () => {
    const t = matching();
    t.vlans = t.vlans.filter((v) => v.vlan !== 17); // missing
    t.vlans.find((v) => v.vlan === 11)!.name = "old-name";
    const v12 = t.vlans.find((v) => v.vlan === 12)!;
    v12.egress = [3]; // trunk dropped
    t.vlans.find((v) => v.vlan === 13)!.status = "notInService";
    t.pvids.set(5, 1);
    t.pvids.delete(6);
    const diff = diffSwitch(seed.shelves[0].switch, t);
    expect(diff.drift).toEqual([
      { kind: "vlan-name", vlan: 11, want: "pifleet-pi02", have: "old-name" },
      { kind: "vlan-ports", vlan: 12, want: { egress: [3, 24], untagged: [3] }, have: { egress: [3], untagged: [3] } },
      { kind: "inactive-vlan", vlan: 13, status: "notInService" },
      { kind: "missing-vlan", vlan: 17, want: { vlan: 17, name: "pifleet-pi08", egress: [8, 24], untagged: [8] } },
      { kind: "pvid", port: 5, want: 14, have: 1 },
      { kind: "pvid", port: 6, want: 15, have: null },
    ]);
  });

  it("orders the writes so each is legal when it lands: create, activate, configure, then PVIDs", () => {
    const t = matching();
    t.vlans = t.vlans.filter((v) => v.vlan !== 17);
    t.vlans.find((v) => v.vlan === 13)!.status = "notInService";
    t.pvids.set(8, 1);
    const kinds = actionsFor(seed.shelves[0].switch, diffSwitch(seed.shelves[0].switch, t)).map((a) => a.kind);
    expect(kinds).toEqual(["create-vlan", "activate-vlan", "configure-vlan", "set-pvid"]);
  });

  it("refuses a plan that uses ports the switch does not have", () => {
    const t = matching();
    t.bridgePorts = bridge(16);
    expect(() => diffSwitch(seed.shelves[0].switch, t)).toThrow(SwitchPlanError);
    expect(() => diffSwitch(seed.shelves[0].switch, t)).toThrow(/ports 23, 24, which switch shelf-switch does not have \(it has 16 bridge ports\)/);
  });

  it("cuts VLAN names to what a switch stores (32 octets), so a long Pi name does not drift forever", () => {
    const long = plan(exampleFleet("seed-8.yaml", 16161, (y) => y.replace("{ name: pi01, port: 1 }", `{ name: ${"a".repeat(40)}, port: 1 }`)));
    const v10 = plannedVlans(long.shelves[0].switch).find((v) => v.vlan === 10)!;
    expect(v10.name).toBe(`pifleet-${"a".repeat(VLAN_NAME_MAX - 8)}`);
    expect(Buffer.byteLength(v10.name)).toBe(VLAN_NAME_MAX);
  });
});

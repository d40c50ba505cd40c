import { describe, expect, it } from "vitest";
import { checkFleet, plan } from "@pifleet/core";
import { demoFleet, demoShelvesFleet } from "../src/demo/fleet.js";

const common = { pis: 4, communityFile: "/nonexistent/community", goldenImage: "/srv/pifleet/golden", exportRoot: "/export", lbSocket: "/run/x.sock" };

describe("pifleet demo --shelves", () => {
  it("plans N shelves, each on its own switch, with the same ports and VLAN ids and addresses unique fleet-wide", () => {
    const p = plan(checkFleet(demoShelvesFleet({ ...common, snmpPorts: [16101, 16102, 16103] }), "demo.yaml"));
    expect(p.shelves.map((s) => s.name)).toEqual(["shelf1", "shelf2", "shelf3"]);
    expect(p.pis).toHaveLength(12);
    const vlans = (shelf: string) => p.pis.filter((x) => x.shelf === shelf).map((x) => [x.port, x.vlan]);
    expect(vlans("shelf2")).toEqual(vlans("shelf1"));
    expect(vlans("shelf3")).toEqual(vlans("shelf1"));
    expect(new Set(p.pis.map((x) => x.ipv6)).size).toBe(12);
    expect(new Set(p.pis.map((x) => x.name)).size).toBe(12);
  });

  it("one shelf stays the seed's form", () => {
    const f = demoFleet({ ...common, snmpPort: 16101 });
    expect(f.switch).toBeDefined();
    expect(f.shelves).toBeUndefined();
  });
});

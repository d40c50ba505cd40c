import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkFleet, FleetError, loadFleet, parseIPv4, plan, canonicalIPv6, type FleetInput } from "@pifleet/core";

function fleetWith(ports: number[], range: string, firstVlan = 10, trunkPort = 4000): FleetInput {
  return {
    name: "t",
    switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "C" } }, trunkPort },
    fileserver: { goldenImage: "/srv/golden" },
    private: { range, firstVlan },
    public: { vlan: 4094, prefix: "2001:db8:0:1::/64", gateway: "2001:db8:0:1::1" },
    pis: ports.map((port, i) => ({ name: `pi${i}`, port })),
  };
}

describe("the 96-Pi shelf", () => {
  it("does not fit a /24 and says how much room it needs", () => {
    const shelf = loadFleet(new URL("../../../examples/shelf-96.yaml", import.meta.url).pathname);
    let error: unknown;
    try {
      plan({ ...shelf, shelves: [{ ...shelf.shelves[0], private: { ...shelf.shelves[0].private, range: "10.46.189.0/24" } }] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FleetError);
    const issues = (error as FleetError).issues;
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe("private.range");
    expect(issues[0].message).toContain("holds 64 Pis");
    expect(issues[0].message).toContain("use a /23");
  });

  it("plans all 96 in a /23", () => {
    const p = plan(loadFleet(new URL("../../../examples/shelf-96.yaml", import.meta.url).pathname));
    expect(p.pis).toHaveLength(96);
    expect(p.pis[95]).toMatchObject({ vlan: 105, piAddress: "10.46.189.126", fileserverAddress: "10.46.189.125" });
  });
});

describe("plan over random fleets", () => {
  it("never overlaps and keeps each pair inside its own /30", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 2, max: 2000 }),
        (ports, second, firstVlan) => {
          const maxPort = Math.max(...ports);
          const prefixLength = Math.min(30, 32 - Math.ceil(Math.log2(maxPort * 4)));
          const fleet = fleetWith(ports, `10.${second}.0.0/${Math.min(prefixLength, 16) === prefixLength ? prefixLength : prefixLength}`, firstVlan);
          if (firstVlan + maxPort - 1 > 4093) {
            expect(() => plan(checkFleet(fleet))).toThrow(FleetError);
            return;
          }
          const p = plan(checkFleet(fleet));
          const seen = new Set<string>();
          const unique = (key: string) => {
            expect(seen.has(key)).toBe(false);
            seen.add(key);
          };
          for (const pi of p.pis) {
            unique(`vlan ${pi.vlan}`);
            unique(`v4 ${pi.piAddress}`);
            unique(`v4 ${pi.fileserverAddress}`);
            unique(`export ${pi.nfsRoot}`);
            unique(`v6 ${canonicalIPv6(pi.ipv6)}`);
            const net = parseIPv4(pi.network)!;
            expect(net % 4).toBe(0);
            expect(parseIPv4(pi.fileserverAddress)).toBe(net + 1);
            expect(parseIPv4(pi.piAddress)).toBe(net + 2);
            expect(parseIPv4(pi.broadcast)).toBe(net + 3);
            expect(pi.vlan).not.toBe(4094);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a fleet that does not fit its range", () => {
    fc.assert(
      fc.property(fc.integer({ min: 65, max: 4000 }), (port) => {
        expect(() => plan(checkFleet(fleetWith([port], "10.0.0.0/24")))).toThrow(/private\.range: .* use a \/\d+/);
      }),
      { numRuns: 50 },
    );
  });
});

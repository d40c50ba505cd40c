import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodePortList, encodePortList, samePorts } from "@pifleet/switch";

describe("Q-BRIDGE PortList", () => {
  it("puts port 1 in the most significant bit of the first octet", () => {
    expect(encodePortList([1]).toString("hex")).toBe("80");
    expect(encodePortList([8]).toString("hex")).toBe("01");
    expect(encodePortList([9]).toString("hex")).toBe("0080");
    // The seed's VLAN 10: port 1 untagged, trunk port 24 tagged, on a 24-port switch.
    expect(encodePortList([1, 24], 3).toString("hex")).toBe("800001");
  });

  it("pads to the switch's width and refuses ports that do not fit", () => {
    expect(encodePortList([], 13)).toEqual(Buffer.alloc(13));
    expect(() => encodePortList([25], 3)).toThrow(/does not fit/);
    expect(() => encodePortList([0])).toThrow(/not a bridge port/);
  });

  it("decodes what it encodes, at any width", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 4096 }), { maxLength: 64 }), fc.integer({ min: 0, max: 8 }), (ports, pad) => {
        const width = Math.ceil(Math.max(0, ...ports) / 8) + pad;
        const decoded = decodePortList(encodePortList(ports, width));
        expect(decoded).toEqual([...ports].sort((a, b) => a - b));
        expect(samePorts(decoded, ports)).toBe(true);
      }),
    );
  });

  it("samePorts ignores order and duplicates, not membership", () => {
    expect(samePorts([3, 1, 1], [1, 3])).toBe(true);
    expect(samePorts([1, 3], [1, 2])).toBe(false);
    expect(samePorts([], [])).toBe(true);
  });
});

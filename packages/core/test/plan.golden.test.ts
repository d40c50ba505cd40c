import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fileserverView, loadFleet, plan, renderCmdline, renderFileserverInterfaces, renderPiPublicInterface, renderExports, renderHaproxyBackend, renderSwitchTable } from "@pifleet/core";

// The seed article's literal text, excerpted into the repository (a clone alone has no ../shared).
const seedText = readFileSync(new URL("./fixtures/seed-excerpts.txt", import.meta.url), "utf8");
const seedPlan = plan(loadFleet(new URL("../../../examples/seed-8.yaml", import.meta.url).pathname));
const seedFileserver = fileserverView(seedPlan);
const seedShelf = seedPlan.shelves[0];

/** The seed wraps its cmdline over three lines; the Pi reads it as one. */
function seedCmdline(): string {
  const start = seedText.indexOf("dwc_otg.lpm_enable=0");
  const end = seedText.indexOf("rootwait", start) + "rootwait".length;
  return seedText.slice(start, end).replace(/\s+/g, " ");
}

describe("plan of the seed's cluster reproduces the seed", () => {
  it("first Pi's kernel cmdline", () => {
    expect(renderCmdline(seedPlan.pis[0])).toBe(`${seedCmdline()}\n`);
    expect(seedPlan.pis[0].cmdline).toContain("nfsroot=10.46.189.1:/export/10.46.189.2");
  });

  it("fileserver stanzas for eth0.10 and eth0.11", () => {
    const start = seedText.indexOf("auto eth0.10");
    const literal = seedText.slice(start, seedText.indexOf("eth0.10 and eth0.11 appear")).trim();
    expect(renderFileserverInterfaces(seedFileserver)).toContain(literal);
    expect(literal).toContain("10.46.189.5");
  });

  it("first Pi's eth0.131 stanza", () => {
    const start = seedText.indexOf("auto eth0.131");
    const literal = seedText.slice(start, seedText.indexOf("Effectively the Raspberry Pi")).trim();
    expect(renderPiPublicInterface(seedPlan.pis[0]).trim()).toBe(literal);
  });

  it("derives the second Pi's /30 as in the design", () => {
    const pi = seedPlan.pis[1];
    expect(pi).toMatchObject({
      vlan: 11,
      fileserverInterface: "eth0.11",
      network: "10.46.189.4",
      netmask: "255.255.255.252",
      fileserverAddress: "10.46.189.5",
      piAddress: "10.46.189.6",
      broadcast: "10.46.189.7",
      nfsRoot: "/export/10.46.189.6",
    });
  });

  it("exports each root to its own Pi only", () => {
    const lines = renderExports(seedFileserver).split("\n").filter((l) => l.startsWith("/"));
    expect(lines).toHaveLength(8);
    expect(lines[0]).toBe("/export/10.46.189.2 10.46.189.2(rw,sync,no_subtree_check,no_root_squash)");
  });

  it("switch table: each private VLAN untagged on its Pi port and tagged on the trunk; public VLAN tagged on every Pi port", () => {
    expect(seedShelf.switch.vlans.find((v) => v.vlan === 10)).toEqual({ vlan: 10, name: "pifleet-pi01", untagged: [1], tagged: [24] });
    expect(seedShelf.switch.vlans.find((v) => v.vlan === 131)?.tagged).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 23]);
    expect(seedShelf.switch.pvids[0]).toEqual({ port: 1, vlan: 10 });
    expect(renderSwitchTable(seedShelf)).toMatch(/^131\s+pifleet-public\s+-\s+1-8,23$/m);
  });

  it("load balancer backends are the public addresses", () => {
    expect(renderHaproxyBackend(seedPlan)).toContain("\tserver pi01 [2a00:1098:0:84:1000:1::2]:80 check");
  });
});

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  BOOT_METHODS,
  checkFleet,
  fileserverView,
  LOAD_BALANCER_DRIVERS,
  parseFleet,
  plan,
  POE_DRIVERS,
  renderExports,
  renderFileserverNetworkd,
  renderPlanFiles,
  renderPlanTable,
  renderSwitchTable,
  shelfOf,
} from "@pifleet/core";
import { issuesOf } from "./fleet-issues.js";

const example = (name: string) => readFileSync(new URL(`../../../examples/${name}`, import.meta.url), "utf8");
const twoShelves = () => parse(example("shelves-2.yaml")) as Record<string, any>;
const seed = () => parse(example("seed-8.yaml")) as Record<string, any>;

describe("a fleet of several shelves", () => {
  const p = plan(parseFleet(example("shelves-2.yaml"), "shelves-2.yaml"));

  it("reuses VLAN ids per trunk and keeps every address unique fleet-wide", () => {
    const a = p.pis.find((x) => x.name === "a01")!;
    const b = p.pis.find((x) => x.name === "b01")!;
    expect(a).toMatchObject({ shelf: "rack1-a", vlan: 10, fileserverInterface: "eth0.10", piAddress: "10.46.188.2", fileserverAddress: "10.46.188.1", nfsRoot: "/export/10.46.188.2" });
    expect(b).toMatchObject({ shelf: "rack1-b", vlan: 10, fileserverInterface: "eth1.10", piAddress: "10.46.190.2", fileserverAddress: "10.46.190.1", nfsRoot: "/export/10.46.190.2" });
    expect(a.ipv6).toBe("2001:db8:0:84:1:1::2");
    expect(b.ipv6).toBe("2001:db8:0:84:2:1::2");
    expect(new Set(p.pis.map((x) => x.piAddress)).size).toBe(p.pis.length);
  });

  it("plans each shelf's switch on its own: same VLAN ids, its own ports only", () => {
    const [sa, sb] = p.shelves;
    expect(sa.switch.vlans.map((v) => v.vlan)).toEqual([10, 11, 12, 131]);
    expect(sb.switch.vlans.map((v) => v.vlan)).toEqual([10, 11, 131]);
    expect(sb.switch.vlans.find((v) => v.vlan === 131)!.tagged).toEqual([1, 2, 98]);
    expect(renderSwitchTable(sb)).toContain("# switch rack1-b-switch (shelf rack1-b): trunk port 97");
    expect(shelfOf(p, "rack1-b")).toBe(sb);
    expect(() => shelfOf(p)).toThrow(/2 shelves: name one \(rack1-a, rack1-b\)/);
  });

  it("gives the fileserver one trunk per shelf, and its VLANs on the right one", () => {
    const view = fileserverView(p, "fs1");
    expect(view.fileserver.trunkInterfaces).toEqual(["eth0", "eth1"]);
    expect(view.fileserver.interfaces.map((i) => `${i.name}@${i.parent}`)).toEqual(["eth0.10@eth0", "eth0.11@eth0", "eth0.12@eth0", "eth1.10@eth1", "eth1.11@eth1"]);
    const networkd = renderFileserverNetworkd(view);
    expect(networkd.get("10-pifleet-eth1.network")).toBe("[Match]\nName=eth1\n\n[Network]\nVLAN=eth1.10\nVLAN=eth1.11\n");
    expect(renderExports(view).split("\n").filter((l) => l.startsWith("/"))).toHaveLength(5);
  });

  it("renders per-shelf files and a table with a shelf column", () => {
    const files = renderPlanFiles(p);
    expect([...files.keys()]).toEqual(expect.arrayContaining(["shelves/rack1-a/vlans.txt", "shelves/rack1-b/vlans.txt", "fileservers/fs1/exports.d/pifleet.exports"]));
    expect(renderPlanTable(p)).toMatch(/^rack1-b\s+b02\s+2\s+11 \(eth1\.11\)/m);
    expect(renderPlanTable(p, "rack1-a")).not.toContain("b01");
  });

  it("still reads the one-shelf file as one shelf", () => {
    const one = plan(checkFleet(seed()));
    expect(one.shelves.map((s) => s.name)).toEqual(["shelf1"]);
    expect(one.pis[0]).toMatchObject({ shelf: "shelf1", fileserver: "fileserver", boot: "sd" });
  });

  it("with two fileservers, each owns only its shelves' Pis", () => {
    const f = twoShelves();
    f.fileservers.push({ name: "fs2", goldenImage: "/srv/pifleet/golden" });
    f.shelves[1].fileserver = { name: "fs2", trunkInterface: "eth0" };
    const q = plan(checkFleet(f));
    expect(fileserverView(q, "fs1").pis.map((x) => x.name)).toEqual(["a01", "a02", "a03"]);
    expect(fileserverView(q, "fs2").pis.map((x) => x.name)).toEqual(["b01", "b02"]);
    expect(fileserverView(q, "fs2").fileserver.interfaces.map((i) => i.name)).toEqual(["eth0.10", "eth0.11"]);
    expect(() => fileserverView(q)).toThrow(/2 fileservers: name one/);
    expect(() => fileserverView(q, "fs9")).toThrow(/no fileserver "fs9" in fleet web \(known: fs1, fs2\)/);
  });

  it("plans 10,000 Pis on 105 shelves", () => {
    const shelves = Array.from({ length: 105 }, (_, s) => ({
      name: `shelf${s + 1}`,
      switch: { address: `192.0.2.${s + 1}`, snmp: { version: "2c", community: { env: "C" } }, trunkPort: 97, uplinkPorts: [98] },
      fileserver: { name: `fs${Math.floor(s / 8) + 1}`, trunkInterface: `eth${s % 8}` },
      private: { range: `10.${s}.0.0/23`, firstVlan: 10 },
      pis: Array.from({ length: s === 104 ? 10_000 - 104 * 96 : 96 }, (_, i) => ({ name: `s${s + 1}p${i + 1}`, port: i + 1 })),
    }));
    const fileservers = Array.from({ length: 14 }, (_, i) => ({ name: `fs${i + 1}`, goldenImage: "/srv/golden" }));
    const big = plan(checkFleet({ name: "big", public: { prefix: "2001:db8:0:84::/64", gateway: "2001:db8:0:84::1", addressScheme: "{shelf}:{port}::2" }, fileservers, shelves }));
    expect(big.pis).toHaveLength(10_000);
    expect(big.shelves).toHaveLength(105);
    expect(new Set(big.pis.map((x) => x.ipv6)).size).toBe(10_000);
    expect(new Set(big.pis.map((x) => x.nfsRoot)).size).toBe(10_000);
  });
});

describe("fleet-file errors across shelves name both places", () => {
  it("overlapping private ranges", () => {
    const f = twoShelves();
    f.shelves[1].private.range = "10.46.189.0/24";
    expect(issuesOf(f)).toContainEqual({
      path: "shelves[1].private.range",
      message: "10.46.189.0/24 overlaps shelves[0].private.range 10.46.188.0/23 (shelf rack1-a): addresses are unique fleet-wide",
    });
  });

  it("a Pi on two shelves (one name twice)", () => {
    const f = twoShelves();
    f.shelves[1].pis[0].name = "a02";
    expect(issuesOf(f)).toContainEqual({ path: "shelves[1].pis[0].name", message: '"a02" is already used by shelves[0].pis[1]' });
  });

  it("two shelves on one switch, and two shelves on one fileserver trunk", () => {
    const f = twoShelves();
    f.shelves[1].switch.address = f.shelves[0].switch.address;
    f.shelves[1].fileserver.trunkInterface = "eth0";
    const issues = issuesOf(f);
    expect(issues).toContainEqual({ path: "shelves[1].switch.address", message: "switch 192.0.2.21:161 is already shelves[0].switch (shelf rack1-a): one switch serves one shelf" });
    expect(issues).toContainEqual({
      path: "shelves[1].fileserver.trunkInterface",
      message: "fs1's eth0 is already the trunk of shelves[0].fileserver (shelf rack1-a); give each shelf its own fileserver interface",
    });
  });

  it("a shelf name used twice, an unknown fileserver, a missing one among several", () => {
    const f = twoShelves();
    f.shelves[1].name = "rack1-a";
    expect(issuesOf(f)).toContainEqual({ path: "shelves[1].name", message: '"rack1-a" is already the name of shelves[0]' });
    const g = twoShelves();
    g.shelves[1].fileserver.name = "fs9";
    expect(issuesOf(g)).toContainEqual({ path: "shelves[1].fileserver.name", message: 'no fileserver named "fs9" (known: fs1)' });
    const h = twoShelves();
    h.fileservers.push({ name: "fs2", goldenImage: "/g" });
    delete h.shelves[1].fileserver.name;
    expect(issuesOf(h)).toContainEqual({ path: "shelves[1].fileserver.name", message: "required: the fleet lists 2 fileservers (fs1, fs2)" });
  });

  it("public addresses that collide across shelves, with the hint", () => {
    const f = twoShelves();
    f.public.addressScheme = "1000:{port}::2";
    const issue = issuesOf(f).find((i) => i.path === "shelves[1].pis[0].ipv6");
    expect(issue?.message).toBe("2001:db8:0:84:1000:1:0:2 is already used by shelves[0].pis[0] (with several shelves, put {shelf} in public.addressScheme, or give each shelf its own addressScheme)");
  });

  it("top-level switch/pis beside shelves, and neither", () => {
    const f = twoShelves();
    f.pis = [{ name: "x", port: 1 }];
    expect(issuesOf(f)).toContainEqual({ path: "pis", message: "belongs inside each shelf when shelves: is given" });
    const g = seed();
    delete g.switch;
    expect(issuesOf(g)).toContainEqual({ path: "switch", message: "required (or a shelves: list)" });
  });
});

describe("netboot fields", () => {
  const netboot = (edit: (f: Record<string, any>) => void = () => undefined) => {
    const f = seed();
    f.boot = { mode: "netboot" };
    f.pis = f.pis.map((p: { name: string; port: number }, i: number) => ({ ...p, mac: `B8-27-EB-00-00-0${i + 1}`, serial: `1000000${i + 1}abcdef0${i}`.slice(0, 16) }));
    edit(f);
    return f;
  };

  it("derives each netbooted Pi's boot chain; MACs and serials normalised", () => {
    const p = plan(checkFleet(netboot()));
    expect(p.pis[0].netboot).toEqual({
      method: "rpi",
      mac: "b8:27:eb:00:00:01",
      serial: "10000001abcdef00",
      tftpPrefix: "abcdef00",
      tftpInterfaceRoot: "/export/tftp/eth0.10",
      tftpDir: "/export/tftp/eth0.10/abcdef00",
      bootFile: "bootcode.bin",
      bootFrom: ["/export/10.46.189.2/boot/firmware", "/export/10.46.189.2/boot"],
    });
    expect(p.pis[0].boot).toBe("netboot");
    expect(p.fileservers[0].tftpRoot).toBe("/export/tftp");
  });

  it("a netboot Pi without MAC or serial, malformed and duplicate ones, and a per-Pi override", () => {
    const missing = netboot((f) => {
      delete f.pis[2].mac;
      delete f.pis[3].serial;
    });
    expect(issuesOf(missing)).toEqual([
      { path: "pis[2].mac", message: "required: boot.mode is netboot, and the DHCP reservation is made for the Pi's MAC" },
      { path: "pis[3].serial", message: "required: boot.mode is netboot, and the boot ROM asks TFTP for <serial>/" },
    ]);
    expect(issuesOf(netboot((f) => (f.pis[0].mac = "b8:27:eb:00:00")))).toEqual([{ path: "pis[0].mac", message: "must be a MAC address like b8:27:eb:00:00:01" }]);
    expect(issuesOf(netboot((f) => (f.pis[0].serial = "xyz")))).toEqual([{ path: "pis[0].serial", message: "must be the Pi's serial: 8 or 16 hex digits" }]);
    expect(issuesOf(netboot((f) => (f.pis[1].mac = "b8:27:eb:00:00:01")))).toContainEqual({ path: "pis[1].mac", message: "MAC b8:27:eb:00:00:01 is already used by pis[0]" });
    expect(issuesOf(netboot((f) => (f.pis[1].serial = "abcdef00")))).toContainEqual({ path: "pis[1].serial", message: "serial abcdef00 (its TFTP folder) is already used by pis[0]" });
    const one = seed();
    one.pis[0] = { ...one.pis[0], boot: "netboot" };
    expect(issuesOf(one)).toContainEqual({ path: "pis[0].mac", message: "required: pis[0].boot is netboot, and the DHCP reservation is made for the Pi's MAC" });
  });

  it("a TFTP root outside the export tree", () => {
    const f = netboot((x) => (x.fileserver.tftpRoot = "/srv/tftp"));
    expect(issuesOf(f)).toEqual([{ path: "fileserver.tftpRoot", message: "/srv/tftp is outside the export tree /export: TFTP folders must live under fileserver.exportRoot" }]);
    const g = netboot((x) => (x.fileserver.tftpRoot = "/export/../etc"));
    expect(issuesOf(g)).toEqual([{ path: "fileserver.tftpRoot", message: '"/export/../etc" must be a normalised absolute path' }]);
  });
});

describe("driver names are checked when the file is read, with the known names listed", () => {
  const cases: Array<[string, (f: Record<string, any>) => void, string]> = [
    ["switch.poe.driver", (f) => (f.switch.poe.driver = "nosuch"), `unknown PoE driver "nosuch" (known: ${POE_DRIVERS.join(", ")})`],
    ["loadBalancer.driver", (f) => (f.loadBalancer.driver = "nginxplus"), `unknown load balancer driver "nginxplus" (known: ${LOAD_BALANCER_DRIVERS.join(", ")})`],
    ["fileserver.network", (f) => (f.fileserver.network = "netplan"), 'unknown network driver "netplan" (known: ifupdown, networkd)'],
    ["boot.method", (f) => (f.boot = { method: "uboot" }), `unknown boot method "uboot" (known: ${BOOT_METHODS.join(", ")})`],
    ["boot.mode", (f) => (f.boot = { mode: "usb" }), 'unknown boot mode "usb" (known: sd, netboot)'],
  ];
  for (const [field, edit, message] of cases) {
    it(field, () => {
      const f = seed();
      edit(f);
      expect(issuesOf(parse(stringify(f)))).toEqual([{ path: field, message }]);
    });
  }
});

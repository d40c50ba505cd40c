import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  checkFleet,
  fileserverView,
  plan,
  renderDnsmasqConf,
  renderDnsmasqHosts,
  renderNetbootCmdline,
  renderPlanFiles,
  renderPlanTable,
  renderTftpFiles,
} from "@pifleet/core";
import { issuesOf } from "./fleet-issues.js";

// The seed's eight Pis (the repository's own example) with netboot turned on, and the seed's
// literal cmdline from the excerpts kept in the repository: a clone alone runs this.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
const seedText = fixture("seed-excerpts.txt");
const seedYaml = () => parse(readFileSync(new URL("../../../examples/seed-8.yaml", import.meta.url), "utf8")) as Record<string, any>;

function netbootSeed(edit: (f: Record<string, any>) => void = () => undefined) {
  const f = seedYaml();
  f.boot = { mode: "netboot" };
  // Pi 3 MACs (Raspberry Pi Foundation OUI b8:27:eb) and 16-digit serials as /proc/cpuinfo prints them.
  f.pis = f.pis.map((p: { name: string; port: number }, i: number) => ({ ...p, mac: `b8:27:eb:00:00:0${i + 1}`, serial: `00000000a1b2c30${i + 1}` }));
  edit(f);
  return f;
}
const seedPlan = () => plan(checkFleet(netbootSeed()));

function seedCmdline(): string {
  const start = seedText.indexOf("dwc_otg.lpm_enable=0");
  const end = seedText.indexOf("rootwait", start) + "rootwait".length;
  return seedText.slice(start, end).replace(/\s+/g, " ");
}

describe("netboot rendering of the seed's eight Pis", () => {
  it("dnsmasq conf-dir file, pinned", () => {
    expect(renderDnsmasqConf(fileserverView(seedPlan()))).toBe(fixture("seed-8-netboot.dnsmasq.conf"));
  });

  it("reservations file, pinned", () => {
    expect(renderDnsmasqHosts(fileserverView(seedPlan()))).toBe(fixture("seed-8-netboot.dnsmasq.hosts"));
  });

  it("DHCP only on the Pis' own VLAN interfaces: never the trunk's untagged side or the public VLAN", () => {
    const conf = renderDnsmasqConf(fileserverView(seedPlan()));
    const listened = conf.split("\n").filter((l) => l.startsWith("interface=")).map((l) => l.slice("interface=".length));
    expect(listened).toEqual(["eth0.10", "eth0.11", "eth0.12", "eth0.13", "eth0.14", "eth0.15", "eth0.16", "eth0.17"]);
    expect(conf).toContain("except-interface=eth0\n");
    expect(conf).not.toMatch(/eth0\.131/);
    // No range hands out addresses dynamically: each is `static` on one /30.
    const ranges = conf.split("\n").filter((l) => l.startsWith("dhcp-range="));
    expect(ranges).toHaveLength(8);
    for (const r of ranges) expect(r).toMatch(/,static,255\.255\.255\.252,/);
  });

  it("each Pi's TFTP folder: the seed's cmdline verbatim and a config.txt pointing at it", () => {
    const p = seedPlan();
    const files = renderTftpFiles(p.pis[0]);
    expect([...files.keys()]).toEqual(["cmdline.txt", "config.txt"]);
    expect(files.get("cmdline.txt")).toBe(`${seedCmdline()}\n`);
    expect(files.get("config.txt")).toBe(fixture("seed-8-netboot.pi01.config.txt"));
    expect(p.pis[0].netboot?.tftpDir).toBe("/export/tftp/eth0.10/a1b2c301");
    // Every Pi: its own /30 in ip= and its own root over its own VLAN's fileserver address.
    for (const pi of p.pis) {
      expect(renderNetbootCmdline(pi)).toBe(
        `dwc_otg.lpm_enable=0 console=ttyAMA0,115200 console=tty1 root=/dev/nfs rootfstype=nfs ip=${pi.piAddress}::${pi.fileserverAddress}:255.255.255.252::eth0:off nfsroot=${pi.fileserverAddress}:/export/${pi.piAddress} elevator=deadline fsck.repair=yes rootwait\n`,
      );
    }
    expect(renderNetbootCmdline(p.pis[7])).toContain("ip=10.46.189.30::10.46.189.29:");
  });

  it("the ipxe method: a script per Pi instead of config.txt, no Raspberry Pi PXE menu", () => {
    const p = plan(checkFleet(netbootSeed((f) => (f.boot.method = "ipxe"))));
    const conf = renderDnsmasqConf(fileserverView(p));
    expect(conf).not.toContain("pxe-service");
    expect(conf).toContain("dhcp-boot=tag:pifleet-pi01,pi01/boot.ipxe,,10.46.189.1\n");
    const files = renderTftpFiles(p.pis[0], { kernel: "vmlinuz", initramfs: "initrd.img" });
    expect(files.get("boot.ipxe")).toBe(`#!ipxe\n# pifleet: pi01 over eth0.10\nkernel vmlinuz ${seedCmdline()}\ninitrd initrd.img\nboot\n`);
  });

  it("an SD-booted Pi gets no reservation; plan files and the table show the netboot chain", () => {
    const p = plan(checkFleet(netbootSeed((f) => (f.pis[1].boot = "sd"))));
    const view = fileserverView(p);
    expect(renderDnsmasqHosts(view)).not.toContain("pi02");
    expect(renderDnsmasqConf(view)).not.toContain("eth0.11");
    const files = renderPlanFiles(p);
    expect(files.get("fileserver/dnsmasq.d/pifleet.conf")).toBe(renderDnsmasqConf(view));
    expect(files.get("pis/pi01/tftp/cmdline.txt")).toBe(`${seedCmdline()}\n`);
    expect(files.has("pis/pi02/tftp/cmdline.txt")).toBe(false);
    expect(renderPlanTable(p)).toContain("netboot rpi b8:27:eb:00:00:01 tftp a1b2c301/");
    // An all-SD fleet writes no dnsmasq file at all.
    expect([...renderPlanFiles(plan(checkFleet(seedYaml()))).keys()].some((k) => k.includes("dnsmasq"))).toBe(false);
  });
});

describe("netboot validation", () => {
  it("a multicast or all-zero MAC cannot be a reservation", () => {
    expect(issuesOf(netbootSeed((f) => (f.pis[0].mac = "01:00:5e:00:00:01")))).toEqual([
      { path: "pis[0].mac", message: "01:00:5e:00:00:01 is a multicast address; a Pi's Ethernet MAC is unicast (first byte even)" },
    ]);
    expect(issuesOf(netbootSeed((f) => (f.pis[0].mac = "00:00:00:00:00:00")))).toEqual([
      { path: "pis[0].mac", message: "00:00:00:00:00:00 is not a board's MAC" },
    ]);
  });

  it("a TFTP root that is, or is inside, a Pi's root (which the Pi writes as root) is refused", () => {
    expect(issuesOf(netbootSeed((f) => (f.fileserver.tftpRoot = "/export/10.46.189.6/tftp")))).toEqual([
      { path: "fileserver.tftpRoot", message: "/export/10.46.189.6/tftp is inside pis[1]'s root /export/10.46.189.6 (exported read-write to that Pi): put TFTP folders beside the roots, e.g. /export/tftp" },
    ]);
    expect(issuesOf(netbootSeed((f) => (f.fileserver.tftpRoot = "/export/10.46.189.2")))).toContainEqual({
      path: "fileserver.tftpRoot",
      message: "/export/10.46.189.2 is inside pis[0]'s root /export/10.46.189.2 (exported read-write to that Pi): put TFTP folders beside the roots, e.g. /export/tftp",
    });
  });
});

import { describe, expect, it } from "vitest";
import { EmulatedHost, parseExportfs, parseIpLinks } from "@pifleet/fileserver-agent";
import { fixture, FakeRunner, tempDir } from "./helpers.js";
import path from "node:path";

describe("ip -j parsing (recorded output)", () => {
  it("reads a real veth/bridge namespace: a veth's `link` is its peer, not a VLAN parent", () => {
    const links = parseIpLinks(fixture("host-veth-bridge-ip-d-link.json"), fixture("host-veth-bridge-ip-addr.json"));
    const eth0 = links.find((l) => l.name === "eth0")!;
    expect(eth0.kind).toBe("veth");
    expect(eth0.parent).toBeUndefined();
    expect(eth0.vlanId).toBeUndefined();
    expect(eth0.up).toBe(true);
    expect(eth0.alias).toBe("mgmt uplink");
    expect(eth0.addresses).toContainEqual({ family: "inet", local: "192.0.2.10", prefixlen: 24, scope: "global" });
    expect(links.find((l) => l.name === "br0")!.kind).toBe("bridge");
    expect(links.find((l) => l.name === "lo")!.up).toBe(false);
  });

  it("reads VLAN links in iproute2's -d shape: parent, id, alias, addresses", () => {
    const links = parseIpLinks(fixture("fileserver-after-ip-d-link.json"), fixture("fileserver-after-ip-addr.json"));
    const v = links.find((l) => l.name === "eth0.13")!;
    expect(v).toMatchObject({ kind: "vlan", parent: "eth0", vlanId: 13, up: true, alias: "pifleet:seed" });
    expect(v.addresses.filter((a) => a.family === "inet")).toEqual([{ family: "inet", local: "10.46.189.13", prefixlen: 30, scope: "global" }]);
    expect(links.filter((l) => l.kind === "vlan").map((l) => l.name)).toEqual(["eth0.99", ...Array.from({ length: 8 }, (_, i) => `eth0.${10 + i}`)]);
  });

  it("names the command whose output is not JSON", () => {
    expect(() => parseIpLinks("Error: garbage", "[]")).toThrow(/ip -j -d link show: not JSON/);
  });
});

describe("exportfs -v parsing (recorded output)", () => {
  it("reads long paths (client on the next line), short ones (same line) and <world>", () => {
    const e = parseExportfs(fixture("exportfs-v-seed8-foreign.txt"));
    expect(e).toHaveLength(11);
    expect(e).toContainEqual(expect.objectContaining({ path: "/export/10.46.189.2", client: "10.46.189.2" }));
    expect(e).toContainEqual(expect.objectContaining({ path: "/srv", client: "192.168.1.0/24" }));
    expect(e).toContainEqual(expect.objectContaining({ path: "/export/shared", client: "10.46.189.0/24" }));
    expect(e).toContainEqual(expect.objectContaining({ path: "/export/10.46.189.6", client: "<world>" }));
    expect(e.find((x) => x.path === "/export/10.46.189.2")!.options).toContain("no_root_squash");
  });

  it("reads a path of exactly 14 characters and an empty table", () => {
    expect(parseExportfs(fixture("exportfs-v-short-and-long.txt")).map((x) => `${x.path} ${x.client}`)).toEqual([
      "/tmp/exrec/export/10.46.189.2 10.46.189.2",
      "/tmp/exrec/export/10.46.189.2 10.46.189.0/30",
      "/tmp/exrec/s <world>",
    ]);
    expect(parseExportfs("")).toEqual([]);
  });
});

describe("the sandbox emulator speaks the same shapes", () => {
  it("answers ip and exportfs as the parsers expect, and refuses a duplicate VLAN like the kernel", async () => {
    const t = tempDir("emu");
    try {
      const emu = new EmulatedHost(path.join(t.dir, "var/lib/pifleet/emulated-host.json"), t.dir, new FakeRunner());
      expect((await emu.run("ip", ["link", "add", "link", "eth0", "name", "eth0.10", "type", "vlan", "id", "10"])).code).toBe(0);
      expect((await emu.run("ip", ["link", "add", "link", "eth0", "name", "vlan10", "type", "vlan", "id", "10"])).stderr).toMatch(/File exists/);
      expect((await emu.run("ip", ["link", "add", "link", "eth9", "name", "eth9.10", "type", "vlan", "id", "10"])).stderr).toMatch(/Cannot find device "eth9"/);
      await emu.run("ip", ["addr", "add", "10.46.189.1/30", "dev", "eth0.10"]);
      await emu.run("ip", ["link", "set", "eth0.10", "up"]);
      const links = parseIpLinks((await emu.run("ip", ["-j", "-d", "link", "show"])).stdout, (await emu.run("ip", ["-j", "addr", "show"])).stdout);
      expect(links.find((l) => l.name === "eth0.10")).toMatchObject({ kind: "vlan", parent: "eth0", vlanId: 10, up: true, addresses: [{ local: "10.46.189.1", prefixlen: 30 }] });
      expect(parseExportfs((await emu.run("exportfs", ["-v"])).stdout)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });
});

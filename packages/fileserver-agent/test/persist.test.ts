import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderFileserverNetworkd } from "@pifleet/core";
import { Fileserver, initSandbox, type Live } from "@pifleet/fileserver-agent";
import { FakeRunner, seedPlan, seedPlanWith, tempDir } from "./helpers.js";

const OFF: Live = { network: "off", nfs: "off", notes: [] };
let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir("persist");
  initSandbox(t.dir, seedPlan());
});
afterEach(() => t.cleanup());

const networkd = () => seedPlanWith((f) => (f.fileserver.network = "networkd"));

describe("persistent network drivers", () => {
  it("ifupdown warns when /etc/network/interfaces does not source interfaces.d", async () => {
    writeFileSync(path.join(t.dir, "etc/network/interfaces"), "auto lo\niface lo inet loopback\n");
    const fs = new Fileserver({ plan: seedPlan(), runner: new FakeRunner(), live: OFF, prefix: t.dir });
    const p = await fs.planApply();
    expect(p.diff.drift).toContainEqual(expect.objectContaining({ kind: "persist", subject: path.join(t.dir, "etc/network/interfaces"), detail: expect.stringMatching(/does not source interfaces.d/) }));
    // pifleet never edits that file: it is not pifleet's.
    expect(p.diff.actions.flatMap((a) => a.steps).some((s) => "path" in s && s.path.endsWith("etc/network/interfaces"))).toBe(false);
  });

  it("ifupdown reports a fileserver without Debian's vlan package (its if-pre-up.d hook), and networkd does not need it", async () => {
    const hook = path.join(t.dir, "etc/network/if-pre-up.d/vlan");
    let p = await new Fileserver({ plan: seedPlan(), runner: new FakeRunner(), live: OFF, prefix: t.dir }).planApply();
    expect(p.diff.drift.filter((d) => d.kind === "persist" && d.subject === hook)).toEqual([]);
    rmSync(hook);
    p = await new Fileserver({ plan: seedPlan(), runner: new FakeRunner(), live: OFF, prefix: t.dir }).planApply();
    expect(p.diff.drift).toContainEqual({ kind: "persist", subject: hook, detail: expect.stringMatching(/^missing: install Debian's vlan package \(apt install vlan\)/) });
    p = await new Fileserver({ plan: networkd(), runner: new FakeRunner(), live: OFF, prefix: t.dir }).planApply();
    expect(p.diff.drift.filter((d) => d.subject === hook)).toEqual([]);
  });

  it("networkd writes a .netdev/.network pair per VLAN, removes ifupdown's file when switching, and converges", async () => {
    await new Fileserver({ plan: seedPlan(), runner: new FakeRunner(), live: OFF, prefix: t.dir }).apply();
    expect(existsSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"))).toBe(true);
    // Someone else's file in the same directory.
    mkdirSync(path.join(t.dir, "etc/systemd/network"), { recursive: true });
    writeFileSync(path.join(t.dir, "etc/systemd/network/99-wired.network"), "[Match]\nName=wlan*\n\n[Network]\nDHCP=yes\n");

    const fs = new Fileserver({ plan: networkd(), runner: new FakeRunner(), live: OFF, prefix: t.dir });
    expect((await fs.apply()).result?.ok).toBe(true);
    const dir = path.join(t.dir, "etc/systemd/network");
    const want = renderFileserverNetworkd(networkd());
    expect(readdirSync(dir).sort()).toEqual([...want.keys(), "99-wired.network"].sort());
    for (const [name, text] of want) expect(readFileSync(path.join(dir, name), "utf8")).toBe(text);
    expect(existsSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"))).toBe(false);
    expect((await fs.planApply()).diff.actions).toEqual([]);

    // A Pi leaves the fleet: its pair goes, nothing else does.
    const seven = seedPlanWith((f) => {
      f.fileserver.network = "networkd";
      f.pis.pop();
    });
    await new Fileserver({ plan: seven, runner: new FakeRunner(), live: OFF, prefix: t.dir }).apply();
    expect(readdirSync(dir).filter((n) => n.includes("eth0.17"))).toEqual([]);
    expect(readdirSync(dir)).toContain("99-wired.network");
    expect(readdirSync(dir)).toContain("20-pifleet-eth0.16.netdev");
  });

  it("networkd reports another .network file that also matches the trunk", async () => {
    mkdirSync(path.join(t.dir, "etc/systemd/network"), { recursive: true });
    writeFileSync(path.join(t.dir, "etc/systemd/network/05-uplink.network"), "[Match]\nName=eth*\n\n[Network]\nDHCP=yes\n");
    const fs = new Fileserver({ plan: networkd(), runner: new FakeRunner(), live: OFF, prefix: t.dir });
    const p = await fs.planApply();
    expect(p.diff.drift).toContainEqual(expect.objectContaining({ kind: "persist", subject: path.join(t.dir, "etc/systemd/network/05-uplink.network"), detail: expect.stringMatching(/also matches eth0/) }));
  });
});

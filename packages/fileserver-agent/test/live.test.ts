import { describe, expect, it } from "vitest";
import { resolveLive } from "@pifleet/fileserver-agent";
import { FakeRunner } from "./helpers.js";

describe("how the agent reaches the kernel", () => {
  it("emulates in a sandbox, never touching the host", async () => {
    const live = await resolveLive("auto", { prefix: "/tmp/sbx", runner: new FakeRunner(), uid: 0 });
    expect(live).toMatchObject({ network: "emulate", nfs: "emulate" });
    expect(live.notes[0]).toMatch(/this machine's network and NFS server are not touched/);
  });

  it("uses the host as root with iproute2 and exportfs, and says why when it cannot", async () => {
    const full = new FakeRunner().set("ip -V", "ip utility, iproute2-6.1.0, libbpf 1.1.2\n").set("exportfs -h", "usage: exportfs\n", 1);
    expect(await resolveLive("auto", { prefix: "", runner: full, uid: 0 })).toEqual({ network: "host", nfs: "host", notes: [] });

    const notRoot = await resolveLive("auto", { prefix: "", runner: full, uid: 1000 });
    expect(notRoot).toMatchObject({ network: "off", nfs: "off", notes: [expect.stringMatching(/not root \(uid 1000\)/)] });

    const busybox = new FakeRunner().set("ip -V", "", 1, "BusyBox v1.35.0 multi-call binary.\n").set("exportfs -h", "", 127);
    const bb = await resolveLive("auto", { prefix: "", runner: busybox, uid: 0 });
    expect(bb).toMatchObject({ network: "off", nfs: "off" });
    expect(bb.notes.join("\n")).toMatch(/not iproute2 \(busybox's applet\?\)[\s\S]*nfs-kernel-server/);
  });

  it("--live host on a real fileserver says nothing of a sandbox", async () => {
    expect(await resolveLive("host", { prefix: "", runner: new FakeRunner(), uid: 0 })).toEqual({ network: "host", nfs: "host", notes: [] });
    const off = await resolveLive("off", { prefix: "", runner: new FakeRunner(), uid: 0 });
    expect(off.notes.join("\n")).not.toMatch(/sandbox/);
  });

  it("will not emulate without a sandbox to keep the state in", async () => {
    await expect(resolveLive("emulate", { prefix: "", runner: new FakeRunner() })).rejects.toThrow(/needs a --root-prefix/);
  });
});

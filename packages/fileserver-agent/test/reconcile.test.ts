import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderFileserverInterfaces } from "@pifleet/core";
import { Fileserver, formatActions, initSandbox, type Live } from "@pifleet/fileserver-agent";
import { FakeRunner, fixture, seedPlan, seedPlanWith, tempDir } from "./helpers.js";

const HOST: Live = { network: "host", nfs: "host", notes: [] };

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir("reconcile");
  initSandbox(t.dir, seedPlan());
});
afterEach(() => t.cleanup());

function before(): FakeRunner {
  return new FakeRunner().state(fixture("fileserver-before-ip-d-link.json"), fixture("fileserver-before-ip-addr.json"), "");
}
function after(): FakeRunner {
  return new FakeRunner().state(fixture("fileserver-after-ip-d-link.json"), fixture("fileserver-after-ip-addr.json"), fixture("exportfs-v-seed8.txt"));
}

const expectedIp = (n: number) =>
  Array.from({ length: n }, (_, i) => [
    `ip link add link eth0 name eth0.${10 + i} type vlan id ${10 + i}`,
    `ip link set eth0.${10 + i} alias pifleet:seed`,
    `ip addr add 10.46.189.${4 * i + 1}/30 dev eth0.${10 + i}`,
    `ip link set eth0.${10 + i} up`,
  ]).flat();

describe("reconcile with recorded ip/exportfs output", () => {
  it("dry run prints the exact commands and changes nothing", async () => {
    const runner = before();
    const fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    const out = await fs.apply(true);
    expect(runner.changes()).toEqual([]);
    expect(out.result).toBeUndefined();
    const text = formatActions(out.diff.actions, true);
    for (const line of expectedIp(8)) expect(text).toContain(`${line}\n`);
    expect(text).toContain(`cp --reflink=auto -a -T ${t.dir}/srv/pifleet/golden ${t.dir}/export/.10.46.189.2.building\n`);
    expect(text).toContain(`mv -T ${t.dir}/export/.10.46.189.2.new ${t.dir}/export/10.46.189.2\n`);
    expect(text).toContain(`install -m 0644 /dev/stdin ${t.dir}/etc/exports.d/pifleet.exports <<'PIFLEET'\n`);
    expect(text).toContain("/export/10.46.189.2 10.46.189.2(rw,sync,no_subtree_check,no_root_squash)\n");
    expect(text).toContain("exportfs -ra\n");
    // Nothing was written: no roots, no files.
    expect(() => readFileSync(path.join(t.dir, "etc/exports.d/pifleet.exports"))).toThrow();
    expect((await fs.planApply()).diff.actions.length).toBe(out.diff.actions.length);
  });

  it("creates what is missing, removes nothing foreign, and a second run with the post-state does nothing", async () => {
    const runner = before();
    const fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    const planned = await fs.planApply();
    expect(planned.diff.drift).toContainEqual({ kind: "interface", subject: "eth0.99", detail: "VLAN 99 on eth0 is not in the plan; left alone (pifleet did not create it)" });

    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    expect(runner.changes()).toEqual([...expectedIp(8), "exportfs -ra"]);
    expect(runner.calls.some((c) => c.includes("eth0.99"))).toBe(false);
    expect(readFileSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"), "utf8")).toBe(renderFileserverInterfaces(seedPlan()));
    // Each root is its own Pi's, not a plain copy of the golden image.
    expect(readFileSync(path.join(t.dir, "export/10.46.189.30/etc/hostname"), "utf8")).toBe("pi08\n");

    // The kernel now looks like the recorded post-state.
    const second = after();
    const again = new Fileserver({ plan: seedPlan(), runner: second, live: HOST, prefix: t.dir });
    const p2 = await again.planApply();
    expect(p2.diff.actions).toEqual([]);
    expect(p2.diff.drift.map((d) => d.subject)).toEqual(["eth0.99"]);
    await again.apply();
    expect(second.changes()).toEqual([]);
  });

  it("removes a VLAN the plan dropped only when pifleet created it (alias mark or its own file)", async () => {
    const seven = seedPlanWith((f) => f.pis.pop());
    const runner = after();
    let fs = new Fileserver({ plan: seven, runner, live: HOST, prefix: t.dir });
    let p = await fs.planApply();
    expect(p.diff.drift).toContainEqual(expect.objectContaining({ subject: "eth0.17", detail: expect.stringMatching(/pifleet created it, so it is removed/) }));
    const dels = p.diff.actions.flatMap((a) => a.steps).filter((s) => s.op === "exec" && s.args[1] === "del");
    expect(dels).toEqual([{ op: "exec", cmd: "ip", args: ["link", "del", "eth0.17"] }]);

    // Without the alias, the evidence is pifleet's own persistent file listing it.
    const unmarkedLinks = fixture("fileserver-after-ip-d-link.json").replace(/,\s*"ifalias":\s*"pifleet:seed"/g, "");
    const unmarked = new FakeRunner().state(unmarkedLinks, fixture("fileserver-after-ip-addr.json"), fixture("exportfs-v-seed8.txt"));
    fs = new Fileserver({ plan: seven, runner: unmarked, live: HOST, prefix: t.dir });
    p = await fs.planApply();
    expect(p.diff.actions.flatMap((a) => a.steps).some((s) => s.op === "exec" && s.args.includes("del"))).toBe(false);
    expect(p.diff.drift).toContainEqual(expect.objectContaining({ subject: "eth0.17", detail: expect.stringMatching(/left alone/) }));

    mkdirSync(path.join(t.dir, "etc/network/interfaces.d"), { recursive: true });
    writeFileSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"), renderFileserverInterfaces(seedPlan()));
    p = await fs.planApply();
    expect(p.diff.actions.flatMap((a) => a.steps)).toContainEqual({ op: "exec", cmd: "ip", args: ["link", "del", "eth0.17"] });
    expect(p.diff.actions.flatMap((a) => a.steps).filter((s) => s.op === "exec" && s.args.includes("eth0.99"))).toEqual([]);
  });

  it("repairs a planned VLAN in place and leaves a misconfigured one for a person", async () => {
    const links = JSON.parse(fixture("fileserver-after-ip-d-link.json")) as Array<Record<string, any>>;
    const addrs = JSON.parse(fixture("fileserver-after-ip-addr.json")) as Array<Record<string, any>>;
    // eth0.10 lost its address and is down; eth0.11 is VLAN 111 under the planned name.
    const l10 = links.find((l) => l.ifname === "eth0.10")!;
    l10.flags = ["BROADCAST", "MULTICAST"];
    addrs.find((a) => a.ifname === "eth0.10")!.addr_info = [];
    links.find((l) => l.ifname === "eth0.11")!.linkinfo.info_data.id = 111;
    const runner = new FakeRunner().state(JSON.stringify(links), JSON.stringify(addrs), fixture("exportfs-v-seed8.txt"));
    const fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    const p = await fs.planApply();
    const cmds = formatActions(p.diff.actions);
    expect(cmds).toContain("ip addr add 10.46.189.1/30 dev eth0.10\nip link set eth0.10 up\n");
    expect(cmds).not.toMatch(/eth0\.11/);
    expect(p.diff.drift).toContainEqual(expect.objectContaining({ kind: "interface", subject: "eth0.11", detail: expect.stringMatching(/exists as VLAN 111 on eth0, not VLAN 11 on eth0; left alone/) }));
  });

  it("brings a trunk that is down up before creating its VLANs", async () => {
    const links = JSON.parse(fixture("fileserver-before-ip-d-link.json")) as Array<Record<string, any>>;
    const eth0 = links.find((l) => l.ifname === "eth0")!;
    eth0.flags = ["BROADCAST", "MULTICAST"];
    eth0.operstate = "DOWN";
    const runner = new FakeRunner().state(JSON.stringify(links), fixture("fileserver-before-ip-addr.json"), "");
    const fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    const p = await fs.planApply();
    expect(p.diff.drift).toContainEqual({ kind: "interface", subject: "eth0", detail: "trunk interface down: its VLANs cannot come up" });
    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    const changes = runner.changes();
    expect(changes[0]).toBe("ip link set eth0 up");
    expect(changes.slice(1, 1 + expectedIp(8).length)).toEqual(expectedIp(8));
  });

  it("a VLAN brought back at boot from pifleet's own file, without the alias, is not drift: the mark is put back quietly", async () => {
    mkdirSync(path.join(t.dir, "etc/network/interfaces.d"), { recursive: true });
    writeFileSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"), renderFileserverInterfaces(seedPlan()));
    const unmarkedLinks = fixture("fileserver-after-ip-d-link.json").replace(/,\s*"ifalias":\s*"pifleet:seed"/g, "");
    const runner = new FakeRunner().state(unmarkedLinks, fixture("fileserver-after-ip-addr.json"), fixture("exportfs-v-seed8.txt"));
    const fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    await fs.apply();
    runner.reset();
    const p = await fs.planApply();
    expect(p.diff.drift.filter((d) => d.kind === "interface" && /not marked/.test(d.detail))).toEqual([]);
    expect(p.diff.drift.map((d) => d.subject)).toEqual(["eth0.99"]);
    expect(formatActions(p.diff.actions)).toContain("ip link set eth0.10 alias pifleet:seed\n");
    // Without pifleet's file the same unmarked link is someone else's until proven otherwise.
    rmSync(path.join(t.dir, "etc/network/interfaces.d/pifleet"));
    const q = await fs.planApply();
    expect(q.diff.drift).toContainEqual({ kind: "interface", subject: "eth0.10", detail: 'not marked as pifleet\'s (alias "")' });
  });

  it("creates no VLAN on a missing trunk, and stops at the first failing command", async () => {
    const noTrunk = JSON.stringify(JSON.parse(fixture("fileserver-before-ip-d-link.json")).filter((l: { ifname: string }) => l.ifname !== "eth0"));
    let runner = new FakeRunner().state(noTrunk, "[]", "");
    let fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    let p = await fs.planApply();
    expect(p.diff.drift).toContainEqual({ kind: "interface", subject: "eth0", detail: "trunk interface missing: no VLAN can be created on it" });
    expect(p.diff.actions.some((a) => a.kind === "interface")).toBe(false);

    runner = before().set("ip link add link eth0 name eth0.10 type vlan id 10", "", 2, "RTNETLINK answers: Operation not permitted\n");
    fs = new Fileserver({ plan: seedPlan(), runner, live: HOST, prefix: t.dir });
    const out = await fs.apply();
    expect(out.result?.ok).toBe(false);
    expect(out.result?.failed?.command).toBe("ip link add link eth0 name eth0.10 type vlan id 10");
    expect(out.result?.failed?.error).toMatch(/Operation not permitted/);
    expect(runner.changes()).toEqual(["ip link add link eth0 name eth0.10 type vlan id 10"]);
  });
});

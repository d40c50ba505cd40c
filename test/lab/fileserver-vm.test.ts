/**
 * The fileserver side on a real kernel: Debian's kernel under QEMU, systemd, the kernel NFS
 * server, 802.1Q VLANs. A shelf in small — fileserver, switch, two Pis — as VMs on virtual cables:
 * - fileserver: a systemd VM; the real fileserver agent (the bundle `pifleet install` ships, run
 *   by the host's Node 20) applies a 2-Pi fleet plan to it, live, twice;
 * - switch: a VLAN-filtering Linux bridge carrying the plan's switch table (Pi ports untagged,
 *   the fileserver's trunk tagged);
 * - pi01: a tiny VM that mounts its root over NFS, is refused pi02's, cannot pass for pi02;
 * - pi02: boots diskless with nothing but the plan's own kernel cmdline for it.
 * Then the fileserver loses power, and everything must come back from the files the agent wrote.
 *
 * Nothing touches the host's network: every address lives inside the VMs, and each cable is a
 * pair of UDP sockets on 127.0.0.1. The first run builds the kernel, images and initrds into
 * .lab-cache/ (a few minutes); later runs reuse them. Serial logs: .artifacts/lab/fileserver-vm/.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileserverView, parseFleet, plan as planFleet, renderExports, renderFileserverInterfaces, type Plan } from "@pifleet/core";
import { Lab, netbootInitrd, pifleetApp, repoRoot, run, switchVm, systemdRootfs, type Marker, type Vm } from "./harness/index.js";

const MIN = 60_000;
/** TCG runs a systemd boot in about a minute on an idle 2-core machine; a loaded CI runner needs room. */
const BOOT_TIMEOUT = 8 * MIN;

const FLEET = `# A 2-Pi fleet for the VM lab: the seed's addressing, nothing outside the VMs.
name: lab
switch:
  address: 127.0.0.1
  snmp: { version: "2c", community: { env: PIFLEET_SNMP_COMMUNITY } }
  trunkPort: 24
fileserver:
  name: fileserver
  trunkInterface: eth0
  exportRoot: /export
  goldenImage: /srv/pifleet/golden
  content: shared
private:
  range: 10.46.189.0/24
  firstVlan: 10
public:
  prefix: 2001:db8:0:84::/64
  gateway: 2001:db8:0:84::1
pis:
  - { name: pi01, port: 1 }
  - { name: pi02, port: 2 }
`;

/** The fileserver's packages: the NFS server, ifupdown (the plan's network style) and `vlan`, which ifupdown needs for eth0.N stanzas. */
const FILESERVER_PACKAGES = ["nfs-kernel-server", "nfs-common", "netbase", "ifupdown", "vlan", "procps", "iputils-ping"];
const MARKER_FILE = "etc/pifleet-golden";
/** Written into the golden tree on this run only: a Pi that reads it read this run's export. */
const TOKEN = `golden-${randomUUID()}`;
/** The site synced on this run: what a Pi reads through the shared read-only export. */
const SITE_TOKEN = `site-${randomUUID()}`;

const plan: Plan = planFleet(parseFleet(FLEET, "lab fleet"));
const served = fileserverView(plan);
const shelf = plan.shelves[0];
const [pi01, pi02] = plan.pis;

let lab: Lab;
let fileserver: Vm;
let shelfSwitch: Vm;
let pi: Vm;
let disklessPi: Vm;

/** Values of marker `key` printed during boot `boot`, in order. */
function values(vm: Vm, key: string, boot = 1): string[] {
  return vm.markers.filter((m: Marker) => m.key === key && m.boot === boot).map((m) => m.value);
}
function value(vm: Vm, key: string, boot = 1): string | undefined {
  return values(vm, key, boot)[0];
}
/** `fs-file <path> <base64>` → the file's text as the VM saw it. */
function fileSeen(vm: Vm, file: string, boot = 1): string | undefined {
  const v = values(vm, "fs-file", boot).find((x) => x.startsWith(`${file} `));
  const data = v?.slice(file.length + 1);
  return data === undefined || data === "missing" ? undefined : Buffer.from(data, "base64").toString("utf8");
}

function expectedIfaces(): string[] {
  return served.fileserver.interfaces.map((i) => `${i.name} vlan=${i.vlan} parent=${i.parent} addr=${i.address}/${i.prefixLength} up`);
}

function expectFileserverServes(boot: number): void {
  expect(value(fileserver, "fs-state", boot)).toBe("running");
  expect(value(fileserver, "fs-nfs-server", boot)).toBe("active");
  expect(values(fileserver, "fs-iface", boot)).toEqual(expectedIfaces());
  const all = values(fileserver, "fs-exportfs", boot);
  const store = served.fileserver.contentExport;
  const exported = all.filter((e) => !e.startsWith(`${store} `));
  expect(exported).toHaveLength(plan.pis.length);
  // content: shared — the store to every Pi, read-only and root-squashed.
  const shared = all.filter((e) => e.startsWith(`${store} `));
  expect(shared).toHaveLength(plan.pis.length);
  for (const p of plan.pis) {
    const line = shared.find((e) => e.startsWith(`${store} ${p.piAddress}(`));
    expect(line, `${store} exported to ${p.piAddress}`).toBeDefined();
    expect(line).toMatch(/\bro\b/);
    expect(line).toMatch(/\broot_squash\b/);
    expect(line).not.toMatch(/no_root_squash/);
  }
  for (const p of plan.pis) {
    const line = exported.find((e) => e.startsWith(`${p.nfsRoot} `));
    expect(line, `${p.nfsRoot} exported`).toBeDefined();
    // Exported to that Pi's address only, with the fleet's options.
    expect(line!.slice(p.nfsRoot.length + 1)).toMatch(new RegExp(`^${p.piAddress.replace(/\./g, "\\.")}\\(.*\\brw\\b.*\\)$`));
    expect(line).toContain("no_root_squash");
  }
}

function expectPiMountsOwnRootOnly(boot: number): void {
  expect(value(pi, "pi-link", boot)).toBe(`eth0 ${pi01.piAddress}/${pi01.prefixLength}`);
  expect(value(pi, "pi-ping", boot)).toBe("yes");
  expect(value(pi, "pi-mount-own", boot)).toBe("ok");
  expect(value(pi, "pi-mount-fstype", boot)).toBe(`nfs ${pi01.fileserverAddress}:${pi01.nfsRoot}`);
  expect(value(pi, "pi-golden", boot)).toBe(TOKEN);
  expect(value(pi, "pi-write", boot)).toBe("ok");
  // The server's MOUNT service says no (EACCES), not a network failure: the same Pi just mounted its own root.
  expect(value(pi, "pi-mount-other", boot)).toMatch(/^failed .*(permission denied|access denied)/i);
}

beforeAll(async () => {
  // The VMs run the built agent (the bundle `pifleet install` ships), so build it first.
  await run(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-b", "packages/fileserver-agent"], { cwd: repoRoot });
  lab = await Lab.open("fileserver-vm");
  const [rootfs, app, netboot] = await Promise.all([
    systemdRootfs(lab.kernel, { name: "fileserver-rootfs", packages: FILESERVER_PACKAGES }),
    pifleetApp([{ name: "pifleet-fileserver", role: "fileserver", entry: "packages/fileserver-agent/dist/cli.js" }]),
    netbootInitrd(lab.kernel),
  ]);
  // The seed's shelf in small: fileserver eth0 → trunk port, pi01 → its port, through a switch
  // that carries the plan's VLAN table (Pi ports untagged, the trunk tagged).
  const trunk = await lab.wire("trunk");
  const piCable = await lab.wire("pi01-cable");
  const pi02Cable = await lab.wire("pi02-cable");
  shelfSwitch = switchVm(lab, {
    name: "switch",
    plan: shelf.switch,
    ports: [
      { port: shelf.switch.trunkPort, wire: trunk },
      { port: pi01.port, wire: piCable },
      { port: pi02.port, wire: pi02Cable },
    ],
  });
  fileserver = await lab.systemdVm({
    name: "fileserver",
    rootfs,
    app,
    wires: [trunk],
    payload: {
      "run.sh": readFileSync(path.join(repoRoot, "test/lab/guest/fileserver-apply.sh"), "utf8"),
      env: [
        `IFACES="${served.fileserver.interfaces.map((i) => i.name).join(" ")}"`,
        `EXPORTS="${plan.pis.map((p) => p.nfsRoot).join(" ")}"`,
        `MARKER_FILE=${MARKER_FILE}`,
        "",
      ].join("\n"),
      "fleet.yaml": FLEET,
      "site/index.html": `${SITE_TOKEN}\n`,
      [`golden/${MARKER_FILE}`]: `${TOKEN}\n`,
      "golden/etc/hostname": "pi\n",
      "golden/var/www/html/index.html": "<!doctype html><title>lab</title>\n",
      // Enough of a root for a diskless boot: Debian's initramfs hands over to /sbin/init.
      "golden/bin/busybox": { data: readFileSync("/bin/busybox"), mode: 0o755 },
      "golden/sbin/init": { data: readFileSync(path.join(repoRoot, "test/lab/guest/nfsroot-init.sh")), mode: 0o755 },
    },
  });
  pi = lab.tinyVm({
    name: pi01.name,
    wires: [piCable],
    cmdline: ["lab.after=wait"],
    files: {
      "lab/run.sh": readFileSync(path.join(repoRoot, "test/lab/guest/pi-nfs-check.sh"), "utf8"),
      "lab/env": [
        `PI_ADDR=${pi01.piAddress}`,
        `PREFIX=${pi01.prefixLength}`,
        `FS_ADDR=${pi01.fileserverAddress}`,
        `OWN_EXPORT=${pi01.nfsRoot}`,
        `OTHER_EXPORT=${pi02.nfsRoot}`,
        `MARKER_FILE=${MARKER_FILE}`,
        `OTHER_PI_ADDR=${pi02.piAddress}`,
        `OTHER_FS_ADDR=${pi02.fileserverAddress}`,
        `OTHER_VLAN=${pi02.vlan}`,
        `CONTENT_EXPORT=${served.fileserver.contentExport}`,
        "",
      ].join("\n"),
    },
  });
  // pi02 boots with nothing but the plan's own cmdline for it (and the serial console).
  disklessPi = lab.disklessVm({ name: pi02.name, initrd: netboot, cmdline: pi02.cmdline.split(" "), wires: [pi02Cable] });
  await Promise.all([shelfSwitch.start(), fileserver.start()]);
  await shelfSwitch.waitFor("switch-ready", 3 * MIN);
  await fileserver.waitFor("fileserver-ready", BOOT_TIMEOUT);
  await Promise.all([pi.start(), disklessPi.start()]);
  await Promise.all([pi.waitFor("pi-done", 4 * MIN), disklessPi.waitFor("nfsroot-done", 4 * MIN)]);
}, 30 * MIN);

afterAll(async () => {
  await lab?.close();
}, 2 * MIN);

describe("fileserver VM: the real agent on Debian's kernel, systemd and kernel NFS server", () => {
  it("boots Debian's kernel into systemd with nfs-server active and no VLANs yet", () => {
    expect(value(fileserver, "fs-kernel")).toBe(lab.kernel.release);
    expect(value(fileserver, "fs-state")).toBe("running");
    expect(value(fileserver, "fs-nfs-server")).toBe("active");
    expect(value(fileserver, "fs-vlans-before")).toBe("0");
  });

  it("pifleet-fileserver apply runs live on the host kernel and succeeds", () => {
    expect(value(fileserver, "fs-apply1-stderr")).toBeUndefined();
    expect(value(fileserver, "fs-apply1-exit")).toBe("0");
    expect(value(fileserver, "fs-apply1-actions")).toMatch(/^[1-9]\d* drift=\d+ errors=0 ok=true$/);
    expect(value(fileserver, "fs-plan-live")).toBe("live: network host, nfs host");
    // --live host on a real fileserver: no word of a sandbox.
    expect(value(fileserver, "fs-plan-sandbox-lines")).toBe("0");
  });

  it("brings the trunk up when it is down before the first apply", () => {
    expect(value(fileserver, "fs-trunk-before")).toBe("down");
    expect(value(fileserver, "fs-trunk-after")).toBe("up");
  });

  it("plan --check names Debian's vlan package when ifupdown's VLAN hook is missing", () => {
    expect(value(fileserver, "fs-plan-novlan-exit")).not.toBe("0");
    expect(Number(value(fileserver, "fs-plan-novlan-says"))).toBeGreaterThanOrEqual(1);
  });

  it("creates real 802.1Q interfaces on eth0 with the plan's fileserver addresses", () => {
    expect(expectedIfaces()).toEqual(["eth0.10 vlan=10 parent=eth0 addr=10.46.189.1/30 up", "eth0.11 vlan=11 parent=eth0 addr=10.46.189.5/30 up"]);
    expect(values(fileserver, "fs-iface")).toEqual(expectedIfaces());
  });

  it("writes the plan's persistent network stanzas and exports file", () => {
    expect(fileSeen(fileserver, "/etc/network/interfaces.d/pifleet")).toBe(renderFileserverInterfaces(served));
    expect(fileSeen(fileserver, "/etc/exports.d/pifleet.exports")).toBe(renderExports(served));
  });

  it("exports each Pi's root to that Pi's address only, live in the kernel NFS server", () => {
    expectFileserverServes(1);
  });

  it("fills every Pi's root from the golden tree", () => {
    expect(values(fileserver, "fs-root")).toEqual(plan.pis.map((p) => `${p.nfsRoot} ${TOKEN}`));
  });

  it("content: shared — sync-content writes one copy, every root links its html to the shared mount, and the Pi reads it read-only over NFS", () => {
    expect(value(fileserver, "fs-sync-exit")).toBe("0");
    expect(values(fileserver, "fs-root-html")).toEqual(plan.pis.map((p) => `${p.nfsRoot} /srv/pifleet/site/current`));
    expect(value(pi, "pi-site-mount")).toBe("ok");
    expect(value(pi, "pi-site")).toBe(SITE_TOKEN);
    // Even the Pi's root user cannot change the site for the others.
    expect(value(pi, "pi-site-write")).toMatch(/^refused /);
  });

  it("a second apply finds nothing to do and changes nothing", () => {
    // The fingerprint does see changes: the first apply's.
    expect(value(fileserver, "fs-apply1-unchanged")).toMatch(/^no: /);
    expect(value(fileserver, "fs-apply2-exit")).toBe("0");
    expect(value(fileserver, "fs-apply2-actions")).toMatch(/^0 drift=0 errors=0 /);
    expect(value(fileserver, "fs-apply2-unchanged")).toBe("yes");
    expect(value(fileserver, "fs-plan-check-exit")).toBe("0");
  });

  it("the switch VM carries the plan's VLAN table: the Pi's port untagged in VLAN 10, the trunk tagged", () => {
    expect(value(shelfSwitch, "switch-error")).toBeUndefined();
    expect(value(shelfSwitch, "switch-ready")).toBe("");
    // `bridge vlan show` per port, as the switch VM's kernel has it.
    const ports = new Map(values(shelfSwitch, "switch-port").map((v) => [Number(v.split(" ")[0]), v]));
    const trunkPort = ports.get(shelf.switch.trunkPort)!;
    const piPort = ports.get(pi01.port)!;
    for (const i of served.fileserver.interfaces) expect(trunkPort).toMatch(new RegExp(`\\b${i.vlan}(;| )`));
    expect(trunkPort).not.toMatch(/PVID|Untagged/);
    expect(piPort).toMatch(new RegExp(`\\b${pi01.vlan} PVID Egress Untagged;`));
    expect(piPort).not.toMatch(new RegExp(`\\b${pi02.vlan}\\b`));
  });

  it("the Pi, untagged on its switch port, mounts its own root over NFS, reads the golden marker and writes", () => {
    expectPiMountsOwnRootOnly(1);
  });

  it("the Pi is refused another Pi's export", () => {
    expect(value(pi, "pi-mount-own")).toBe("ok");
    expect(value(pi, "pi-mount-other")).toMatch(/^failed .*(permission denied|access denied)/i);
  });

  it("the Pi cannot pass for another Pi: the switch keeps it out of that Pi's VLAN", () => {
    expect(value(pi, "pi-ping")).toBe("yes");
    expect(value(pi, "pi-spoof-untagged")).toBe("silent");
    expect(value(pi, "pi-spoof-tagged")).toBe("silent");
  });

  it("pi02 boots diskless from the plan's cmdline: Debian's initramfs mounts its export as root over the switch", () => {
    expect(value(disklessPi, "nfsroot-cmdline")!.endsWith(`${pi02.cmdline} console=ttyS0`)).toBe(true);
    expect(value(disklessPi, "nfsroot-addr")).toBe(`eth0 ${pi02.piAddress}/${pi02.prefixLength}`);
    expect(value(disklessPi, "nfsroot-root")).toBe(`nfs ${pi02.fileserverAddress}:${pi02.nfsRoot}`);
    expect(value(disklessPi, "nfsroot-golden")).toBe(TOKEN);
    expect(value(disklessPi, "nfsroot-init")).toBe("pid 1");
  });

  it(
    "after a power cut, VLANs and exports come back from the agent's files alone, the agent changes nothing, and the Pi mounts again",
    async () => {
      // The power cut: QEMU killed mid-flight, then a fresh machine on the same disk.
      await fileserver.restart(1000);
      await fileserver.waitFor("fileserver-ready", BOOT_TIMEOUT);
      expect(value(fileserver, "boot", 2)).toBe("2");
      // Reported before the agent ran on this boot: ifupdown, nfs-server and the files did it all.
      const order = fileserver.markers.filter((m) => m.boot === 2).map((m) => m.key);
      expect(order.indexOf("fs-iface")).toBeGreaterThanOrEqual(0);
      expect(order.indexOf("fs-iface")).toBeLessThan(order.indexOf("fs-apply3-exit"));
      expectFileserverServes(2);
      expect(values(fileserver, "fs-root", 2)).toEqual(plan.pis.map((p) => `${p.nfsRoot} ${TOKEN}`));
      // Before the agent ran: links ifupdown made from pifleet's file carry no alias, and that is no drift.
      expect(value(fileserver, "fs-plan-at-boot-exit-output", 2)).toBeUndefined();
      expect(value(fileserver, "fs-plan-at-boot-exit", 2)).toBe("0");
      // The agent, started again, re-marks its links and otherwise changes nothing.
      expect(value(fileserver, "fs-apply3-exit", 2)).toBe("0");
      expect(value(fileserver, "fs-apply3-actions", 2)).toMatch(/ errors=0 ok=(true|none)$/);
      expect(value(fileserver, "fs-apply3-unchanged", 2)).toBe("yes");
      expect(value(fileserver, "fs-plan-check-exit", 2)).toBe("0");

      await pi.powerCycle(1000);
      await pi.waitFor("pi-done", 3 * MIN);
      expectPiMountsOwnRootOnly(2);
    },
    20 * MIN,
  );
});

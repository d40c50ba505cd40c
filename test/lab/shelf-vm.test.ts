/**
 * A shelf in a box, deployed as a user deploys pifleet, and a hung Pi brought back by its power:
 * - host side (a network namespace this test creates, so nothing touches the host's network):
 *   the coordinator in its foreground mode, HAProxy, and the PoE switch's emulator (real SNMP),
 *   whose port power drives each Pi VM through QMP — off stops the CPU dead, on is a cold boot;
 * - switch VM: a VLAN-filtering bridge with the plan's table (Pi ports untagged in their private
 *   VLAN and tagged in VLAN 131, the fileserver's trunk tagged); its uplink port ends on a tap
 *   device in the namespace, where the fleet's public gateway address lives;
 * - fileserver VM: Debian with systemd, sshd, nfs-kernel-server and dnsmasq. `pifleet install
 *   --role fileserver` over SSH puts the agent there as a systemd unit; its `apply` makes the
 *   VLANs, exports, each Pi's root (from a golden image with Debian's nodejs and Apache), the
 *   DHCP reservations and each Pi's TFTP folder (kernel and initramfs from the Pi's own root);
 * - three Pi VMs with no disk: PXE (iPXE) → DHCP from dnsmasq on their private VLAN → kernel
 *   over TFTP → NFS root → systemd. `pifleet install PI --role pi` over SSH to the booted Pi's
 *   public address; the agent reports over eth0.131.
 * Logs: .artifacts/lab/shelf-vm/ (serial consoles, coordinator, HAProxy, emulator, watch --json).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFleet, plan as planFleet, renderPiAgentConfig, renderPiPublicInterface, type PiPlan, type Plan } from "@pifleet/core";
import { createDriver, type LoadBalancerDriver, type ServerState } from "@pifleet/lb";
import { Lab, macFor, NetNs, pifleetApp, piGolden, repoRoot, run, switchVm, systemdRootfs, TapCable, type PiGolden, type Vm } from "./harness/index.js";
import { HostSide, POE_HOOK } from "./shelf/host.js";
import { NsWatch } from "./shelf/ns-watch.js";

const MIN = 60_000;
const PIS = ["pi01", "pi02", "pi03"];
const GATEWAY = "2001:db8:0:84::1";
const COORD_PORT = 7300;
const SNMP_PORT = 16161;
const SSH_PORT = 2222;
const SITE_PORT = 8080;
const COMMUNITY = "lab-shelf-rw";

const FILESERVER_PACKAGES = ["nfs-kernel-server", "nfs-common", "netbase", "ifupdown", "vlan", "procps", "iputils-ping", "dnsmasq", "openssh-server"];

function fleetYaml(lbSocket: string): string {
  return `# The shelf lab's fleet: the seed's addressing, netbooted Pis, nothing outside the lab.
name: lab
boot:
  mode: netboot
  method: ipxe
  # The lab's Pis are PCs: their console is the serial line the test reads.
  cmdlinePrefix: "console=ttyS0 net.ifnames=0 no_timer_check"
  # rw: the kernel mounts an NFS root read-only otherwise, and the golden image's fstab has no
  # entry for / that would remount it (as the Raspberry Pi netboot guides say, too).
  cmdlineSuffix: "rootwait rw"
switch:
  name: lab-switch
  address: 127.0.0.1
  snmpPort: ${SNMP_PORT}
  snmp: { version: "2c", community: { env: PIFLEET_SNMP_COMMUNITY } }
  trunkPort: 24
  uplinkPorts: [23]
fileserver:
  name: fileserver
  trunkInterface: eth0
  exportRoot: /export
  goldenImage: /srv/pifleet/golden
  content: copy
private:
  range: 10.46.189.0/24
  firstVlan: 10
public:
  prefix: 2001:db8:0:84::/64
  gateway: ${GATEWAY}
loadBalancer:
  driver: haproxy
  socket: ${lbSocket}
  backend: pifleet
# Each Pi's agent config and secret, written into its root by the fileserver agent (the program
# itself is in the golden image): the coordinator at the public VLAN's gateway.
piAgent:
  coordinator: { url: "ws://[${GATEWAY}]:${COORD_PORT}/agent" }
pis:
${PIS.map((name, i) => `  - { name: ${name}, port: ${i + 1}, mac: "${macFor(name, 0)}" }`).join("\n")}
`;
}

let ns: NetNs;
let lab: Lab;
let host: HostSide;
let golden: PiGolden;
let plan: Plan;
let fileserver: Vm;
let shelfSwitch: Vm;
const piVms = new Map<string, Vm>();
let watch: NsWatch;
let lb: LoadBalancerDriver;
let dir: string;
const lbHistory: { at: number; name: string; admin: string; operational: string }[] = [];
let lbPoll: NodeJS.Timeout | undefined;
const timeline: string[] = [];
/** What the bench reads (PIFLEET_LAB_FIGURES): measured here, asserted nowhere. */
const figures = { powerOnToHealthyS: [] as number[], hangToHealthyS: [] as number[], wallS: 0 };
const t0 = Date.now();
const stamp = (what: string) => {
  const line = `[${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${what}`;
  timeline.push(line);
  process.stdout.write(`shelf-vm ${line}\n`);
};

const lbNow = (name: string) => [...lbHistory].reverse().find((h) => h.name === name);
interface PowerAct {
  at: string;
  port: number;
  state: "on" | "off";
  act: string;
  was?: string;
}
/** What the PoE hook did to the Pi VMs, in order (one JSON line per port change). */
const powerLog = (): PowerAct[] => {
  try {
    return readFileSync(path.join(dir, "power.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as PowerAct);
  } catch {
    return [];
  }
};
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
/** An IPv6 address in the form the kernel prints it (RFC 5952); the plan keeps the operator's form (`1000:1::2`). */
const canon6 = (a: string) => new URL(`http://[${a}]/`).hostname.slice(1, -1);
const pi = (name: string): PiPlan => plan.pis.find((p) => p.name === name)!;
const ssh = (target: string, port: number, command: string, input?: string) =>
  host.run(
    ["ssh", "-i", golden.sshKey, "-p", String(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", `UserKnownHostsFile=${path.join(dir, "ssh_known_hosts")}`, "-o", "ConnectTimeout=20", `root@${target}`, command],
    5 * MIN,
    input,
  );
const onFileserver = (command: string, input?: string) => ssh("127.0.0.1", SSH_PORT, command, input);

/** `pifleet install` over SSH to the fileserver VM (its port forwarded to the namespace's loopback). */
function installArgs(role: "fileserver" | "pi", extra: string[]): string[] {
  return ["install", "127.0.0.1", "--role", role, "--port", String(SSH_PORT), "--identity", golden.sshKey, "--known-hosts", path.join(dir, "install_known_hosts"), "--accept-new-host-key", "--timeout", "90", ...extra];
}

beforeAll(async () => {
  await run(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-b", "packages/cli", "packages/coordinator", "packages/fileserver-agent", "packages/pi-agent"], { cwd: repoRoot, timeoutMs: 10 * MIN });
  ns = await NetNs.create();
  // The public VLAN's far end: the gateway address the plan gives every Pi, on the tap the switch VM's uplink port plugs into.
  await ns.tap("uplink0", [`${GATEWAY}/64`]);
  lab = await Lab.open("shelf-vm");
  lab.netns = ns.name;
  dir = lab.logDir;
  stamp(`lab opened (accel ${lab.accel.name}, namespace ${ns.name})`);

  const [rootfs, app, g] = await Promise.all([
    systemdRootfs(lab.kernel, { name: "shelf-fileserver-rootfs", packages: FILESERVER_PACKAGES, sizeMiB: 4096 }),
    pifleetApp([{ name: "pifleet-fileserver", role: "fileserver", entry: "packages/fileserver-agent/dist/cli.js" }]),
    piGolden(lab.kernel),
  ]);
  golden = g;
  stamp("images ready");

  const lbSocket = path.join(dir, "haproxy.sock");
  const fleetFile = path.join(dir, "fleet.yaml");
  const fleetText = fleetYaml(lbSocket);
  writeFileSync(fleetFile, fleetText);
  plan = planFleet(parseFleet(fleetText, fleetFile));
  const shelf = plan.shelves[0];
  host = new HostSide(ns, dir, { PIFLEET_SNMP_COMMUNITY: COMMUNITY, PIFLEET_LOG_LEVEL: "info" });

  // The cables: the fileserver's trunk, one per Pi, the uplink to the host side.
  const trunk = await lab.wire("trunk");
  const cables = await Promise.all(PIS.map((n) => lab.wire(`${n}-cable`)));
  shelfSwitch = switchVm(lab, {
    name: "switch",
    plan: shelf.switch,
    ports: [{ port: shelf.switch.trunkPort, wire: trunk }, ...PIS.map((n, i) => ({ port: pi(n).port, wire: cables[i] })), { port: 23, wire: new TapCable("uplink0") }],
    untagged: [{ port: 23, vlan: 131 }],
  });
  fileserver = await lab.systemdVm({
    name: "fileserver",
    rootfs,
    app,
    wires: [trunk],
    disks: [{ file: golden.image, serial: "pifleet-golden", writable: true }],
    hostLoopback: { forwards: [{ host: SSH_PORT, guest: 22 }] },
    memoryMiB: 1024,
    payload: {
      "run.sh": readFileSync(path.join(repoRoot, "test/lab/guest/shelf-fileserver.sh"), "utf8"),
      authorized_keys: golden.sshPublicKey,
    },
  });
  PIS.forEach((n, i) => piVms.set(n, lab.pxeVm({ name: n, wires: [cables[i]], poweredOff: true })));

  // Host side: enrolment, tokens, HAProxy, the PoE emulator, the coordinator.
  const db = path.join(dir, "coordinator.db");
  const coordinatorConfig = host.writeYaml("coordinator.yaml", {
    fleet: fleetFile,
    listen: { host: "::", port: COORD_PORT },
    database: db,
    staticDir: path.join(repoRoot, "packages/dashboard/dist/public"),
    recovery: {
      enabled: true,
      maxConcurrent: 1,
      darkShare: 0.5,
      suspectActMs: 5000,
      // A TCG Pi VM takes minutes from power-on to its agent's first report.
      bootTimeoutMs: 8 * MIN,
      cyclesBeforeRebuild: 1,
      backoffMs: 10_000,
      powerActionsPerWindow: 12,
      powerWindowMs: 10 * MIN,
      waveSize: 8,
      waveTimeoutMs: 10 * MIN,
    },
    switch: { enabled: true },
    loadBalancer: { enabled: true, sync: true },
  });
  for (const [name, role] of [["fileserver", "fileserver"], ...PIS.map((n) => [n, "pi"])] as const) {
    const r = await host.pifleet(["enroll", name, "--role", role, "--db", db, "--fleet", fleetFile, "--out", path.join(dir, `${name}.secret`)]);
    expect(r.code, r.stderr).toBe(0);
  }
  for (const [name, role] of [["operator", "operator"], ["watcher", "watcher"]]) {
    const r = await host.pifleet(["token", "create", name, "--role", role, "--db", db, "--out", path.join(dir, `${name}.token`)]);
    expect(r.code, r.stderr).toBe(0);
  }
  host.haproxy(lbSocket, `:::${SITE_PORT} v4v6`);
  const powerMap = path.join(dir, "power-map.json");
  writeFileSync(powerMap, JSON.stringify(Object.fromEntries(PIS.map((n) => [String(pi(n).port), piVms.get(n)!.powerSocket]))));
  host.env.PIFLEET_LAB_POWER_MAP = powerMap;
  host.env.PIFLEET_LAB_POWER_LOG = path.join(dir, "power.jsonl");
  host.start("switch-emulator", [process.execPath, path.join(repoRoot, "packages/cli/dist/main.js"), "switch-emulator", "--fleet", fleetFile, "--listen", `127.0.0.1:${SNMP_PORT}`, "--ports-off", "--self-powered", "23,24", "--exec", POE_HOOK]);

  await Promise.all([shelfSwitch.start(), fileserver.start(), ...[...piVms.values()].map((v) => v.start())]);
  const coordinator = host.start("coordinator", [process.execPath, path.join(repoRoot, "packages/coordinator/dist/main.js"), "--config", coordinatorConfig]);
  await host.waitForHttp(`http://[::1]:${COORD_PORT}/healthz`, 60_000, coordinator);
  stamp("coordinator up");
  watch = new NsWatch(ns, [process.execPath, path.join(repoRoot, "packages/cli/dist/main.js"), "watch", "--json", "--url", `ws://[::1]:${COORD_PORT}/feed`, "--token-file", path.join(dir, "watcher.token")], path.join(dir, "watch.jsonl"));
  lb = createDriver("haproxy", { socket: lbSocket, backend: "pifleet" });
  lbPoll = setInterval(() => {
    lb.servers().then(
      (servers: ServerState[]) => {
        for (const s of servers) {
          const last = [...lbHistory].reverse().find((h) => h.name === s.name);
          if (!last || last.admin !== s.admin || last.operational !== s.operational) lbHistory.push({ at: Date.now(), name: s.name, admin: s.admin, operational: s.operational });
        }
      },
      () => undefined,
    );
  }, 500);
  await shelfSwitch.waitFor("switch-ready", 3 * MIN);
  await fileserver.waitFor("fileserver-ready", 10 * MIN);
  stamp("switch and fileserver VMs up");
}, 45 * MIN);

afterAll(async () => {
  if (lbPoll) clearInterval(lbPoll);
  watch?.stop();
  await lb?.close().catch(() => undefined);
  await host?.stop();
  await lab?.close();
  await ns?.close();
  if (timeline.length) writeFileSync(path.join(dir, "timeline.txt"), `${timeline.join("\n")}\n`);
  figures.wallS = (Date.now() - t0) / 1000;
  if (process.env.PIFLEET_LAB_FIGURES) writeFileSync(process.env.PIFLEET_LAB_FIGURES, `${JSON.stringify(figures)}\n`);
}, 3 * MIN);

describe("shelf in a box: pifleet installed as a user installs it, Pis netbooting from the fileserver it manages", () => {
  let fsInstall1 = "";
  let fsInstall2 = "";

  it("pifleet install --role fileserver over SSH enables the agent's unit for real and waits for its first report; a second run changes nothing", async () => {
    const put = await onFileserver("mkdir -p /etc/pifleet && cat > /etc/pifleet/fleet.yaml", readFileSync(path.join(dir, "fleet.yaml"), "utf8"));
    expect(put.code, put.stderr).toBe(0);
    const config = host.writeYaml("fileserver.yaml", {
      fleet: "/etc/pifleet/fleet.yaml",
      coordinator: { url: `ws://10.0.2.2:${COORD_PORT}/agent` },
      identity: "fileserver",
      secretFile: "/etc/pifleet/fileserver.secret",
      live: "host",
    });
    // First a config whose secret is not where it says: the unit fails under the real systemd,
    // and the install says so with the unit's journal.
    const broken = host.writeYaml("fileserver-broken.yaml", { ...JSON.parse(readFileSync(config, "utf8")), secretFile: "/etc/pifleet/no-such.secret" });
    const bad = await host.pifleet(installArgs("fileserver", ["--config", broken, "--secret-file", path.join(dir, "fileserver.secret")]), 10 * MIN);
    stamp(`install fileserver with a broken config: exit ${bad.code}`);
    expect(bad.code).toBe(1);
    // The first install on this host: the unit went in and was enabled for real.
    expect(bad.stdout).toMatch(/systemctl enable pifleet-fileserver\.service/);
    expect(bad.stderr).toMatch(/pifleet-fileserver\.service did not become active .*Last journal lines:/s);
    expect(bad.stderr).toMatch(/no-such\.secret/);
    const args = installArgs("fileserver", [
      "--config", config, "--secret-file", path.join(dir, "fileserver.secret"),
      "--wait-report", "--url", `ws://[::1]:${COORD_PORT}/feed`, "--token-file", path.join(dir, "watcher.token"), "--report-timeout", "180",
    ]);
    const first = await host.pifleet(args, 10 * MIN);
    stamp(`install fileserver: exit ${first.code}; ${first.stdout.trim().split("\n").slice(-2).join(" / ")}`);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    expect(first.stdout).toMatch(/update \/etc\/pifleet\/fileserver\.yaml/);
    expect(first.stdout).toMatch(/first report to the coordinator/);
    const second = await host.pifleet(args, 10 * MIN);
    expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
    expect(second.stdout).toMatch(/no changes: pifleet-fileserver on 127\.0\.0\.1 is already as planned/);
    const active = await onFileserver("systemctl is-active pifleet-fileserver; systemctl is-enabled pifleet-fileserver");
    expect(active.stdout.trim().split("\n")).toEqual(["active", "enabled"]);
  }, 25 * MIN);

  it("pifleet install --role pi --image puts the Pi agent into the golden image on the fileserver; a second run changes nothing", async () => {
    const args = installArgs("pi", ["--prefix", "/srv/pifleet/golden", "--image"]);
    const first = await host.pifleet(args, 10 * MIN);
    stamp(`install pi agent into the golden image: exit ${first.code}`);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    const second = await host.pifleet(args, 10 * MIN);
    expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(0);
    expect(second.stdout).toMatch(/no changes/);
    const seen = await onFileserver("grep ^pifleet: /srv/pifleet/golden/etc/passwd; readlink /srv/pifleet/golden/etc/systemd/system/multi-user.target.wants/pifleet-pi-agent.service; grep -c ^pifleet: /etc/passwd");
    expect(seen.stdout).toMatch(/^pifleet:x:\d+:\d+:/);
    expect(seen.stdout).toContain("/etc/systemd/system/pifleet-pi-agent.service");
    // The user is the image's, not the fileserver's.
    expect(seen.stdout.trim().split("\n").pop()).toBe("0");
    // The Pis' secrets, as issued by `pifleet enroll`, where the fileserver agent takes them from.
    for (const n of PIS) {
      const w = await onFileserver(`install -d -m 0700 /etc/pifleet/pi-secrets && cat > /etc/pifleet/pi-secrets/${n}.secret && chmod 0600 /etc/pifleet/pi-secrets/${n}.secret`, readFileSync(path.join(dir, `${n}.secret`), "utf8"));
      expect(w.code, w.stderr).toBe(0);
    }
  }, 15 * MIN);

  it("the agent's apply builds the VLANs, exports, each Pi's root (its identity, agent config and secret), DHCP and TFTP", async () => {
    // The installed agent's own CLI, as the README tells an operator to run it.
    const r = await onFileserver("node /usr/lib/pifleet/fileserver/main.js apply --live host --json");
    stamp(`fileserver apply: exit ${r.code}`);
    expect(r.code, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    const seen = await onFileserver("ip -br addr show; cat /etc/dnsmasq.d/pifleet.conf; systemctl is-active dnsmasq");
    expect(seen.stdout).toContain("eth0.10@eth0");
    expect(seen.stdout).toMatch(/active\s*$/);
    for (const n of PIS) expect(seen.stdout).toContain(`dhcp-boot=tag:pifleet-${n},${n}/boot.ipxe,,${pi(n).fileserverAddress}`);
    for (const n of PIS) {
      const p = pi(n);
      const root = p.nfsRoot;
      const id = await onFileserver(`cat ${root}/etc/hostname ${root}/etc/network/interfaces.d/${p.publicInterface}`);
      expect(id.stdout).toBe(`${n}\n${renderPiPublicInterface(p)}`);
      const agent = await onFileserver(`cat ${root}/etc/pifleet/pi-agent.yaml; stat -c '%u:%g %a' ${root}/etc/pifleet/pi-agent.secret; grep ^pifleet: ${root}/etc/passwd | cut -d: -f3,4; ls ${p.netboot!.tftpDir}`);
      const [uidgid] = agent.stdout.trim().split("\n").slice(-(1 + 4)).filter((l) => /^\d+:\d+$/.test(l));
      expect(agent.stdout).toContain(renderPiAgentConfig(plan.piAgent!, p, plan.fleet));
      expect(agent.stdout).toContain(`${uidgid} 600`);
      // The TFTP folder: the script, and the kernel and initramfs from the Pi's own root.
      expect(agent.stdout).toContain(golden.kernelFile);
      expect(agent.stdout).toContain(golden.initrdFile);
    }
    await watch.until("the fileserver healthy on the feed", () => watch.fleetStatus?.fileserverHealthy === true, 3 * MIN);
    stamp("fileserver healthy on the feed");
  }, 15 * MIN);

  it("pifleet power-on --all powers the shelf in a wave; each Pi VM netboots (iPXE, DHCP on its VLAN, TFTP, NFS root, systemd) and its agent reports healthy through eth0.131", async () => {
    const r = await host.pifleet(["power-on", "--all", "--reason", "lab shelf cold start", "--url", `ws://[::1]:${COORD_PORT}/feed`, "--token-file", path.join(dir, "operator.token")]);
    const poweredAt = Date.now();
    stamp(`power-on --all: exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    await Promise.all(
      PIS.map(async (n) => {
        const vm = piVms.get(n)!;
        await vm.waitFor("pi-state", 20 * MIN);
        stamp(`${n} up (boot ${vm.bootCount}): ${vm.current("pi-root")[0]?.value}, public ${vm.current("pi-public")[0]?.value}`);
      }),
    );
    for (const n of PIS) {
      const vm = piVms.get(n)!;
      const p = pi(n);
      expect(vm.current("pi-up")[0].value.split(" ")[0]).toBe(n);
      expect(vm.current("pi-root")[0].value).toBe(`nfs ${p.fileserverAddress}:${p.nfsRoot}`);
      expect(vm.current("pi-eth0")[0].value).toBe(`${p.piAddress}/30`);
      expect(vm.current("pi-public")[0].value).toBe(`${canon6(p.ipv6)}/64`);
    }
    await watch.until("every Pi healthy", () => PIS.every((n) => watch.state(n) === "healthy"), 10 * MIN);
    for (const n of PIS) figures.powerOnToHealthyS.push((watch.firstAt(n, "healthy", poweredAt)! - poweredAt) / 1000);
    stamp(`every Pi healthy on the feed (power-on → healthy ${figures.powerOnToHealthyS.map((s) => s.toFixed(0)).join(", ")} s)`);
    // The agents' connections, as the host side's kernel has them: from each Pi's public address.
    const ss = await host.run(["ss", "-Htn", "state", "established", `( sport = :${COORD_PORT} )`]);
    for (const n of PIS) expect(ss.stdout, ss.stdout).toContain(`[${canon6(pi(n).ipv6)}]`);
    // HAProxy has every Pi's Apache, over VLAN 131, up.
    await until("every Pi up in HAProxy", () => PIS.every((n) => lbNow(n)?.operational === "up" && lbNow(n)?.admin === "ready"), 3 * MIN);
    const site = await host.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `http://[::1]:${SITE_PORT}/`]);
    expect(site.stdout).toBe("200");
    // The dashboard is served by the coordinator, with the fleet it shows.
    const dash = await host.run(["curl", "-s", `http://[::1]:${COORD_PORT}/`]);
    expect(dash.stdout).toMatch(/<html/i);
  }, 40 * MIN);

  it("a hung Pi (QMP stop) goes suspect → down, is drained from HAProxy, power-cycled by the PoE switch (hard off, cold boot), netboots and reports healthy", async () => {
    const victim = "pi02";
    const p = pi(victim);
    const vm = piVms.get(victim)!;
    const bootBefore = vm.bootCount;
    const powerFrom = powerLog().length;
    await until("pi02 ready and up in HAProxy", () => lbNow(victim)?.admin === "ready" && lbNow(victim)?.operational === "up", 2 * MIN);
    const hungAt = Date.now();
    // The hang: the VM's CPU stops dead; its agent falls silent mid-stream, nothing is closed.
    await vm.freeze();
    stamp(`${victim} hung (QMP stop)`);
    await watch.until(`${victim} suspect`, () => watch.firstAt(victim, "suspect", hungAt) !== undefined, 2 * MIN);
    stamp(`${victim} suspect`);
    await watch.until(`${victim} down`, () => watch.firstAt(victim, "down", hungAt) !== undefined, 2 * MIN);
    stamp(`${victim} down`);
    await until(`${victim} drained in HAProxy`, () => lbHistory.some((h) => h.name === victim && h.at >= hungAt && h.admin !== "ready"), 2 * MIN);
    stamp(`${victim} drained in HAProxy (${lbHistory.filter((h) => h.name === victim && h.at >= hungAt)[0]?.admin})`);
    await until(`port ${p.port} switched off and on`, () => powerLog().slice(powerFrom).some((e) => e.port === p.port && e.state === "on"), 3 * MIN);
    for (const e of powerLog().slice(powerFrom)) stamp(`PoE port ${e.port} ${e.state} → ${e.act} (was ${e.was})`);
    await until(`${victim} cold-booted`, () => vm.bootCount > bootBefore, MIN);
    await vm.waitFor("pi-state", 15 * MIN);
    stamp(`${victim} up again (boot ${vm.bootCount})`);
    await watch.until(`${victim} healthy again`, () => watch.firstAt(victim, "healthy", hungAt) !== undefined, 10 * MIN);
    figures.hangToHealthyS.push((watch.firstAt(victim, "healthy", hungAt)! - hungAt) / 1000);
    stamp(`${victim} healthy again: hang → healthy ${figures.hangToHealthyS[0].toFixed(1)} s`);
    await until(`${victim} ready in HAProxy again`, () => lbNow(victim)?.admin === "ready", 3 * MIN);

    // The power: this port only, off then on, the VM hard-stopped (already frozen) then cold-booted.
    const acts = powerLog().slice(powerFrom);
    expect(acts.map((e) => e.port)).toEqual(acts.map(() => p.port));
    expect(acts.map((e) => `${e.state}:${e.act}`)).toEqual(["off:none", "on:cold-boot"]);
    // Its root came back over NFS from its own export, its public address on eth0.131.
    expect(vm.current("pi-root")[0].value).toBe(`nfs ${p.fileserverAddress}:${p.nfsRoot}`);
    expect(vm.current("pi-public")[0].value).toBe(`${canon6(p.ipv6)}/64`);
    // The event log, as `pifleet watch --json` delivered it: every step, in order.
    const log = watch.eventsFor(victim, hungAt, ["state", "power", "lb", "recovery"]);
    for (const e of log) stamp(`  event ${new Date(e.timeMs).toISOString()} ${e.kind}: ${e.message}`);
    const story = log.map((e) => `${e.kind}: ${e.message}`);
    const order = [
      (e: (typeof log)[number]) => e.kind === "state" && e.fields.to === "down",
      (e: (typeof log)[number]) => e.kind === "lb" && /^drained in the load balancer/.test(e.message),
      (e: (typeof log)[number]) => e.kind === "power" && new RegExp(`^port ${p.port} off`).test(e.message),
      (e: (typeof log)[number]) => e.kind === "power" && new RegExp(`^port ${p.port} on`).test(e.message),
      (e: (typeof log)[number]) => e.kind === "state" && e.fields.to === "booting",
      (e: (typeof log)[number]) => e.kind === "state" && e.fields.to === "healthy",
    ];
    let at = 0;
    for (const want of order) {
      const i = log.findIndex((e, k) => k >= at && want(e));
      expect(i, story.join("\n")).toBeGreaterThanOrEqual(0);
      at = i + 1;
    }
    // No other Pi was power-cycled, and none went past suspect.
    for (const other of PIS.filter((n) => n !== victim)) expect(watch.trail(other, hungAt).filter((s) => s !== "healthy" && s !== "suspect"), other).toEqual([]);
  }, 40 * MIN);

  it("the fileserver's NFS server stopped: the Pis go stale, none is power-cycled; NFS back, the guard lifts and the Pis are healthy again", async () => {
    await watch.until("every Pi healthy before the NFS outage", () => PIS.every((n) => watch.state(n) === "healthy"), 10 * MIN);
    const powerFrom = powerLog().length;
    const stoppedAt = Date.now();
    const stop = await onFileserver("systemctl stop nfs-server && cat /proc/fs/nfsd/threads 2>/dev/null || echo 0");
    expect(stop.code, stop.stderr).toBe(0);
    stamp("NFS server stopped on the fileserver VM");
    await watch.until("the fileserver unhealthy on the feed", () => watch.fleetStatus?.fileserverHealthy === false, 3 * MIN);
    stamp(`fileserver unhealthy on the feed (${String(watch.fleetStatus?.fileserverReason ?? "")})`);
    await watch.until("a Pi unhealthy (its root is NFS)", () => PIS.some((n) => watch.state(n) !== "healthy"), 5 * MIN);
    stamp(`Pis stale: ${PIS.map((n) => `${n}=${watch.state(n)}`).join(", ")}`);
    // Longer than it takes to judge a silent Pi down and act on it (suspect 2 s, down 3 s, act 5 s):
    // the guard holds, nothing is cycled.
    await new Promise((r) => setTimeout(r, 60_000));
    expect(powerLog().slice(powerFrom)).toEqual([]);
    const started = await onFileserver("systemctl start nfs-server && systemctl is-active nfs-server");
    expect(started.stdout.trim()).toBe("active");
    const restartedAt = Date.now();
    stamp("NFS server started again");
    await watch.until("the fileserver healthy again", () => watch.fleetStatus?.fileserverHealthy === true, 3 * MIN);
    await watch.until("every Pi healthy again", () => PIS.every((n) => watch.state(n) === "healthy" && watch.firstAt(n, "healthy", restartedAt) !== undefined), 10 * MIN);
    stamp(`every Pi healthy again, ${((Date.now() - restartedAt) / 1000).toFixed(0)} s after NFS returned`);
    // Not one power action through the whole outage: the Pis came back by themselves (NFS hard mounts).
    expect(powerLog().slice(powerFrom)).toEqual([]);
    const fleetEvents = watch.eventsFor("fleet", stoppedAt).map((e) => `${e.kind}: ${e.message}`);
    for (const e of fleetEvents) stamp(`  fleet event: ${e}`);
    // The guard in the event log: paused for the fileserver, then resumed.
    const paused = fleetEvents.findIndex((e) => /^recovery: recovery paused: the fileserver is unhealthy/.test(e));
    expect(paused, fleetEvents.join("\n")).toBeGreaterThanOrEqual(0);
    expect(fleetEvents.findIndex((e, i) => i > paused && /^recovery: recovery resumed/.test(e)), fleetEvents.join("\n")).toBeGreaterThan(paused);
  }, 30 * MIN);
});

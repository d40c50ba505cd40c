import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, loadBundle } from "../../packages/cli/src/install/bundle.js";
import { plannedFiles } from "../../packages/cli/src/install/installer.js";
import { ROLES } from "../../packages/cli/src/install/roles.js";
import {
  AARCH64_TCG,
  arm64Image,
  arm64Initramfs,
  arm64SystemdRoot,
  debianKernelArm64,
  guestFile,
  repoRoot,
  Vm,
  type Marker,
  type RootFile,
} from "./harness/index.js";
import { labLog } from "./harness/log.js";
import { startCoordinator, type TestCoordinator } from "./pi-coordinator.js";

/**
 * The Pi agent on a Pi's platform under real systemd: an aarch64 VM (QEMU `virt`, Cortex-A53,
 * TCG) booting Debian's arm64 kernel into an arm64 Debian root made by mmdebstrap, with systemd,
 * Debian's own nodejs (18), perl-base and apache2. The agent is laid out exactly as
 * `pifleet install --role pi` lays it out (the installer's own file list: bundle under
 * /usr/lib/pifleet/pi-agent, config, secret 0600 owned by pifleet, the real unit from systemd/,
 * the polkit rule), enabled, and started by systemd at boot. A check unit in the guest reports
 * what systemd says about it on the serial console; the coordinator runs on the host's loopback,
 * which the guest reaches as 10.0.2.2 (QEMU user network; the guest has no route beyond its /24).
 */

const role = ROLES.pi;
let tmp: string;
let coordinator: TestCoordinator;
let vm: Vm | undefined;
let vmStartedAt = 0;
const marks = new Map<string, Marker>();

const CHECK_UNIT = `[Unit]
Description=pifleet lab: report pifleet-pi-agent's state on the serial console

[Service]
Type=exec
ExecStart=/usr/local/sbin/pifleet-lab-check
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyAMA0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
`;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "pifleet-arm64-"));
  const kernel = await debianKernelArm64();
  const [initramfs, root] = await Promise.all([
    arm64Initramfs(kernel),
    // The user the installer would create (useradd --system --user-group pifleet).
    arm64SystemdRoot(kernel, { name: "pi-arm64-rootfs", packages: ["nodejs", "apache2"], systemUsers: ["pifleet"] }),
  ]);
  coordinator = await startCoordinator(["pi01"]);

  const bundle = path.join(tmp, "bundle");
  await buildBundle(role, { outDir: bundle });
  const config = {
    coordinator: { url: `ws://10.0.2.2:${coordinator.port}/agent` },
    identity: "pi01",
    secretFile: "/etc/pifleet/pi-agent.secret",
    intervalMs: 1000,
  };
  const installed: RootFile[] = plannedFiles(role, bundle, loadBundle(bundle, role), {
    config: Buffer.from(`${JSON.stringify(config, null, 2)}\n`),
    secret: Buffer.from(`${coordinator.secrets.get("pi01")}\n`),
    prefix: "/",
  }).map((f) => ({ path: f.path, data: f.data, mode: f.mode, owner: f.owner }));
  const check: RootFile[] = [
    { path: "/usr/local/sbin/pifleet-lab-check", data: guestFile("pi-agent-check.sh"), mode: 0o755 },
    { path: "/etc/systemd/system/pifleet-lab-check.service", data: CHECK_UNIT, mode: 0o644 },
  ];
  const image = await arm64Image(root, path.join(tmp, "pi01.ext4"), [...installed, ...check], [`${role.unit}.service`, "pifleet-lab-check.service"]);

  const logDir = path.join(repoRoot, ".artifacts/lab/pi-agent-arm64");
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  vm = new Vm({
    name: "pi01",
    arch: "aarch64",
    kernel,
    initrd: initramfs.path,
    accel: AARCH64_TCG,
    workDir: logDir,
    scratchDir: tmp,
    memoryMiB: 768,
    cpus: 2,
    disks: [{ file: image, serial: "lab-root", mode: "overlay" }],
    hostLoopback: true,
    cmdline: ["lab.root=lab-root", "systemd.hostname=pi01"],
  });
  vmStartedAt = Date.now();
  await vm.start();
  const done = await vm.waitFor("check-done", 12 * 60_000);
  for (const m of vm.current()) if (!marks.has(m.key)) marks.set(m.key, m);
  if (done.value !== "ok") throw new Error(`the agent did not become active:\n${vm.tail(80)}`);
}, 40 * 60_000);

afterAll(async () => {
  await vm?.stop();
  await coordinator?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const mark = (key: string) => {
  const m = marks.get(key);
  if (!m) throw new Error(`no marker ${key}\n${vm?.tail(60)}`);
  return m.value;
};

describe("pifleet-pi-agent.service on arm64, Debian's Node 18, real systemd", () => {
  it("runs on the Pi's platform: aarch64, Debian's node 18, perl from perl-base", () => {
    expect(mark("platform")).toMatch(/^aarch64 node v18\.\d+\.\d+ perl 5\.\d+\.\d+$/);
  });

  it("reaches active (running) through READY=1 under Type=notify, NotifyAccess=main, as user pifleet", () => {
    expect(mark("agent-state")).toBe("active");
    expect(mark("agent-unit")).toBe("Type=notify NotifyAccess=main WatchdogUSec=30s User=pifleet");
    // The main PID is node itself (notify-exec.pl exec'd it), with the socket the wrapper passed.
    expect(mark("agent-main")).toMatch(/^pid=\d+ exe=\/usr\/bin\/node user=pifleet fd=1$/);
    // STATUS= lines the agent sent reached systemd too.
    expect(mark("agent-status")).toMatch(/reporting every 1000 ms/);
    expect(Number(mark("agent-active-usec"))).toBeGreaterThan(Number(mark("agent-started-usec")));
  });

  it("keeps its watchdog: WatchdogTimestamp moves with each WATCHDOG=1, no restart, nothing refused", () => {
    const w = /^first=(\d+) last=(\d+) moves=(\d+)$/.exec(mark("watchdog"));
    expect(w, mark("watchdog")).not.toBeNull();
    expect(Number(w![3])).toBe(2);
    expect(Number(w![2])).toBeGreaterThan(Number(w![1]));
    const pid = /^pid=(\d+)/.exec(mark("agent-main"))![1];
    expect(mark("agent-after")).toBe(`state=active pid=${pid} restarts=0`);
    expect(mark("refused")).toBe("0");
  });

  it("reports to the coordinator on the host: pi01 healthy on the feed", async () => {
    const end = Date.now() + 120_000;
    while (!(coordinator.state("pi01") === "PI_STATE_HEALTHY" && coordinator.mirror.pis.get("pi01")?.connected)) {
      if (Date.now() > end) throw new Error(`pi01 is ${coordinator.state("pi01")} on the feed\n${coordinator.log().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The sample carries no name (who sent it is the authenticated connection); the facts say
    // which Node and platform sent it.
    const p = coordinator.mirror.pis.get("pi01")!;
    expect(Number(p.lastSample!.timeMs)).toBeGreaterThan(0);
    expect(p.facts!.arch).toBe("arm64");
    expect(p.facts!.nodeVersion).toMatch(/^v18\./);
    const activeAtMs = marks.get("agent-state")!.atMs;
    labLog.info(
      {
        bootToActiveS: Number(mark("agent-active-usec")) / 1e6,
        unitStartToActiveS: (Number(mark("agent-active-usec")) - Number(mark("agent-started-usec"))) / 1e6,
        qemuStartToActiveSeenS: activeAtMs / 1000,
        qemuStartToFirstReportS: (coordinator.firstReportAt.get("pi01")! - vmStartedAt) / 1000,
        agentRssMiB: Number(mark("agent-rss-kib")) / 1024,
      },
      "arm64 VM figures",
    );
  });
});

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, type BundleManifest } from "../../packages/cli/src/install/bundle.js";
import { ROLES } from "../../packages/cli/src/install/roles.js";
import { startApache, type ApacheInstance } from "../apache/apache-server.js";
import { listenNotify, type NotifySocket } from "../systemd/notify-socket.js";
import { chrootRunner, debianUserland, foreignBinaries, repoRoot } from "./harness/index.js";
import { labLog } from "./harness/log.js";
import { startCoordinator, type TestCoordinator } from "./pi-coordinator.js";

/**
 * The Pi agent bundle `pifleet install` ships, on the Node a Pi has: Debian bookworm's own
 * `nodejs` (18) and `perl-base`, for armhf (a Raspberry Pi OS 32-bit Pi) run through
 * qemu-arm-static, and for amd64 natively. Each runs in its Debian user land (a chroot in a
 * private mount namespace: the same binaries a Pi runs, perl and its Socket module included),
 * started the way the unit starts it — perl notify-exec.pl, then node — with a notify socket this
 * test binds and a real coordinator and Apache on the host's loopback.
 */

const WATCHDOG_USEC = 2_000_000; // a ping a second
let tmp: string;
let bundle: string;
let manifest: BundleManifest;
let coordinator: TestCoordinator;
let apache: ApacheInstance;
const roots = new Map<string, string>();
const children: ChildProcess[] = [];
const sockets: NotifySocket[] = [];
let releaseArm: (() => void) | undefined;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "pifleet-node18-"));
  releaseArm = await foreignBinaries("arm");
  // Both user lands at once: each is one mmdebstrap download, cached afterwards.
  const [armhf, amd64] = await Promise.all([debianUserland("armhf", ["nodejs", "perl-base"]), debianUserland("amd64", ["nodejs", "perl-base"])]);
  roots.set("armhf", armhf);
  roots.set("amd64", amd64);
  bundle = path.join(tmp, "bundle");
  manifest = await buildBundle(ROLES.pi, { outDir: bundle });
  coordinator = await startCoordinator(["pi01", "pi02"]);
  apache = await startApache();
}, 15 * 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const s of sockets) s.close();
  await coordinator?.stop();
  await apache?.stop();
  releaseArm?.();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** argv running `program` in the user land of `arch`, with the bundle at /opt/pifleet and the test's files at /run/pifleet. */
function inRoot(arch: string, etc: string, program: string[]): string[] {
  return chrootRunner(roots.get(arch)!, { [bundle]: "opt/pifleet", [etc]: "run/pifleet" }, program);
}

const cases = [
  { arch: "armhf", pi: "pi01", nodeArch: "arm", emulated: true },
  { arch: "amd64", pi: "pi02", nodeArch: "x64", emulated: false },
] as const;

/**
 * Requests to "localhost" (::1 and 127.0.0.1; the server listens on one) aborted at all points
 * of their connect, thousands of times: with Node's own autoSelectFamily this kills Node 18 with
 * ERR_INTERNAL_ASSERTION (the control proves the hazard is real here); the agent's httpGet must
 * survive it.
 */
const ABORT_LOOP = `
import http from "node:http";
const mode = process.argv[2];
const { httpGet } = await import("/run/pifleet/http-get/main.js");
const srv = http.createServer((q, s) => s.end("ok")).listen(0, "127.0.0.1", async () => {
  const url = "http://localhost:" + srv.address().port + "/";
  const both = (h, o, cb) => (o && o.all ? cb(null, [{ address: "::1", family: 6 }, { address: "127.0.0.1", family: 4 }]) : cb(null, "::1", 6));
  let ok = 0;
  for (let i = 0; i < 2000; i++) {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("deadline")), i % 5);
    if (mode === "agent") {
      await httpGet(url, { signal: ac.signal }).then(() => ok++, () => undefined);
    } else {
      await new Promise((done) => {
        const r = http.request(url, { agent: false, lookup: both, autoSelectFamily: true, signal: ac.signal }, (res) => { res.resume(); res.on("end", () => (ok++, done())); res.on("error", done); });
        r.on("error", done);
        r.end();
      });
    }
  }
  process.stdout.write("survived " + ok + "\\n");
  process.exit(0);
});
`;

describe("the Pi agent bundle on Debian's own Node 18", () => {
  it("is the bundle pifleet install ships for a Pi: no native addon, built for Node 18", () => {
    expect(manifest).toMatchObject({ role: "pi", minNode: 18, natives: [], arch: null });
    expect(manifest.files.map((f) => f.path).sort()).toEqual(["main.js", "notify-exec.pl", "package.json"]);
  });

  it("amd64: the agent's HTTP GET survives requests aborted mid-connect, where Node 18's autoSelectFamily dies", async () => {
    const etc = path.join(tmp, "etc-abort");
    mkdirSync(etc, { recursive: true });
    // The agent's http-get module, bundled the way the Pi bundle is (esbuild, node18 target).
    await buildBundle(ROLES.pi, { outDir: path.join(etc, "http-get"), entry: path.join(repoRoot, "packages/pi-agent/dist/http-get.js") });
    writeFileSync(path.join(etc, "abort-loop.mjs"), ABORT_LOOP);
    const runLoop = (mode: string) => {
      const [cmd, ...args] = inRoot("amd64", etc, ["/usr/bin/node", "/run/pifleet/abort-loop.mjs", mode]);
      return spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
    };
    const control = runLoop("autoSelectFamily");
    expect(control.status, control.stdout).not.toBe(0);
    expect(control.stderr).toContain("ERR_INTERNAL_ASSERTION");
    const agent = runLoop("agent");
    expect(agent.stderr).not.toContain("ERR_INTERNAL_ASSERTION");
    expect(agent.status, agent.stderr).toBe(0);
    expect(agent.stdout).toMatch(/^survived \d+\n$/);
    // Plenty got through despite the deadlines: the fallback from ::1 to 127.0.0.1 works.
    expect(Number(/\d+/.exec(agent.stdout)![0])).toBeGreaterThan(100);
  }, 5 * 60_000);

  for (const c of cases) {
    it(`${c.arch}${c.emulated ? " (qemu-arm-static)" : ""}: READY=1 and WATCHDOG=1 from the agent's own PID through notify-exec.pl, and its reports make ${c.pi} healthy on the coordinator`, async () => {
      const etc = path.join(tmp, `etc-${c.arch}`);
      mkdirSync(etc, { recursive: true });
      const [vcmd, ...vargs] = inRoot(c.arch, etc, ["/usr/bin/node", "-p", "process.version + ' ' + process.arch"]);
      const version = spawnSync(vcmd, vargs, { encoding: "utf8", timeout: 60_000 });
      expect(version.stdout.trim(), version.stderr).toMatch(new RegExp(`^v18\\.\\d+\\.\\d+ ${c.nodeArch}$`));

      writeFileSync(path.join(etc, "pi-agent.secret"), `${coordinator.secrets.get(c.pi)}\n`, { mode: 0o600 });
      writeFileSync(
        path.join(etc, "pi-agent.yaml"),
        `${JSON.stringify({
          coordinator: { url: `ws://127.0.0.1:${coordinator.port}/agent` },
          identity: c.pi,
          secretFile: "/run/pifleet/pi-agent.secret",
          intervalMs: 1000,
          collectors: { apache: { url: apache.statusUrl }, probe: { url: `${apache.base}/` } },
        })}\n`,
      );
      // systemd's side, in the abstract namespace: the chroot does not hide it.
      const notify = await listenNotify(`@pifleet-node18-${process.pid}-${c.arch}`);
      sockets.push(notify);
      const [cmd, ...args] = inRoot(c.arch, etc, ["/usr/bin/perl", "/opt/pifleet/notify-exec.pl", "/usr/bin/node", "/opt/pifleet/main.js", "--config", "/run/pifleet/pi-agent.yaml"]);
      const started = Date.now();
      const child = spawn(cmd, args, {
        env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: String(WATCHDOG_USEC), PIFLEET_LOG_FORMAT: "json", PIFLEET_LOG_LEVEL: "info" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      children.push(child);
      let log = "";
      child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
      const waitFor = async (what: string, ok: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!ok()) {
          if (Date.now() > end || child.exitCode !== null) {
            throw new Error(`${c.arch}: ${child.exitCode !== null ? `agent exited (${child.exitCode})` : "timed out"} waiting for ${what}\n--- agent\n${log.slice(-3000)}\n--- coordinator\n${coordinator.log().slice(-1500)}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const ready = () => notify.got.findIndex((d) => d.text.split("\n").includes("READY=1"));
      await waitFor("READY=1", () => ready() >= 0, 180_000);
      const readyAfterMs = notify.got[ready()].at - started;
      await waitFor("two WATCHDOG=1 after READY=1", () => notify.got.slice(ready()).filter((d) => d.text === "WATCHDOG=1").length >= 2, 30_000);
      const fine = () => coordinator.state(c.pi) === "PI_STATE_HEALTHY" && coordinator.mirror.pis.get(c.pi)?.connected === true;
      await waitFor(`${c.pi} healthy on the coordinator's feed`, fine, 120_000);
      const firstReportAfterMs = coordinator.firstReportAt.get(c.pi)! - started;
      labLog.info({ arch: c.arch, readyAfterMs, firstReportAfterMs }, "Pi agent on Node 18");

      // Every datagram came from the PID that was started: the wrapper, which exec made the agent.
      expect(new Set(notify.got.map((d) => d.pid))).toEqual(new Set([child.pid]));
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0");
      expect(cmdline).toContain("/opt/pifleet/main.js");
      expect(cmdline).not.toContain("/opt/pifleet/notify-exec.pl");
      // No fallback was needed (the agent would log it).
      expect(log).not.toContain("sd_notify");
      const p = coordinator.mirror.pis.get(c.pi)!;
      expect(Number(p.lastSample!.timeMs)).toBeGreaterThan(0);
      expect(p.facts!.nodeVersion).toMatch(/^v18\./);
      expect(p.facts!.arch).toBe(c.nodeArch);

      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      expect(await exited, log.slice(-2000)).toBe(0);
      expect(notify.got.some((d) => d.text === "STOPPING=1" && d.pid === child.pid)).toBe(true);
    }, 6 * 60_000);
  }
});

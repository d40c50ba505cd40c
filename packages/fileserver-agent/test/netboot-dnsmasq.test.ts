import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { checkFleet, fileserverView, plan, type FileserverView } from "@pifleet/core";
import { createLayout, diffNetboot, DnsmasqOptionsSchema, executeActions, ExecRunner, observeNetboot, type Action, type DriftEntry, type Live } from "@pifleet/fileserver-agent";
import { repo, tempDir } from "./helpers.js";

/**
 * The real dnsmasq, serving real DHCP on veth pairs inside a network namespace this test creates
 * (named like the fileserver's VLAN interfaces: eth0.10 ↔ the Pi's pi01). The agent's netboot
 * reconcile writes its files and reloads it; busybox's udhcpc plays the Pi's boot ROM.
 */
const OFF: Live = { network: "off", nfs: "off", notes: [] };
const t = tempDir("dnsmasq-live");
const f = (name: string) => path.join(t.dir, name);
let holder: ChildProcess;
const ns = () => ["--net=/proc/" + holder.pid + "/ns/net"];
const inNs = (args: string[]) => execFileSync("nsenter", [...ns(), ...args], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] });

function seedPlan(edit: (fl: Record<string, any>) => void = () => undefined): FileserverView {
  const fl = parse(readFileSync(path.join(repo, "examples/seed-8-netboot.yaml"), "utf8")) as Record<string, any>;
  fl.fileserver.exportRoot = f("export");
  fl.fileserver.goldenImage = f("golden");
  edit(fl);
  return fileserverView(plan(checkFleet(fl)));
}

const options = () =>
  DnsmasqOptionsSchema.parse({
    confFile: f("etc/dnsmasq.d/pifleet.conf"),
    hostsFile: f("etc/pifleet/dnsmasq.hosts"),
    control: "on",
    reload: ["sh", "-c", `kill -HUP "$(cat ${f("dnsmasq.pid")})"`],
    restart: [f("restart.sh")],
  });

/** One reconcile of the netboot part: observe, diff, run. */
async function reconcile(view: FileserverView): Promise<{ drift: DriftEntry[]; actions: Action[] }> {
  const runner = new ExecRunner();
  const layout = createLayout(view, "");
  const obs = await observeNetboot(view, layout, runner, options());
  const drift: DriftEntry[] = [];
  const actions: Action[] = [];
  diffNetboot(view, layout, OFF, obs, drift, actions);
  const result = await executeActions(actions, { runner });
  expect(result.ok, result.failed?.error).toBe(true);
  return { drift, actions };
}

/** A DHCP exchange from the Pi's side; the address it was given, or undefined when none was offered. */
function dhcp(link: string, request?: string): { ip?: string; router?: string; siaddr?: string; boot?: string } {
  const log = f(`udhcpc-${link}.log`);
  writeFileSync(log, "");
  try {
    inNs(["busybox", "udhcpc", "-i", link, "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", f("udhcpc.sh"), ...(request ? ["-r", request] : [])]);
  } catch {
    return {};
  }
  const bound = readFileSync(log, "utf8").split("\n").find((l) => l.startsWith("bound "));
  if (!bound) return {};
  return Object.fromEntries(bound.slice(6).split(" ").map((kv) => kv.split("=") as [string, string]));
}

const pid = () => Number(readFileSync(f("dnsmasq.pid"), "utf8").trim());
const leases = () => readFileSync(f("leases"), "utf8");

beforeAll(() => {
  holder = spawn("unshare", ["-n", "sleep", "600"], { stdio: "ignore" });
  execFileSync("sleep", ["0.3"]);
  writeFileSync(f("udhcpc.sh"), `#!/bin/sh\n[ "$1" = bound ] && echo "bound ip=$ip router=$router siaddr=$siaddr boot=$boot_file" >> ${f("udhcpc-")}$interface.log\nexit 0\n`);
  chmodSync(f("udhcpc.sh"), 0o755);
  // Stop the running dnsmasq (if any), wait until it is gone, start the new one in the test's namespace.
  writeFileSync(
    f("restart.sh"),
    `#!/bin/sh\nold=$(cat ${f("dnsmasq.pid")} 2>/dev/null)\nif [ -n "$old" ]; then kill "$old"; while kill -0 "$old" 2>/dev/null; do sleep 0.05; done; fi\n` +
      `exec nsenter ${ns()[0]} dnsmasq --conf-file=${f("etc/dnsmasq.d/pifleet.conf")} --dhcp-leasefile=${f("leases")} --pid-file=${f("dnsmasq.pid")} -u root --log-facility=${f("dnsmasq.log")} --log-dhcp\n`,
  );
  chmodSync(f("restart.sh"), 0o755);
  inNs(["ip", "link", "set", "lo", "up"]);
  for (const [vlan, n] of [[10, 1], [11, 2]]) {
    inNs(["ip", "link", "add", `eth0.${vlan}`, "type", "veth", "peer", "name", `pi0${n}`]);
    inNs(["ip", "addr", "add", `10.46.189.${4 * (n - 1) + 1}/30`, "dev", `eth0.${vlan}`]);
    inNs(["ip", "link", "set", `eth0.${vlan}`, "up"]);
    inNs(["ip", "link", "set", `pi0${n}`, "address", `b8:27:eb:00:00:0${n}`]);
    inNs(["ip", "link", "set", `pi0${n}`, "up"]);
  }
});

afterAll(() => {
  try {
    process.kill(pid());
  } catch {
    // not started
  }
  holder?.kill();
  t.cleanup();
});

describe("dnsmasq reconcile against a real dnsmasq in a network namespace", () => {
  it("serves each Pi its reservation on its own VLAN only; reservations reload on SIGHUP and options on restart, leases kept", async () => {
    const first = await reconcile(seedPlan());
    expect(first.actions.find((a) => a.kind === "dhcp")?.why).toContain("restarted");
    const started = pid();

    // pi01's boot ROM: its /30 address, next-server the fileserver's end, no default route.
    expect(dhcp("pi01")).toEqual({ ip: "10.46.189.2", router: "", siaddr: "10.46.189.1", boot: "bootcode.bin" });
    // On another VLAN, pi01's MAC gets nothing: its reservation lies outside that VLAN's /30.
    inNs(["ip", "link", "set", "pi02", "address", "b8:27:eb:00:00:01"]);
    expect(dhcp("pi02")).toEqual({});
    inNs(["ip", "link", "set", "pi02", "address", "b8:27:eb:00:00:02"]);
    expect(dhcp("pi02").ip).toBe("10.46.189.6");
    expect(leases()).toMatch(/ b8:27:eb:00:00:01 10\.46\.189\.2 pi01 /);
    expect(leases()).toMatch(/ b8:27:eb:00:00:02 10\.46\.189\.6 pi02 /);

    // A new MAC for pi03 (its board replaced): only the reservations file changes → SIGHUP, same process.
    const sighup = await reconcile(seedPlan((fl) => (fl.pis[2].mac = "b8:27:eb:00:00:33")));
    expect(sighup.drift.filter((d) => d.kind === "dhcp").map((d) => d.subject)).toEqual([f("etc/pifleet/dnsmasq.hosts")]);
    expect(sighup.actions.at(-1)?.steps.at(-1)).toEqual({ op: "exec", cmd: "sh", args: ["-c", `kill -HUP "$(cat ${f("dnsmasq.pid")})"`] });
    expect(pid()).toBe(started);
    expect(readFileSync(f("dnsmasq.log"), "utf8")).toMatch(/read .*dnsmasq\.hosts/);
    expect(leases()).toMatch(/ b8:27:eb:00:00:01 10\.46\.189\.2 pi01 /);
    expect(dhcp("pi01", "10.46.189.2").ip).toBe("10.46.189.2");

    // pi05 back to its SD card: the options change → restart; the leases come back from the lease file.
    const restart = await reconcile(seedPlan((fl) => {
      fl.pis[2].mac = "b8:27:eb:00:00:33";
      fl.pis[4].boot = "sd";
    }));
    expect(restart.actions.find((a) => a.kind === "dhcp")?.why).toContain("restarted (leases kept in its lease file)");
    expect(pid()).not.toBe(started);
    expect(leases()).toMatch(/ b8:27:eb:00:00:01 10\.46\.189\.2 pi01 /);
    expect(leases()).toMatch(/ b8:27:eb:00:00:02 10\.46\.189\.6 pi02 /);
    expect(dhcp("pi02", "10.46.189.6").ip).toBe("10.46.189.6");
    expect(readFileSync(f("etc/dnsmasq.d/pifleet.conf"), "utf8")).not.toContain("eth0.14");
  }, 60_000);
});

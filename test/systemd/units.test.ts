import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execStartOf, layoutOf, ROLES } from "../../packages/cli/src/install/roles.js";

/**
 * `systemd-analyze verify` exits 0 on unknown keys and bad values (it only logs them), so every
 * check here also requires empty output. Its ExecStart check is done honestly with --root: a
 * temp tree laid out as `pifleet install` lays out a host (/usr/bin/node, /usr/lib/pifleet/<role>/
 * main.js, the units in /etc/systemd/system) plus a copy of this machine's own systemd units so
 * the targets the units name (multi-user.target, network-online.target) resolve. /usr/bin/node
 * in the tree is an empty executable file: verify checks that the program exists and is
 * executable, not what it is.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const roles = Object.values(ROLES);
let root: string;

function analyze(args: string[]): { status: number | null; output: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "" } });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const verify = (unitFile: string) => analyze(["verify", `--root=${root}`, "--man=no", unitFile]);
const unitPath = (unit: string) => path.join(root, "etc/systemd/system", `${unit}.service`);

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "pifleet-units-"));
  cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  mkdirSync(path.join(root, "usr/bin"), { recursive: true });
  // A merged-/usr host (Debian 12): /bin is /usr/bin, where procps's kill (ExecReload) and
  // coreutils' mkdir (the fileserver's ExecStartPre) live.
  symlinkSync("usr/bin", path.join(root, "bin"));
  for (const program of ["usr/bin/node", "usr/bin/perl", "usr/bin/kill", "usr/bin/mkdir"]) {
    writeFileSync(path.join(root, program), "");
    chmodSync(path.join(root, program), 0o755);
  }
  mkdirSync(path.join(root, "etc/systemd/system"), { recursive: true });
  for (const role of roles) {
    const layout = layoutOf(role, root);
    mkdirSync(layout.libDir, { recursive: true });
    writeFileSync(path.join(layout.libDir, "main.js"), "");
    cpSync(path.join(repo, "systemd", `${role.unit}.service`), layout.unit);
  }
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("systemd units", () => {
  for (const role of roles) {
    it(`${role.unit}.service passes systemd-analyze verify with no warnings`, () => {
      const r = verify(unitPath(role.unit));
      expect(r.output).toBe("");
      expect(r.status).toBe(0);
    });
  }

  it("the verify check catches what it is meant to (so an empty output means something)", () => {
    const unit = readFileSync(unitPath("pifleet-coordinator"), "utf8");
    const typo = path.join(root, "etc/systemd/system/typo.service");
    writeFileSync(typo, unit.replace("UMask=0077", "UMsk=0077").replace("RestrictRealtime=yes", "RestrictRealtime=maybe"));
    const r = verify(typo);
    expect(r.status).toBe(0); // why exit status alone proves nothing
    expect(r.output).toContain("Unknown key 'UMsk' in section [Service]");
    expect(r.output).toContain("Failed to parse boolean value, ignoring: maybe");

    const noPerl = path.join(root, "etc/systemd/system/noperl.service");
    writeFileSync(noPerl, unit.replace("ExecStart=/usr/bin/perl ", "ExecStart=/usr/bin/perl5 "));
    expect(verify(noPerl).output).toContain("Command /usr/bin/perl5 is not executable");
  });

  for (const role of roles) {
    it(`${role.unit}.service runs the installed layout with Type=notify, a watchdog and JSON logs`, () => {
      const text = readFileSync(path.join(repo, "systemd", `${role.unit}.service`), "utf8");
      const keys = directives(text);
      expect(keys.get("ExecStart")).toEqual([execStartOf(role)]);
      // perl runs the bundle's notify-exec.pl, which execs node: node stays the main PID.
      expect(execStartOf(role)).toBe(`/usr/bin/perl /usr/lib/pifleet/${role.name}/notify-exec.pl /usr/bin/node /usr/lib/pifleet/${role.name}/main.js --config /etc/pifleet/${role.name}.yaml`);
      expect(keys.get("Type")).toEqual(["notify"]);
      expect(keys.get("NotifyAccess")).toEqual(["main"]);
      expect(keys.get("WatchdogSec")).toEqual(["30s"]);
      expect(keys.get("Restart")).toEqual(["on-failure"]);
      expect(keys.get("SyslogIdentifier")).toEqual([role.unit]);
      expect(keys.get("Environment")?.join(" ")).toContain("PIFLEET_LOG_FORMAT=json");
      expect(keys.get("User")).toEqual([role.user]);
      expect(keys.get("NoNewPrivileges")).toEqual(["yes"]);
      expect(keys.get("ProtectSystem")).toEqual(["strict"]);
      expect(keys.get("SystemCallFilter")?.[0]).toBe("@system-service");
    });
  }

  it("capabilities: none for the coordinator and the Pi agent; the fileserver agent's are listed", () => {
    const caps = (unit: string) => directives(readFileSync(path.join(repo, "systemd", `${unit}.service`), "utf8")).get("CapabilityBoundingSet");
    expect(caps("pifleet-coordinator")).toEqual([""]);
    expect(caps("pifleet-pi-agent")).toEqual([""]);
    expect(caps("pifleet-fileserver")?.[0].split(" ")).toContain("CAP_NET_ADMIN");
    const fs = directives(readFileSync(path.join(repo, "systemd", "pifleet-fileserver.service"), "utf8"));
    expect(fs.get("RestrictAddressFamilies")).toEqual(["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]);
    expect(fs.get("ReadWritePaths")?.join(" ")).toMatch(/-\/export\b.*-\/etc\/exports\.d.*-\/etc\/network\/interfaces\.d.*-\/etc\/systemd\/network/);
    // dnsmasq's two files (netboot), and an export root that a fresh fileserver does not have yet:
    // a missing ReadWritePaths= entry stops the unit at its NAMESPACE step.
    expect(fs.get("ReadWritePaths")?.join(" ").split(" ")).toEqual(expect.arrayContaining(["-/etc/dnsmasq.d", "-/etc/pifleet"]));
    expect(fs.get("ExecStartPre")).toEqual(["+/bin/mkdir -p /export"]);
  });

  // systemd's own exposure score (0 = locked down, 10 = a default service). The thresholds are
  // this project's bar: a service with a plain [Service] section scores about 9.6.
  const bar: Record<string, number> = { "pifleet-coordinator": 2.0, "pifleet-pi-agent": 2.0, "pifleet-fileserver": 4.0 };
  for (const role of roles) {
    it(`${role.unit}.service is hardened: systemd-analyze security exposure ≤ ${bar[role.unit]}`, () => {
      const r = analyze(["security", "--offline=yes", `--root=${root}`, `--threshold=${bar[role.unit] * 10}`, "--no-pager", unitPath(role.unit)]);
      const level = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.output)?.[1];
      expect(Number(level)).toBeLessThanOrEqual(bar[role.unit]);
      expect(r.status).toBe(0);
    });
  }

  it("the threshold check fails for an unhardened unit", () => {
    const plain = path.join(root, "etc/systemd/system/plain.service");
    writeFileSync(plain, "[Service]\nType=notify\nExecStart=/usr/bin/node /usr/lib/pifleet/coordinator/main.js\n");
    const r = analyze(["security", "--offline=yes", `--root=${root}`, "--threshold=20", "--no-pager", plain]);
    expect(r.status).not.toBe(0);
  });
});

describe("the Pi agent's polkit rule", () => {
  const rules: Array<(action: unknown, subject: unknown) => unknown> = [];
  const polkit = { Result: { YES: "yes", NO: "no" }, addRule: (f: (a: unknown, s: unknown) => unknown) => rules.push(f) };
  runInNewContext(readFileSync(path.join(repo, "systemd/pifleet-pi-agent.rules"), "utf8"), { polkit });
  const decide = (user: string, id: string, details: Record<string, string> = {}) =>
    rules[0]({ id, lookup: (k: string) => details[k] }, { user });

  it("lets user pifleet restart apache2 and reboot, and nothing else", () => {
    expect(rules).toHaveLength(1);
    expect(decide("pifleet", "org.freedesktop.systemd1.manage-units", { unit: "apache2.service", verb: "restart" })).toBe("yes");
    expect(decide("pifleet", "org.freedesktop.login1.reboot")).toBe("yes");
    expect(decide("pifleet", "org.freedesktop.systemd1.manage-units", { unit: "apache2.service", verb: "stop" })).toBeUndefined();
    expect(decide("pifleet", "org.freedesktop.systemd1.manage-units", { unit: "ssh.service", verb: "restart" })).toBeUndefined();
    expect(decide("pifleet", "org.freedesktop.login1.power-off")).toBeUndefined();
    expect(decide("www-data", "org.freedesktop.login1.reboot")).toBeUndefined();
  });
});

/** [Service]-section style directives by key (every occurrence, in order); `Key=` gives "". */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

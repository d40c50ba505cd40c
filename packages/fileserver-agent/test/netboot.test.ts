import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileserverView, plan, checkFleet, renderDnsmasqConf, type FileserverView } from "@pifleet/core";
import { buildReport, DnsmasqOptionsSchema, ExecRunner, Fileserver, formatActions, initSandbox, type CommandRunner, type Live, type RunResult } from "@pifleet/fileserver-agent";
import { parse } from "yaml";
import { repo, tempDir } from "./helpers.js";

// Real files, the real dnsmasq binary (--test), no network: live=off, so ip/exportfs are not asked.
const OFF: Live = { network: "off", nfs: "off", notes: [] };

export function netbootSeed(edit: (f: Record<string, any>) => void = () => undefined): FileserverView {
  const f = parse(readFileSync(path.join(repo, "examples/seed-8-netboot.yaml"), "utf8")) as Record<string, any>;
  edit(f);
  return fileserverView(plan(checkFleet(f)));
}

/** The real programs, every call recorded. */
class RecordingRunner implements CommandRunner {
  readonly calls: string[] = [];
  private readonly real = new ExecRunner();
  run(cmd: string, args: string[]): Promise<RunResult> {
    this.calls.push([cmd, ...args].join(" "));
    return this.real.run(cmd, args);
  }
}

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir("netboot");
  initSandbox(t.dir, netbootSeed());
  // The golden image's boot folder, as Raspberry Pi OS has it: every root built from it brings its kernel.
  const fw = path.join(t.dir, "srv/pifleet/golden/boot/firmware");
  mkdirSync(path.join(fw, "overlays"), { recursive: true });
  for (const [name, text] of [
    ["bootcode.bin", "bootcode"],
    ["start.elf", "start"],
    ["fixup.dat", "fixup"],
    ["kernel8.img", "kernel-6.6"],
    ["bcm2710-rpi-3-b-plus.dtb", "dtb"],
    ["overlays/vc4-kms-v3d.dtbo", "overlay"],
    ["initramfs8", "initramfs"],
    ["config.txt", "# the SD card's own config.txt, not served"],
  ]) {
    writeFileSync(path.join(fw, name), text);
  }
});
afterEach(() => t.cleanup());

const opts = (extra: Record<string, unknown> = {}) => DnsmasqOptionsSchema.parse({ control: "off", ...extra });

describe("fileserver agent: dnsmasq and TFTP folders from the plan", () => {
  it("writes the TFTP folders from each Pi's own root and dnsmasq's files checked by the real dnsmasq --test; a second run does nothing", async () => {
    const runner = new RecordingRunner();
    const fs = new Fileserver({ plan: netbootSeed(), runner, live: OFF, prefix: t.dir, dnsmasq: opts() });
    // One apply on a fresh fileserver: the roots are created from the golden image (no kernel to
    // serve when it looked), then a second look fills each TFTP folder from its new root.
    const first = await fs.apply();
    expect(first.result?.ok, first.result?.failed?.error).toBe(true);
    expect(first.diff.drift).toContainEqual({ kind: "tftp", subject: "pi01", detail: `${t.dir}/export/10.46.189.2: the Pi's root does not exist yet, so there is no kernel to serve` });
    const kinds = first.diff.actions.map((a) => `${a.kind} ${a.subject}`);
    expect(kinds.indexOf("tftp pi01")).toBeGreaterThan(kinds.indexOf("root pi01"));
    expect(first.result?.done.map((a) => `${a.kind} ${a.subject}`)).toEqual(kinds);
    expect((await fs.planApply()).diff.actions).toEqual([]);

    const dir = path.join(t.dir, "export/tftp/eth0.10/a1b2c301");
    expect(readFileSync(path.join(dir, "kernel8.img"), "utf8")).toBe("kernel-6.6");
    expect(readFileSync(path.join(dir, "overlays/vc4-kms-v3d.dtbo"), "utf8")).toBe("overlay");
    expect(readFileSync(path.join(dir, "config.txt"), "utf8")).toContain("initramfs initramfs8 followkernel\n");
    expect(readFileSync(path.join(dir, "cmdline.txt"), "utf8")).toBe(`${fs.plan.pis[0].cmdline}\n`);
    // A Pi 3 asks for bootcode.bin at its VLAN's root; nothing of another Pi is there.
    expect(readFileSync(path.join(t.dir, "export/tftp/eth0.10/bootcode.bin"), "utf8")).toBe("bootcode");
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.10/a1b2c302"))).toBe(false);
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.11/a1b2c302/kernel8.img"))).toBe(true);
    expect(existsSync(path.join(t.dir, "export/tftp/.none"))).toBe(true);

    const conf = readFileSync(path.join(t.dir, "etc/dnsmasq.d/pifleet.conf"), "utf8");
    expect(conf).toBe(renderDnsmasqConf(fs.plan));
    expect(readFileSync(path.join(t.dir, "etc/pifleet/dnsmasq.hosts"), "utf8")).toContain("b8:27:eb:00:00:01,10.46.189.2,pi01\n");
    expect(runner.calls.filter((c) => c.startsWith("dnsmasq --test"))).toEqual([`dnsmasq --test --conf-file=${t.dir}/etc/pifleet/pifleet-dnsmasq.check.conf`]);
    expect(existsSync(path.join(t.dir, "etc/pifleet/pifleet-dnsmasq.check.conf"))).toBe(false);

    const third = await fs.planApply();
    expect(third.diff.actions).toEqual([]);
    expect(third.diff.drift.filter((d) => d.kind === "tftp" || d.kind === "dhcp")).toEqual([]);
  });

  it("a rebuilt root's new kernel is copied, a file the Pi dropped is removed, drift is reported", async () => {
    const fs = new Fileserver({ plan: netbootSeed(), runner: new RecordingRunner(), live: OFF, prefix: t.dir, dnsmasq: opts() });
    await fs.apply();
    const fw = path.join(t.dir, "export/10.46.189.2/boot/firmware");
    writeFileSync(path.join(fw, "kernel8.img"), "kernel-6.12, longer");
    rmSync(path.join(fw, "fixup.dat"));
    const planned = await fs.planApply();
    const report = buildReport(fs.plan, "fileserver", planned.observed, planned.diff.drift);
    expect(report.drift.map((d) => `${d.kind} ${d.subject}`)).toContain("tftp pi01");
    expect(planned.diff.drift.find((d) => d.subject === "pi01")?.detail).toBe(`${t.dir}/export/tftp/eth0.10/a1b2c301: kernel8.img, -fixup.dat differ from the plan and the Pi's root`);
    expect(planned.diff.actions.map((a) => `${a.kind} ${a.subject}`)).toEqual(["tftp pi01"]);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(readFileSync(path.join(t.dir, "export/tftp/eth0.10/a1b2c301/kernel8.img"), "utf8")).toBe("kernel-6.12, longer");
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.10/a1b2c301/fixup.dat"))).toBe(false);
  });

  it("a rebuild serves the rebuilt root's kernel at once, and touches no other Pi's folder", async () => {
    const fs = new Fileserver({ plan: netbootSeed(), runner: new RecordingRunner(), live: OFF, prefix: t.dir, dnsmasq: opts() });
    expect((await fs.apply()).result?.ok).toBe(true);
    // A new kernel in the golden image; pi01's root is rebuilt from it (pi02 keeps its old root).
    writeFileSync(path.join(t.dir, "srv/pifleet/golden/boot/firmware/kernel8.img"), "kernel-6.12");
    const pi02Before = lstatSync(path.join(t.dir, "export/tftp/eth0.11/a1b2c302/kernel8.img")).mtimeMs;
    const r = await fs.rebuild("pi01", { piPowered: false });
    expect(r.result?.ok, r.result?.failed?.error).toBe(true);
    expect(r.diff.actions.map((a) => `${a.kind} ${a.subject}`)).toEqual(["root pi01", "tftp pi01"]);
    expect(readFileSync(path.join(t.dir, "export/tftp/eth0.10/a1b2c301/kernel8.img"), "utf8")).toBe("kernel-6.12");
    expect(readFileSync(path.join(t.dir, "export/tftp/eth0.11/a1b2c302/kernel8.img"), "utf8")).toBe("kernel-6.6");
    expect(lstatSync(path.join(t.dir, "export/tftp/eth0.11/a1b2c302/kernel8.img")).mtimeMs).toBe(pi02Before);
  });

  it("never follows a symlink out of the Pi's root: the path is named and refused", async () => {
    const fs = new Fileserver({ plan: netbootSeed(), runner: new RecordingRunner(), live: OFF, prefix: t.dir, dnsmasq: opts() });
    await fs.apply();
    const secret = path.join(t.dir, "fileserver-secret");
    writeFileSync(secret, "the fileserver's own file");
    // pi01's root user points its kernel at a fileserver file; pi02's boot folder is a link out.
    const fw1 = path.join(t.dir, "export/10.46.189.2/boot/firmware");
    rmSync(path.join(fw1, "kernel8.img"));
    symlinkSync(secret, path.join(fw1, "kernel8.img"));
    const root2 = path.join(t.dir, "export/10.46.189.6");
    rmSync(path.join(root2, "boot/firmware"), { recursive: true });
    symlinkSync(path.join(t.dir, "etc"), path.join(root2, "boot/firmware"));
    // A relative symlink inside the root is fine (Debian's /boot/vmlinuz → vmlinuz-6.1.0-…).
    symlinkSync("kernel8.img.real", path.join(t.dir, "export/10.46.189.10/boot/firmware/kernel7.img"));
    writeFileSync(path.join(t.dir, "export/10.46.189.10/boot/firmware/kernel8.img.real"), "pi03's real kernel");

    const planned = await fs.planApply();
    const details = planned.diff.drift.filter((d) => d.kind === "tftp").map((d) => d.detail);
    expect(details).toContain(`${fw1}/kernel8.img: resolves to ${secret}, outside the Pi's root ${t.dir}/export/10.46.189.2; refused`);
    expect(details).toContain(`${root2}/boot/firmware: resolves to ${t.dir}/etc, outside the Pi's root ${root2}; refused`);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.10/a1b2c301/kernel8.img"))).toBe(false);
    expect(readFileSync(path.join(t.dir, "export/tftp/eth0.12/a1b2c303/kernel7.img"), "utf8")).toBe("pi03's real kernel");
    expect(lstatSync(path.join(t.dir, "export/tftp/eth0.12/a1b2c303/kernel7.img")).isSymbolicLink()).toBe(false);
    // pi02 has no boot folder to serve from: only pifleet's own two files.
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.11/a1b2c302/start.elf"))).toBe(false);
  });

  it("a config dnsmasq --test rejects is never installed", async () => {
    // `false` stands for a dnsmasq that refuses the file: the install steps after --test never run.
    const fs = new Fileserver({ plan: netbootSeed(), runner: new RecordingRunner(), live: OFF, prefix: t.dir, dnsmasq: opts({ binary: "false" }) });
    const out = await fs.apply();
    expect(out.result?.ok).toBe(false);
    expect(out.result?.failed?.command).toBe(`false --test --conf-file=${t.dir}/etc/pifleet/pifleet-dnsmasq.check.conf`);
    expect(existsSync(path.join(t.dir, "etc/dnsmasq.d/pifleet.conf"))).toBe(false);
    expect(existsSync(path.join(t.dir, "etc/pifleet/dnsmasq.hosts"))).toBe(false);
  });

  it("only the reservations changed: SIGHUP (reload); an option changed: restart; dry run prints which", async () => {
    const control = { control: "on", reload: ["true", "reload"], restart: ["true", "restart"] };
    const runner = new RecordingRunner();
    const fs = new Fileserver({ plan: netbootSeed(), runner, live: OFF, prefix: t.dir, dnsmasq: opts(control) });
    await fs.apply();
    expect(runner.calls).toContain("true restart");
    const macChanged = new Fileserver({ plan: netbootSeed((f) => (f.pis[1].mac = "b8:27:eb:00:00:22")), runner, live: OFF, prefix: t.dir, dnsmasq: opts(control) });
    const dry = await macChanged.apply(true);
    expect(formatActions(dry.diff.actions)).toMatch(/reservations changed: dnsmasq re-reads them on SIGHUP, every lease kept\n(.*\n){4}true reload\n/);
    runner.calls.length = 0;
    await macChanged.apply();
    expect(runner.calls.filter((c) => c.startsWith("true "))).toEqual(["true reload"]);
    const sd = new Fileserver({ plan: netbootSeed((f) => (f.pis[2].boot = "sd")), runner, live: OFF, prefix: t.dir, dnsmasq: opts(control) });
    runner.calls.length = 0;
    const out = await sd.apply();
    expect(runner.calls.filter((c) => c.startsWith("true "))).toEqual(["true restart"]);
    // pi03's VLAN root is no longer served at all.
    expect(out.diff.drift).toContainEqual({ kind: "tftp", subject: `${t.dir}/export/tftp/eth0.12`, detail: "in the TFTP root pifleet owns, but no netbooted Pi's VLAN uses it; removed" });
    expect(existsSync(path.join(t.dir, "export/tftp/eth0.12"))).toBe(false);
  });
});

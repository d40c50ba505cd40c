import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderPiPublicInterface, type FileserverView } from "@pifleet/core";
import { formatActions, initSandbox, openFileserver, type Fileserver } from "@pifleet/fileserver-agent";
import { hostsWithName } from "../src/identity/files.js";
import { readInside, READ_INSIDE_LIMIT, writeInside } from "../src/inside.js";
import { seedPlan, seedPlanWith, tempDir } from "./helpers.js";

// Each Pi's root carries that Pi's identity — hostname, its 127.0.1.1 line, its static IPv6 on
// the public VLAN — written by the agent from the plan when the root is built and by `apply`
// into roots that lost it, never through a symlink that leads out of the root.

let t: ReturnType<typeof tempDir>;
let fs: Fileserver;
const pi = (name: string) => fs.plan.pis.find((p) => p.name === name)!;
const rootOf = (name: string) => path.join(fs.layout.exportRoot, pi(name).piAddress);
const inRoot = (name: string, rel: string) => path.join(rootOf(name), rel);
const read = (name: string, rel: string) => readFileSync(inRoot(name, rel), "utf8");
const ifaceFile = (name: string) => `etc/network/interfaces.d/${pi(name).publicInterface}`;
const identityDrift = async () => (await fs.planApply()).diff.drift.filter((d) => d.kind === "identity");

/** Every entry under a directory with its inode, size and mtime: equal listings = nothing written. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      out.push(`${path.relative(dir, p)} ${st.ino} ${st.mode} ${st.size} ${st.mtimeMs}${st.isSymbolicLink() ? ` -> ${readlinkSync(p)}` : ""}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

async function open(plan: FileserverView = seedPlan()): Promise<void> {
  initSandbox(t.dir, plan);
  fs = await openFileserver({ plan, prefix: t.dir, live: "emulate" });
}

beforeEach(() => {
  t = tempDir("identity");
});
afterEach(() => t.cleanup());

describe("each Pi's root carries its own identity", () => {
  it("a built root has the Pi's hostname, 127.0.1.1 line and public interface; the golden image keeps its own", async () => {
    await open();
    // A golden /etc/hosts as Debian writes it: the Pi's line replaces the image's, the rest is kept.
    writeFileSync(path.join(fs.layout.golden, "etc/hosts"), "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n\n::1\t\tlocalhost ip6-localhost ip6-loopback\n");
    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    for (const p of fs.plan.pis) {
      expect(read(p.name, "etc/hostname")).toBe(`${p.name}\n`);
      expect(read(p.name, ifaceFile(p.name))).toBe(renderPiPublicInterface(p));
      expect(read(p.name, "etc/hosts")).toBe(`127.0.0.1\tlocalhost\n127.0.1.1 ${p.name}\n\n::1\t\tlocalhost ip6-localhost ip6-loopback\n`);
    }
    // The plan's rendering, as `pifleet plan` writes it for pi01: eth0.131, static IPv6.
    expect(read("pi01", "etc/network/interfaces.d/eth0.131")).toMatch(/^auto eth0\.131\niface eth0\.131 inet6 static\n\taddress\t[0-9a-f:]+\n\tnetmask 64\n\tgateway\t[0-9a-f:]+\n$/);
    expect(readFileSync(path.join(fs.layout.golden, "etc/hostname"), "utf8")).toBe("raspberrypi\n");
    expect(existsSync(path.join(fs.layout.golden, "etc/network/interfaces.d"))).toBe(false);
    // Creation wrote them as part of the root's build, before the root was renamed into place.
    const text = formatActions(out.diff.actions);
    expect(text).toContain(`install -m 0644 /dev/stdin ${fs.layout.exportRoot}/.10.46.189.2.building/etc/hostname  # 1 lines, written atomically, no symlink followed\n`);
  });

  it("a golden image reached through a symlink (the current one of several) is read where it is", async () => {
    const plan = seedPlanWith((f) => (f.fileserver.goldenImage = "/srv/pifleet/golden-current"));
    await open(plan);
    mkdirSync(path.join(t.dir, "srv/pifleet/golden-v2/etc"), { recursive: true });
    writeFileSync(path.join(t.dir, "srv/pifleet/golden-v2/etc/hosts"), "127.0.0.1 localhost\n192.0.2.1 mirror\n");
    rmSync(fs.layout.golden, { recursive: true });
    symlinkSync("golden-v2", fs.layout.golden);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(read("pi01", "etc/hosts")).toBe("127.0.0.1 localhost\n127.0.1.1 pi01\n192.0.2.1 mirror\n");
  });

  it("a root whose golden image has no /etc/hosts gets Debian's defaults with the Pi's name", async () => {
    await open();
    await fs.apply();
    expect(read("pi03", "etc/hosts")).toBe("127.0.0.1 localhost\n127.0.1.1 pi03\n::1 localhost ip6-localhost ip6-loopback\n");
  });

  it("a rebuilt root gets the identity too", async () => {
    await open();
    await fs.apply();
    writeFileSync(inRoot("pi02", "etc/hostname"), "broken\n");
    expect((await fs.rebuild("pi02", { piPowered: false })).result?.ok).toBe(true);
    expect(read("pi02", "etc/hostname")).toBe("pi02\n");
    expect(read("pi02", ifaceFile("pi02"))).toBe(renderPiPublicInterface(pi("pi02")));
    expect(readFileSync(path.join(fs.layout.exportRoot, `.${pi("pi02").piAddress}.prev/etc/hostname`), "utf8")).toBe("broken\n");
  });

  it("a second apply changes nothing: no inode, size or mtime under the export root", async () => {
    await open();
    await fs.apply();
    const before = listing(fs.layout.exportRoot);
    expect(await identityDrift()).toEqual([]);
    const again = await fs.apply();
    expect(again.diff.actions).toEqual([]);
    expect(listing(fs.layout.exportRoot)).toEqual(before);
  });

  it("apply finds edited or missing identity files as drift and writes back only those", async () => {
    await open();
    await fs.apply();
    writeFileSync(inRoot("pi01", "etc/hostname"), "raspberrypi\n");
    writeFileSync(inRoot("pi01", "etc/hosts"), "127.0.0.1 localhost\n127.0.1.1 raspberrypi\n10.0.0.9 printer # the Pi's own entry\n");
    rmSync(inRoot("pi04", ifaceFile("pi04")));
    const untouched = lstatSync(inRoot("pi01", ifaceFile("pi01")));

    const drift = await identityDrift();
    expect(drift).toEqual([
      { kind: "identity", subject: "pi01", detail: "etc/hostname differs from the plan" },
      { kind: "identity", subject: "pi01", detail: "etc/hosts differs from the plan" },
      { kind: "identity", subject: "pi04", detail: `${ifaceFile("pi04")} missing` },
    ]);
    const planned = await fs.planApply();
    const actions = planned.diff.actions.filter((a) => a.kind === "identity");
    expect(actions.map((a) => [a.subject, a.steps.map((s) => (s.op === "write" ? path.relative(rootOf(a.subject), s.path) : s.op))])).toEqual([
      ["pi01", ["etc/hostname", "etc/hosts"]],
      ["pi04", [ifaceFile("pi04")]],
    ]);

    expect(formatActions(actions)).toContain(`install -m 0644 /dev/stdin ${inRoot("pi01", "etc/hostname")}  # 1 lines, written atomically, no symlink followed\n`);
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(read("pi01", "etc/hostname")).toBe("pi01\n");
    expect(read("pi01", "etc/hosts")).toBe("127.0.0.1 localhost\n127.0.1.1 pi01\n10.0.0.9 printer # the Pi's own entry\n");
    expect(read("pi04", ifaceFile("pi04"))).toBe(renderPiPublicInterface(pi("pi04")));
    // The file that was right was left as it was, not rewritten.
    const now = lstatSync(inRoot("pi01", ifaceFile("pi01")));
    expect([now.ino, now.mtimeMs]).toEqual([untouched.ino, untouched.mtimeMs]);
    expect(await identityDrift()).toEqual([]);
  });

  it("refuses a symlink etc/network/interfaces.d → the fileserver's /etc, naming the path, and writes nothing through it", async () => {
    await open();
    await fs.apply();
    // The sandbox's etc/ stands for the fileserver's /etc: what a Pi's root user could point at.
    const fileserverEtc = path.join(t.dir, "etc");
    const dir = inRoot("pi01", "etc/network/interfaces.d");
    rmSync(dir, { recursive: true });
    symlinkSync(fileserverEtc, dir);
    writeFileSync(inRoot("pi01", "etc/hostname"), "raspberrypi\n");

    const drift = await identityDrift();
    const refused = drift.find((d) => d.detail.endsWith("; refused"));
    expect(refused?.subject).toBe("pi01");
    expect(refused?.detail).toContain(`${dir}/eth0.131`);
    expect(refused?.detail).toContain(`resolves to ${fileserverEtc}/eth0.131, outside ${rootOf("pi01")}`);

    const out = await fs.apply();
    expect(out.result?.ok).toBe(true);
    expect(existsSync(path.join(fileserverEtc, "eth0.131"))).toBe(false);
    expect(out.diff.actions.flatMap((a) => a.steps).some((s) => "path" in s && s.path.includes("interfaces.d"))).toBe(false);
    // The rest of that root's identity is still put right; the link is left for a person.
    expect(read("pi01", "etc/hostname")).toBe("pi01\n");
    expect(readlinkSync(dir)).toBe(fileserverEtc);
    expect((await identityDrift()).map((d) => d.detail)).toEqual([refused?.detail]);
  });

  it("refuses a symlinked etc/ and a symlinked identity file, reading and writing nothing through them", async () => {
    await open();
    await fs.apply();
    const secret = path.join(t.dir, "etc/fileserver-secret");
    writeFileSync(secret, "not for Pis\n");
    rmSync(inRoot("pi02", "etc/hostname"));
    symlinkSync(secret, inRoot("pi02", "etc/hostname"));
    const etc = inRoot("pi03", "etc");
    renameSync(etc, `${etc}.real`);
    symlinkSync(path.join(t.dir, "etc"), etc);

    const drift = await identityDrift();
    expect(drift.filter((d) => d.subject === "pi02")).toEqual([
      { kind: "identity", subject: "pi02", detail: `${inRoot("pi02", "etc/hostname")}: etc/hostname is a symlink (to ${secret}); pifleet writes it as a regular file and refuses to follow it — remove the link by hand; refused` },
    ]);
    const pi03 = drift.filter((d) => d.subject === "pi03");
    expect(pi03).toHaveLength(3);
    for (const d of pi03) expect(d.detail).toMatch(/outside .*a symlink on the way points out\); refused$/);

    // Nothing else drifted, so there is nothing to do: the refused files are left for a person.
    expect((await fs.apply()).diff.actions).toEqual([]);
    expect(readFileSync(secret, "utf8")).toBe("not for Pis\n");
    expect(readlinkSync(inRoot("pi02", "etc/hostname"))).toBe(secret);
    for (const rel of ["hostname", "hosts", "network/interfaces.d/eth0.131"]) expect(existsSync(path.join(t.dir, "etc", rel))).toBe(false);
  });

  it("shared content: identity is kept in running roots too", async () => {
    await open(seedPlanWith((f) => (f.fileserver.content = "shared")));
    expect((await fs.apply()).result?.ok).toBe(true);
    expect(read("pi05", "etc/hostname")).toBe("pi05\n");
    writeFileSync(inRoot("pi05", "etc/hostname"), "raspberrypi\n");
    expect(await identityDrift()).toEqual([{ kind: "identity", subject: "pi05", detail: "etc/hostname differs from the plan" }]);
    await fs.apply();
    expect(read("pi05", "etc/hostname")).toBe("pi05\n");
    const before = listing(fs.layout.exportRoot);
    expect((await fs.apply()).diff.actions).toEqual([]);
    expect(listing(fs.layout.exportRoot)).toEqual(before);
  });
});

describe("writing into a root its Pi may be running from", () => {
  // writeInside is what runs after the path check: called here without one, it stands for the
  // moment a Pi swaps a directory for a symlink between pifleet's check and its write.
  it("follows no symlink on the way, even one swapped in after the check", async () => {
    const root = path.join(t.dir, "root");
    const outside = path.join(t.dir, "fileserver-etc");
    mkdirSync(outside, { recursive: true });
    mkdirSync(root);
    symlinkSync(outside, path.join(root, "etc"));
    await expect(writeInside(root, "etc/hostname", "pi01\n")).rejects.toThrow(`${root}/etc: is a symlink (to ${outside}); refused`);
    await expect(writeInside(path.join(root, "etc"), "hostname", "pi01\n")).rejects.toThrow(/is a symlink/);
    expect(readdirSync(outside)).toEqual([]);
  });

  it("replaces a symlink at the file's name or its temporary name instead of writing through it", async () => {
    const root = path.join(t.dir, "root");
    const secret = path.join(t.dir, "secret");
    writeFileSync(secret, "fileserver's\n");
    mkdirSync(path.join(root, "etc"), { recursive: true });
    symlinkSync(secret, path.join(root, "etc/hostname"));
    symlinkSync(secret, path.join(root, "etc/hosts.pifleet-tmp"));
    await writeInside(root, "etc/hostname", "pi01\n");
    await writeInside(root, "etc/hosts", "127.0.1.1 pi01\n");
    await writeInside(root, "etc/network/interfaces.d/eth0.131", "auto eth0.131\n");
    expect(readFileSync(secret, "utf8")).toBe("fileserver's\n");
    expect(lstatSync(path.join(root, "etc/hostname")).isFile()).toBe(true);
    expect(readFileSync(path.join(root, "etc/hostname"), "utf8")).toBe("pi01\n");
    expect(readFileSync(path.join(root, "etc/hosts"), "utf8")).toBe("127.0.1.1 pi01\n");
    expect(readFileSync(path.join(root, "etc/network/interfaces.d/eth0.131"), "utf8")).toBe("auto eth0.131\n");
    expect(readdirSync(path.join(root, "etc")).sort()).toEqual(["hostname", "hosts", "network"]);
  });
});

describe("reading a root its Pi may be running from", () => {
  it("walks no symlink on the way, even one the path check lets through, and never blocks on a FIFO", async () => {
    const root = path.join(t.dir, "root");
    mkdirSync(path.join(root, "real-etc"), { recursive: true });
    writeFileSync(path.join(root, "real-etc/hostname"), "pi01\n");
    // Resolves inside the root, so only the handle walk (what a swap after the check meets) refuses it.
    symlinkSync("real-etc", path.join(root, "etc"));
    await expect(readInside(root, "etc/hostname")).rejects.toThrow(`${root}/etc: is a symlink (to real-etc); refused`);
    expect(await readInside(root, "real-etc/hostname")).toBe("pi01\n");
    expect(await readInside(root, "real-etc/missing")).toBeNull();
    expect(await readInside(root, "nowhere/hostname")).toBeNull();
    execFileSync("mkfifo", [path.join(root, "real-etc/hosts")]);
    await expect(readInside(root, "real-etc/hosts")).rejects.toThrow("real-etc/hosts is not a regular file");
    writeFileSync(path.join(root, "real-etc/big"), Buffer.alloc(READ_INSIDE_LIMIT + 1));
    await expect(readInside(root, "real-etc/big")).rejects.toThrow(`is ${READ_INSIDE_LIMIT + 1} bytes`);
  });
});

describe("the 127.0.1.1 line", () => {
  it("replaces the first one, drops later ones, keeps every other line", () => {
    expect(hostsWithName("127.0.0.1 localhost\n# 127.0.1.1 old\n127.0.1.1 raspberrypi raspberrypi.local\n::1 localhost\n127.0.1.1 other\n", "pi01")).toBe(
      "127.0.0.1 localhost\n# 127.0.1.1 old\n127.0.1.1 pi01\n::1 localhost\n",
    );
  });

  it("adds one after the 127.0.0.1 lines when there is none, or at the top", () => {
    expect(hostsWithName("127.0.0.1 localhost\n127.0.0.1 loopback\n::1 localhost", "pi02")).toBe("127.0.0.1 localhost\n127.0.0.1 loopback\n127.0.1.1 pi02\n::1 localhost\n");
    expect(hostsWithName("::1 localhost\n", "pi02")).toBe("127.0.1.1 pi02\n::1 localhost\n");
    expect(hostsWithName("", "pi02")).toBe("127.0.1.1 pi02\n");
  });

  it("leaves a file that already names the Pi as it is, whatever its spacing", () => {
    const hosts = "127.0.0.1\tlocalhost\n127.0.1.1\tpi01\n\n";
    expect(hostsWithName(hosts, "pi01")).toBe(hosts);
    expect(hostsWithName(hostsWithName("127.0.1.1 x\n", "pi01"), "pi01")).toBe("127.0.1.1 pi01\n");
  });
});

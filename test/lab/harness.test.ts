/** The lab harness's own pieces that need no VM: cache, initramfs archives, the switch table. */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseFleet, plan as planFleet } from "@pifleet/core";
import { cached, initrdWithFiles, newcArchive, QEMU_GUARD, recipeHash, switchVlanLines } from "./harness/index.js";

let dir: string;
const savedCache = process.env.PIFLEET_LAB_CACHE;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-lab-harness-"));
  process.env.PIFLEET_LAB_CACHE = path.join(dir, "cache");
});
afterEach(() => {
  if (savedCache === undefined) delete process.env.PIFLEET_LAB_CACHE;
  else process.env.PIFLEET_LAB_CACHE = savedCache;
  rmSync(dir, { recursive: true, force: true });
});

describe("lab cache", () => {
  it("builds an artifact once per recipe and rebuilds when the recipe changes", async () => {
    let builds = 0;
    const build = async (out: string) => {
      builds++;
      writeFileSync(path.join(out, "artifact"), `build ${builds}`);
    };
    const a = await cached("thing", { version: 1 }, build);
    const again = await cached("thing", { version: 1 }, build);
    expect(again).toBe(a);
    expect(builds).toBe(1);
    expect(readFileSync(path.join(a, "artifact"), "utf8")).toBe("build 1");
    const b = await cached("thing", { version: 2 }, build);
    expect(b).not.toBe(a);
    expect(builds).toBe(2);
    expect(readFileSync(path.join(b, "artifact"), "utf8")).toBe("build 2");
  });

  it("keys recipes by content, not by key order", () => {
    expect(recipeHash({ a: 1, b: [1, 2] })).toBe(recipeHash({ b: [1, 2], a: 1 }));
    expect(recipeHash({ a: 1, b: [1, 2] })).not.toBe(recipeHash({ a: 1, b: [2, 1] }));
  });

  it("leaves nothing behind when a build fails, and builds again next time", async () => {
    await expect(
      cached("broken", { v: 1 }, async (out) => {
        writeFileSync(path.join(out, "half"), "x");
        throw new Error("mirror unreachable");
      }),
    ).rejects.toThrow("mirror unreachable");
    const cacheDir = process.env.PIFLEET_LAB_CACHE!;
    expect(readdirSync(cacheDir).filter((e) => e.startsWith("broken-"))).toEqual([]);
    expect(readdirSync(path.join(cacheDir, ".tmp"))).toEqual([]);
    const ok = await cached("broken", { v: 1 }, async (out) => writeFileSync(path.join(out, "whole"), "y"));
    expect(existsSync(path.join(ok, "whole"))).toBe(true);
  });
});

describe("initramfs archives", () => {
  it("writes a newc archive cpio unpacks: folders first, contents and modes kept", () => {
    const archive = path.join(dir, "extra.cpio");
    writeFileSync(archive, newcArchive({ "lab/run.sh": { data: "echo hi\n", mode: 0o755 }, "lab/env": "A=1\n", "etc/x/y": "deep" }));
    const out = path.join(dir, "out");
    execFileSync("sh", ["-c", `mkdir -p ${out} && cd ${out} && cpio -i --quiet -d < ${archive}`]);
    expect(readFileSync(path.join(out, "lab/run.sh"), "utf8")).toBe("echo hi\n");
    expect(statSync(path.join(out, "lab/run.sh")).mode & 0o777).toBe(0o755);
    expect(readFileSync(path.join(out, "lab/env"), "utf8")).toBe("A=1\n");
    expect(readFileSync(path.join(out, "etc/x/y"), "utf8")).toBe("deep");
    const listing = execFileSync("cpio", ["-t", "--quiet"], { input: readFileSync(archive) }).toString().trim().split("\n");
    expect(listing.indexOf("etc/x")).toBeLessThan(listing.indexOf("etc/x/y"));
  });

  it("appends a test's files at a 4-byte boundary after the compressed base, where the kernel looks", () => {
    const base = path.join(dir, "base.cpio.gz");
    writeFileSync(base, Buffer.from([0x1f, 0x8b, 8, 0, 1]));
    const initrd = readFileSync(initrdWithFiles({ path: base, modules: [] }, { "lab/run.sh": "true\n" }, path.join(dir, "initrd")));
    expect([...initrd.subarray(5, 8)]).toEqual([0, 0, 0]);
    expect(initrd.subarray(8, 14).toString()).toBe("070701");
  });
});

describe("switch VM table", () => {
  const plan = planFleet(
    parseFleet(`name: t
switch: { address: 127.0.0.1, snmp: { version: "2c", community: { env: C } }, trunkPort: 24 }
fileserver: { goldenImage: /srv/golden }
private: { range: 10.46.189.0/24, firstVlan: 10 }
public: { prefix: "2001:db8::/64", gateway: "2001:db8::1", vlan: 131 }
pis: [{ name: pi01, port: 1 }, { name: pi02, port: 2 }]
`),
  );

  it("puts each wired Pi port untagged (PVID) in its VLAN, the trunk tagged in every private VLAN", () => {
    // The public VLAN goes to the Pis (tagged) and uplinks, not to the fileserver's trunk.
    expect(switchVlanLines(plan.shelves[0].switch, [{ port: 24 }, { port: 1 }])).toEqual(["eth1 10 pvid untagged", "eth0 10", "eth0 11", "eth1 131"]);
  });

  it("leaves out ports without a cable", () => {
    expect(switchVlanLines(plan.shelves[0].switch, [{ port: 2 }])).toEqual(["eth0 11 pvid untagged", "eth0 131"]);
  });
});

describe("QEMU guard", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it("kills QEMU when the process that started it is killed outright", async () => {
    // A stand-in for a test worker: starts a paused QEMU under the guard, prints its pid, waits.
    const worker = spawn(
      process.execPath,
      [
        "-e",
        `const { spawn } = require("node:child_process");
         const q = spawn("sh", ["-c", process.argv[1], "lab-guard", "qemu-system-x86_64", "-S", "-display", "none", "-nodefaults", "-accel", "tcg"], { stdio: ["pipe", "inherit", "inherit"], detached: true });
         const poll = setInterval(() => {
           const kids = require("node:child_process").execFileSync("pgrep", ["-P", String(q.pid), "-x", "qemu-system-x86"]).toString().trim();
           if (kids) { process.stdout.write(kids + "\\n"); clearInterval(poll); setInterval(() => {}, 1000); }
         }, 100);`,
        QEMU_GUARD,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const qemuPid = await new Promise<number>((resolve, reject) => {
      worker.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim().split("\n")[0])));
      worker.once("exit", () => reject(new Error("worker died before QEMU started")));
    });
    expect(alive(qemuPid)).toBe(true);
    worker.kill("SIGKILL");
    const deadline = Date.now() + 10_000;
    while (alive(qemuPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(qemuPid)).toBe(false);
  }, 30_000);
});

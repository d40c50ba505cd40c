import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The built CLI (tsc -b builds it; a missing dist/main.js fails the test), on the repository's own examples.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(repo, "packages/cli/dist/main.js"), ...args], { cwd: repo, encoding: "utf8", timeout: 30_000 });

describe("pifleet plan --netboot and power-on", () => {
  it("prints the fileserver's dnsmasq files and each Pi's TFTP files", () => {
    const r = cli("plan", "examples/seed-8-netboot.yaml", "--netboot");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`# fileserver fileserver: /etc/dnsmasq.d/pifleet.conf\n${readFileSync(path.join(repo, "packages/core/test/fixtures/seed-8-netboot.dnsmasq.conf"), "utf8")}`);
    expect(r.stdout).toContain("# pi08: /export/tftp/eth0.17/a1b2c308/cmdline.txt\n");
    expect(cli("plan", "examples/seed-8.yaml", "--netboot").stdout).toBe("# fileserver fileserver: no netbooted Pi (boot.mode is sd)\n");
  });

  it("power-on without --all is a usage error", () => {
    const r = cli("power-on", "--url", "ws://[::1]:1/feed", "--token", "a.b");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("required option '--all' not specified");
  });
});

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../src/install/bundle.js";
import { install, type InstallOptions } from "../src/install/installer.js";
import { InstallError } from "../src/install/remote.js";
import { ROLES } from "../src/install/roles.js";
import { startSshd, type TestSshd } from "./install-harness.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const role = ROLES.pi;

describe("pifleet install over SSH (Debian's sshd on loopback, --prefix sandbox)", () => {
  let tmp: string;
  let sshd: TestSshd;
  let knownHosts: string;
  let bundleDir: string;
  let coordinatorBundle: string;
  let prefix: string;
  let configFile: string;
  let secretFile: string;
  let output: string[];

  const options = (over: Partial<InstallOptions> = {}): InstallOptions => ({
    role,
    target: { host: "127.0.0.1", port: sshd.port, user: "root", identity: sshd.userKey, knownHosts, acceptNewHostKey: false, timeoutMs: 10_000 },
    config: configFile,
    secretFile,
    prefix,
    start: true,
    dryRun: false,
    bundleDir,
    activeTimeoutMs: 10_000,
    out: (line) => output.push(line),
    ...over,
  });
  const at = (p: string) => path.join(prefix, p);
  const modeOf = (p: string) => (statSync(at(p)).mode & 0o777).toString(8);
  const installedFiles = () =>
    execFileSync("find", [prefix, "-type", "f"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "pifleet-install-"));
    sshd = await startSshd(tmp);
    knownHosts = path.join(tmp, "known_hosts");
    writeFileSync(knownHosts, `${sshd.hostKeyLine}\n`);
    // A stand-in daemon in ESM (top-level await): the bundle's package.json must make it load as such.
    const entry = path.join(tmp, "fixture-main.js");
    writeFileSync(entry, 'await Promise.resolve();\nprocess.stdout.write(`fixture daemon, ${typeof import.meta.url}\\n`);\n');
    bundleDir = path.join(tmp, "bundle");
    await buildBundle(role, { outDir: bundleDir, entry });
    // The coordinator's bundle carries a native addon (better-sqlite3), tied to this machine.
    coordinatorBundle = path.join(tmp, "bundle-coordinator");
    await buildBundle(ROLES.coordinator, { outDir: coordinatorBundle, entry });
    prefix = path.join(tmp, "target");
    configFile = path.join(tmp, "pi-agent.yaml");
    writeFileSync(configFile, "coordinator: { url: \"ws://[::1]:7300/agent\" }\nidentity: pi01\nsecretFile: /etc/pifleet/pi-agent.secret\n");
    secretFile = path.join(tmp, "pi01.secret");
    writeFileSync(secretFile, "s3cr3t-agent-credential\n");
  });

  afterAll(async () => {
    await sshd?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("installs the bundle, config, secret and unit with the right modes, then a second run changes nothing", async () => {
    output = [];
    const first = await install(options());
    expect(first.changes).toBeGreaterThan(5);
    expect(output.join("\n")).toMatch(/systemctl daemon-reload \/ enable \/ restart: skipped \(--prefix/);

    expect(modeOf("usr/lib/pifleet/pi-agent/main.js")).toBe("644");
    expect(modeOf("usr/lib/pifleet/pi-agent/manifest.json")).toBe("644");
    // No native addon: the same files serve every Pi, arm64 or armhf.
    expect(existsSync(at("usr/lib/pifleet/pi-agent/node_modules"))).toBe(false);
    expect(readFileSync(at("usr/lib/pifleet/pi-agent/notify-exec.pl"), "utf8")).toBe(readFileSync(path.join(repo, "systemd/notify-exec.pl"), "utf8"));
    expect(output.join("\n")).toMatch(/= \/usr\/bin\/node v\d+\.\d+\.\d+ \(linux-x64\) runs the bundle \(Node 18\+, any CPU\); \/usr\/bin\/perl has Socket and Fcntl/);
    expect(modeOf("etc/pifleet/pi-agent.yaml")).toBe("644");
    expect(readFileSync(at("etc/pifleet/pi-agent.yaml"), "utf8")).toBe(readFileSync(configFile, "utf8"));
    expect(modeOf("etc/pifleet/pi-agent.secret")).toBe("600");
    expect(readFileSync(at("etc/pifleet/pi-agent.secret"), "utf8")).toBe("s3cr3t-agent-credential\n");
    expect(modeOf("etc/systemd/system/pifleet-pi-agent.service")).toBe("644");
    expect(readFileSync(at("etc/systemd/system/pifleet-pi-agent.service"), "utf8")).toBe(readFileSync(path.join(repo, "systemd/pifleet-pi-agent.service"), "utf8"));
    expect(modeOf("etc/polkit-1/rules.d/60-pifleet-pi-agent.rules")).toBe("644");
    // No temporary files left behind by the write-then-rename.
    expect(installedFiles().filter((f) => f.includes("pifleet-tmp"))).toEqual([]);

    // The installed code runs from where it landed, with nothing from the workspace.
    const ran = execFileSync("node", [at("usr/lib/pifleet/pi-agent/main.js")], { cwd: "/", encoding: "utf8" });
    expect(ran).toBe("fixture daemon, string\n");

    const mtimes = new Map(installedFiles().map((f) => [f, statSync(f).mtimeMs]));
    output = [];
    const second = await install(options());
    expect(second).toEqual({ changes: 0, actions: [] });
    expect(output.at(-1)).toBe("no changes: pifleet-pi-agent on 127.0.0.1 is already as planned");
    expect(new Map(installedFiles().map((f) => [f, statSync(f).mtimeMs]))).toEqual(mtimes);
  });

  it("repairs drift (mode, content, stale files), and --dry-run only reports it", async () => {
    await install(options({ out: () => undefined }));
    chmodSync(at("etc/pifleet/pi-agent.secret"), 0o644);
    writeFileSync(at("etc/pifleet/pi-agent.yaml"), "edited by hand\n");
    writeFileSync(at("usr/lib/pifleet/pi-agent/old-chunk.js"), "// from an older release\n");

    output = [];
    const dry = await install(options({ dryRun: true }));
    expect(dry.actions).toEqual([
      `would update ${at("etc/pifleet/pi-agent.yaml")} (config, ${readFileSync(configFile).length} B, mode 0644)`,
      `would chmod 0600 ${at("etc/pifleet/pi-agent.secret")} (was 0644)`,
      `would remove ${at("usr/lib/pifleet/pi-agent/old-chunk.js")} (no longer in the bundle)`,
    ]);
    expect(output.at(-1)).toBe("3 changes would be made (dry run: none made)");
    expect(modeOf("etc/pifleet/pi-agent.secret")).toBe("644");
    expect(readFileSync(at("etc/pifleet/pi-agent.yaml"), "utf8")).toBe("edited by hand\n");
    expect(existsSync(at("usr/lib/pifleet/pi-agent/old-chunk.js"))).toBe(true);

    const fixed = await install(options({ out: () => undefined }));
    expect(fixed.changes).toBe(3);
    expect(modeOf("etc/pifleet/pi-agent.secret")).toBe("600");
    expect(readFileSync(at("etc/pifleet/pi-agent.yaml"), "utf8")).toBe(readFileSync(configFile, "utf8"));
    expect(existsSync(at("usr/lib/pifleet/pi-agent/old-chunk.js"))).toBe(false);
    expect((await install(options({ out: () => undefined }))).changes).toBe(0);
  });

  it("a wrong key fails with one clear line, fast, from the CLI too", async () => {
    const started = Date.now();
    const err = await install(options({ target: { ...options().target, identity: sshd.wrongKey }, out: () => undefined })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect((err as Error).message).toBe(
      `ssh root@[127.0.0.1]:${sshd.port}: authentication failed: the server refused the key in ${sshd.wrongKey} for user root`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);

    const cli = path.join(repo, "packages/cli/dist/main.js");
    const args = [cli, "install", "127.0.0.1", "--role", "pi", "--port", String(sshd.port), "--identity", sshd.wrongKey, "--known-hosts", knownHosts, "--prefix", prefix, "--bundle", bundleDir];
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`pifleet: ssh root@[127.0.0.1]:${sshd.port}: authentication failed: the server refused the key in ${sshd.wrongKey} for user root\n`);
  });

  it("refuses a host whose key is unknown or changed", async () => {
    const empty = path.join(tmp, "known_hosts.empty");
    writeFileSync(empty, "");
    await expect(install(options({ target: { ...options().target, knownHosts: empty }, out: () => undefined }))).rejects.toThrow(
      new RegExp(`host key rejected: \\[127\\.0\\.0\\.1\\]:${sshd.port} is not in .*known_hosts\\.empty \\(it offered ssh-ed25519 SHA256:`),
    );
    const other = path.join(tmp, "known_hosts.other");
    const [, type, blob] = readFileSync(`${sshd.wrongKey}.pub`, "utf8").trim().split(" ").reverse().reverse();
    writeFileSync(other, `[127.0.0.1]:${sshd.port} ${type} ${blob}\n`);
    await expect(install(options({ target: { ...options().target, knownHosts: other }, out: () => undefined }))).rejects.toThrow(/HOST KEY MISMATCH for \[127\.0\.0\.1\]:\d+/);

    // --accept-new-host-key records a new host (trust on first use), and the next run knows it.
    const fresh = path.join(tmp, "known_hosts.fresh");
    output = [];
    await install(options({ target: { ...options().target, knownHosts: fresh, acceptNewHostKey: true } }));
    expect(output.join("\n")).toContain(`host key added to ${fresh}`);
    expect(readFileSync(fresh, "utf8")).toBe(`${sshd.hostKeyLine}\n`);
  });

  it("refuses a bundle whose native addons were built for another machine", async () => {
    const armBundle = path.join(tmp, "bundle-coordinator-arm64");
    cpSync(coordinatorBundle, armBundle, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(armBundle, "manifest.json"), "utf8"));
    writeFileSync(path.join(armBundle, "manifest.json"), JSON.stringify({ ...manifest, arch: "arm64" }));
    const coordinatorConfig = path.join(tmp, "coordinator.yaml");
    writeFileSync(coordinatorConfig, "fleet: /etc/pifleet/fleet.yaml\n");
    await expect(install(options({ role: ROLES.coordinator, config: coordinatorConfig, bundleDir: armBundle, out: () => undefined }))).rejects.toThrow(
      /native addons \(better-sqlite3, bindings, file-uri-to-path\) were built for linux-arm64, Node ABI \d+, but the target runs linux-x64/,
    );
  });

  it("refuses a target whose Node is older than the bundle needs", async () => {
    const future = path.join(tmp, "bundle-future");
    cpSync(bundleDir, future, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(future, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ minNode: 18, natives: [], arch: null, platform: null, nodeModulesAbi: null });
    writeFileSync(path.join(future, "manifest.json"), JSON.stringify({ ...manifest, minNode: 99 }));
    await expect(install(options({ bundleDir: future, out: () => undefined }))).rejects.toThrow(
      /\/usr\/bin\/node is v\d+\.\d+\.\d+; the pi bundle needs Node 99 or later$/,
    );
  });

  it("a config its daemon's --check would refuse is refused before anything is uploaded, naming the field", async () => {
    const bad = path.join(tmp, "pi-agent-bad.yaml");
    writeFileSync(bad, "coordinator: { url: \"ws://[::1]:7300/agent\" }\nidentity: pi01\nsecretFile: /etc/pifleet/pi-agent.secret\nintervalMs: soon\n");
    const fresh = path.join(tmp, "untouched");
    const lines: string[] = [];
    const err = await install(options({ config: bad, prefix: fresh, out: (l) => lines.push(l) })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect((err as Error).message).toMatch(/^--config refused, nothing was uploaded: .*pi-agent-bad\.yaml: intervalMs: /);
    // The very message `pi-agent --config FILE --check` prints (its parser, not a copy of it).
    const check = spawnSync(process.execPath, [path.join(repo, "packages/pi-agent/dist/main.js"), "--config", bad, "--check"], { encoding: "utf8" });
    expect(check.status).not.toBe(0);
    expect(check.stderr).toContain((err as Error).message.replace("--config refused, nothing was uploaded: ", ""));
    expect(existsSync(fresh)).toBe(false);
    expect(lines).toEqual([]); // not even connected
  });
});

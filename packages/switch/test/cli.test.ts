import { execFile, spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerSwitch } from "../../cli/src/commands/switch.js";
import { UsageError } from "../../cli/src/usage-error.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
// commander is the CLI's dependency, not this package's: load the very copy the CLI uses.
const { Command } = createRequire(path.join(root, "packages/cli/package.json"))("commander") as typeof import("commander");
const main = path.join(root, "packages/cli/dist/main.js");
const RW = "rw-Secret-7";
const env = { ...process.env, PIFLEET_SNMP_COMMUNITY: RW, PIFLEET_LOG_LEVEL: "warn", PIFLEET_LOG_FORMAT: "json" };

function pifleet(args: string[], extraEnv: NodeJS.ProcessEnv = env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env: extraEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Runs `pifleet switch …` in this process (a spawned CLI costs a second of start-up per call);
 * the spawned tests below check that main.ts wires the same commands and exit codes.
 */
async function inProcess(args: string[], community = RW): Promise<{ stdout: string; error?: Error; exitCode?: number }> {
  const program = new Command("pifleet").exitOverride();
  registerSwitch(program);
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  const saved = { community: process.env.PIFLEET_SNMP_COMMUNITY, level: process.env.PIFLEET_LOG_LEVEL };
  process.env.PIFLEET_SNMP_COMMUNITY = community;
  process.env.PIFLEET_LOG_LEVEL = "silent";
  let error: Error | undefined;
  try {
    await program.parseAsync(["node", "pifleet", ...args]);
  } catch (err) {
    error = err as Error;
  } finally {
    spy.mockRestore();
    process.env.PIFLEET_SNMP_COMMUNITY = saved.community;
    process.env.PIFLEET_LOG_LEVEL = saved.level;
  }
  const exitCode = process.exitCode === undefined ? undefined : Number(process.exitCode);
  process.exitCode = undefined;
  return { stdout: out.join(""), error, exitCode };
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("pifleet switch … and pifleet switch-emulator (built CLI)", () => {
  let emulator: ChildProcess;
  let fleet: string;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    if (!existsSync(main)) throw new Error(`${main} is missing: build first (pnpm exec tsc -b packages/cli)`);
    const port = await freeUdpPort();
    const dir = mkdtempSync(path.join(tmpdir(), "pifleet-switch-cli-"));
    fleet = path.join(dir, "seed.yaml");
    writeFileSync(fleet, readFileSync(path.join(root, "examples/seed-8.yaml"), "utf8").replace("snmpPort: 16161", `snmpPort: ${port}`));
    emulator = spawn(process.execPath, [main, "switch-emulator", "--fleet", fleet, "--state", path.join(dir, "switch.json")], { env, stdio: ["ignore", "pipe", "pipe"] });
    exited = new Promise((r) => emulator.once("exit", (code) => r(code)));
    const banner = await new Promise<string>((resolve, reject) => {
      let out = "";
      emulator.stdout!.on("data", (d: Buffer) => {
        out += String(d);
        if (out.includes("\n")) resolve(out);
      });
      emulator.once("exit", (code) => reject(new Error(`emulator exited (${code}) before listening`)));
    });
    expect(banner).toContain(`switch emulator listening on udp 127.0.0.1:${port}: 24 ports, PoE group 1; read-only community, read-write community`);
    expect(banner).not.toContain(RW);
  });

  afterAll(async () => {
    if (emulator && emulator.exitCode === null) emulator.kill("SIGTERM");
  });

  it("plan prints the wanted table without touching the switch", async () => {
    const r = await inProcess(["switch", "plan", fleet]);
    expect(r.error).toBeUndefined();
    expect(r.stdout).toMatch(/^10\s+pifleet-pi01\s+1\s+24$/m);
    expect(r.stdout).toMatch(/^131\s+pifleet-public\s+-\s+1-8,23$/m);
  });

  it("diff, apply --dry-run, apply, then diff --exit-code is clean and a second apply writes nothing", async () => {
    const diff = await inProcess(["switch", "diff", fleet, "--exit-code"]);
    expect(diff.exitCode).toBe(1);
    expect(diff.stdout).toContain('+ vlan 10 "pifleet-pi01" is missing (wants untagged 1, egress 1,24)');
    expect(diff.stdout).toContain("~ port 8 pvid 1 → 17");
    expect(diff.stdout).toContain('? vlan 1 "default" is not in the plan (left alone)');

    const dry = await inProcess(["switch", "apply", fleet, "--dry-run"]);
    expect(dry.stdout).toContain("would create vlan 10");
    expect(dry.stdout).toContain("would set port 1 pvid 10");
    expect((await inProcess(["switch", "diff", fleet, "--exit-code"])).exitCode).toBe(1);

    const apply = await inProcess(["switch", "apply", fleet]);
    expect(apply.error).toBeUndefined();
    expect(apply.stdout).toContain("applied 26 change(s), read back and verified");

    const clean = await inProcess(["switch", "diff", fleet, "--exit-code", "--json"]);
    expect(clean.exitCode).toBeUndefined();
    expect(JSON.parse(clean.stdout).drift).toEqual([]);
    expect((await inProcess(["switch", "apply", fleet])).stdout).toContain("switch already matches the plan: nothing written");
  });

  it("power off / status / on / cycle, by Pi name or port", async () => {
    expect((await inProcess(["switch", "power", fleet, "pi02", "off"])).stdout).toBe("port 2 (pi02): power off (read back and verified)\n");
    expect((await inProcess(["switch", "power", fleet, "2", "status"])).stdout).toBe("port 2 (pi02): power off, PoE disabled, link down\n");
    expect((await inProcess(["switch", "power", fleet, "2", "on"])).stdout).toBe("port 2 (pi02): power on (read back and verified)\n");
    expect((await inProcess(["switch", "power", fleet, "pi02", "status"])).stdout).toBe("port 2 (pi02): power on, PoE deliveringPower, link up\n");
    expect((await inProcess(["switch", "power", fleet, "pi03", "cycle", "--dwell", "0.1"])).stdout).toMatch(/^port 3 \(pi03\): power cycled \(off \d+ ms, dwell \d+ ms, on \d+ ms; both verified\)\n$/);
    // The trunk's fileserver has its own supply: no PoE signature, link up.
    expect((await inProcess(["switch", "power", fleet, "24", "status"])).stdout).toBe("port 24: power on, PoE searching, link up\n");
  });

  it("user mistakes are UsageErrors naming the field at fault; a wrong community says so", async () => {
    const bad = await inProcess(["switch", "power", fleet, "pi99", "off"]);
    expect(bad.error).toBeInstanceOf(UsageError);
    expect(bad.error?.message).toBe('PORT: "pi99" is neither a port number nor a Pi of fleet seed');
    expect((await inProcess(["switch", "power", fleet, "3", "reboot"])).error).toBeInstanceOf(UsageError);
    const noSecret = await inProcess(["switch", "diff", fleet], "");
    expect(noSecret.error).toBeInstanceOf(UsageError);
    expect(noSecret.error?.message).toBe("switch.snmp.community: secret: environment variable PIFLEET_SNMP_COMMUNITY is not set");
    const wrong = await inProcess(["switch", "power", fleet, "3", "status", "--timeout", "200", "--attempts", "2"], "not-the-community");
    expect(wrong.error?.message).toMatch(/the community \(switch\.snmp\.community\) is likely wrong/);
    expect(wrong.error?.message).not.toContain("not-the-community");
  });

  // Spawned processes start slowly on a loaded machine: a generous limit, not a timing claim.
  it("the built CLI has the commands wired: exit 0 on success, 2 on a usage error", { timeout: 90_000 }, async () => {
    const [status, usage] = await Promise.all([pifleet(["switch", "power", fleet, "pi02", "status"]), pifleet(["switch", "diff", fleet], { ...env, PIFLEET_SNMP_COMMUNITY: "" })]);
    expect(status.code).toBe(0);
    expect(status.stdout).toBe("port 2 (pi02): power on, PoE deliveringPower, link up\n");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe("pifleet: switch.snmp.community: secret: environment variable PIFLEET_SNMP_COMMUNITY is not set\n");
  });

  it("the emulator stops cleanly on SIGTERM", async () => {
    emulator.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

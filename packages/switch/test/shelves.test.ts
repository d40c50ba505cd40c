import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { OID, startSwitchEmulator, type SwitchEmulator } from "@pifleet/switch";
import { registerSwitch } from "../../cli/src/commands/switch.js";
import { quiet, snmpTool, v2cArgs } from "./helpers.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const { Command } = createRequire(path.join(root, "packages/cli/package.json"))("commander") as typeof import("commander");
const RW_A = "rw-shelf-a";
const RW_B = "rw-shelf-b";

/** `pifleet switch …` in this process, with both shelves' communities in the environment. */
async function cli(args: string[]): Promise<{ stdout: string; error?: Error; exitCode?: number }> {
  const program = new Command("pifleet").exitOverride();
  registerSwitch(program);
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  Object.assign(process.env, { PIFLEET_SNMP_COMMUNITY_A: RW_A, PIFLEET_SNMP_COMMUNITY_B: RW_B, PIFLEET_LOG_LEVEL: "silent" });
  let error: Error | undefined;
  try {
    await program.parseAsync(["node", "pifleet", ...args]);
  } catch (err) {
    error = err as Error;
  } finally {
    spy.mockRestore();
  }
  const exitCode = process.exitCode === undefined ? undefined : Number(process.exitCode);
  process.exitCode = undefined;
  return { stdout: out.join(""), error, exitCode };
}

describe("two shelves on two switch emulators with the same VLAN ids", () => {
  let a: SwitchEmulator;
  let b: SwitchEmulator;
  let fleet: string;

  beforeAll(async () => {
    a = await startSwitchEmulator({ ports: 104, rwCommunity: RW_A, logger: quiet });
    b = await startSwitchEmulator({ ports: 104, rwCommunity: RW_B, cisco: true, logger: quiet });
    const text = readFileSync(path.join(root, "examples/shelves-2.yaml"), "utf8")
      .replace("address: 192.0.2.21", `address: 127.0.0.1\n      snmpPort: ${a.port}`)
      .replace("address: 192.0.2.22", `address: 127.0.0.1\n      snmpPort: ${b.port}`);
    fleet = path.join(mkdtempSync(path.join(tmpdir(), "pifleet-shelves-")), "fleet.yaml");
    writeFileSync(fleet, text);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it("applies each shelf to its own switch, one at a time, VLAN 10 on both", async () => {
    const r = await cli(["switch", "apply", fleet, "--json"]);
    expect(r.error).toBeUndefined();
    const results = JSON.parse(r.stdout) as Array<{ shelf: string; actions: unknown[] }>;
    expect(results.map((x) => x.shelf)).toEqual(["rack1-a", "rack1-b"]);
    expect(results.every((x) => x.actions.length > 0)).toBe(true);
    // Each switch got its own shelf's table: VLAN 10 untagged on port 1, tagged on the trunk.
    const vlan = (emu: SwitchEmulator, id: number) => emu.state.vlans().find((v) => v.vlan === id);
    expect(vlan(a, 10)).toMatchObject({ name: "pifleet-a01", untagged: [1], egress: [1, 97] });
    expect(vlan(b, 10)).toMatchObject({ name: "pifleet-b01", untagged: [1], egress: [1, 97] });
    expect(vlan(a, 12)?.name).toBe("pifleet-a03");
    expect(vlan(b, 12)).toBeUndefined();
  });

  it("diffs each shelf independently: drift on one switch is reported for that shelf only", async () => {
    const clean = await cli(["switch", "diff", fleet, "--json", "--exit-code"]);
    expect(clean.exitCode).toBeUndefined();
    // Someone deletes VLAN 11 on shelf b's switch, behind pifleet's back.
    expect((await snmpTool("snmpset", [...v2cArgs(RW_B, b.port), `${OID.dot1qVlanStaticRowStatus}.11`, "i", "6"])).ok).toBe(true);
    const r = await cli(["switch", "diff", fleet, "--json", "--exit-code"]);
    const diffs = JSON.parse(r.stdout) as Array<{ shelf: string; drift: Array<{ kind: string; vlan?: number }> }>;
    expect(diffs.find((d) => d.shelf === "rack1-a")!.drift).toEqual([]);
    expect(diffs.find((d) => d.shelf === "rack1-b")!.drift).toContainEqual(expect.objectContaining({ kind: "missing-vlan", vlan: 11 }));
    expect(r.exitCode).toBe(1);
  });

  it("applies one shelf alone with --shelf, and both in parallel with --parallel 2", async () => {
    const one = await cli(["switch", "apply", fleet, "--shelf", "rack1-b", "--json"]);
    const only = JSON.parse(one.stdout) as Array<{ shelf: string; actions: Array<{ kind: string }> }>;
    expect(only.map((x) => x.shelf)).toEqual(["rack1-b"]);
    expect(only[0].actions.map((x) => x.kind)).toContain("create-vlan");
    const both = await cli(["switch", "apply", fleet, "--parallel", "2", "--json"]);
    expect((JSON.parse(both.stdout) as Array<{ actions: unknown[] }>).map((x) => x.actions.length)).toEqual([0, 0]);
  });

  it("power names the shelf from the Pi, and wants --shelf for a bare port", async () => {
    const r = await cli(["switch", "power", fleet, "b02", "off"]);
    expect(r.error).toBeUndefined();
    expect(b.state.power(2)).toBe(false);
    expect(a.state.power(2)).toBe(true);
    const bare = await cli(["switch", "power", fleet, "2", "status"]);
    expect(bare.error?.message).toMatch(/the fleet has 2 shelves; say which with --shelf, or name the Pi/);
    const unknown = await cli(["switch", "plan", fleet, "--shelf", "nope"]);
    expect(unknown.error?.message).toMatch(/--shelf: no shelf "nope" in fleet web \(known: rack1-a, rack1-b\)/);
    await cli(["switch", "power", fleet, "2", "on", "--shelf", "rack1-b"]);
    expect(b.state.power(2)).toBe(true);
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LinkReader, OID, readBridgePorts, SnmpClient, startSwitchEmulator, v2c, type SwitchEmulator } from "@pifleet/switch";
import { quiet, snmpTool, v2cArgs } from "./helpers.js";

const RW = "rw-Secret-7";
const started: SwitchEmulator[] = [];
const clients: SnmpClient[] = [];

async function emulator(options: Parameters<typeof startSwitchEmulator>[0] = {}): Promise<SwitchEmulator> {
  const emu = await startSwitchEmulator({ rwCommunity: RW, community: "public", logger: quiet, ...options });
  started.push(emu);
  return emu;
}

function client(emu: SwitchEmulator): SnmpClient {
  const c = new SnmpClient({ name: "emu", host: "127.0.0.1", port: emu.port }, { write: v2c(RW) }, { timeoutMs: 500, logger: quiet });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const e of started.splice(0)) await e.stop();
});

const set = (emu: SwitchEmulator, ...args: string[]) => snmpTool("snmpset", [...v2cArgs(RW, emu.port), ...args]);
const walk = (emu: SwitchEmulator, oid: string) => snmpTool("snmpbulkwalk", [...v2cArgs("public", emu.port), oid]);

describe("the switch emulator", () => {
  it("serves the system group, and bridge ports mapped to their own ifIndex numbers", async () => {
    const emu = await emulator({ ports: 8, ifIndexBase: 10100, sysName: "lab-switch" });
    const c = client(emu);
    const [descr, name, uptime] = await c.get([`${OID.sysDescr}.0`, `${OID.sysName}.0`, `${OID.sysUpTime}.0`]);
    expect(String(descr.value)).toMatch(/pifleet emulated PoE switch, 8 ports/);
    expect(String(name.value)).toBe("lab-switch");
    expect(typeof uptime.value).toBe("number");
    const map = await readBridgePorts(c);
    expect([...map]).toEqual(Array.from({ length: 8 }, (_, i) => [i + 1, 10101 + i]));
    expect((await walk(emu, OID.ifOperStatus)).out).toContain(`.${OID.ifOperStatus}.10108 = INTEGER: 1`);
  });

  it("RowStatus: createAndGo creates an active row, a second createAndGo is inconsistent, destroy removes it, VLAN 1 stays", async () => {
    const emu = await emulator({ ports: 16 });
    const created = await set(emu, `${OID.dot1qVlanStaticRowStatus}.42`, "i", "4", `${OID.dot1qVlanStaticName}.42`, "s", "answer");
    expect(created.ok).toBe(true);
    expect(emu.state.vlans().find((v) => v.vlan === 42)).toEqual({ vlan: 42, name: "answer", egress: [], untagged: [], status: "active" });
    expect((await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.dot1qVlanStaticRowStatus}.42`])).out).toContain("INTEGER: 1");

    const again = await set(emu, `${OID.dot1qVlanStaticRowStatus}.42`, "i", "4");
    expect(again.ok).toBe(false);
    expect(again.out).toMatch(/inconsistentValue/);

    expect((await set(emu, `${OID.dot1qVlanStaticRowStatus}.42`, "i", "6")).ok).toBe(true);
    expect(emu.state.vlans().map((v) => v.vlan)).toEqual([1]);
    expect((await walk(emu, OID.dot1qVlanStaticRowStatus)).out.trim().split("\n")).toHaveLength(1);

    // The read-only community cannot create rows, and leaves no trace trying (net-snmp would).
    const denied = await snmpTool("snmpset", [...v2cArgs("public", emu.port), `${OID.dot1qVlanStaticRowStatus}.50`, "i", "4"]);
    expect(denied.out).toMatch(/noAccess/);
    expect((await walk(emu, OID.dot1qVlanStaticRowStatus)).out).not.toMatch(/\.50 = /);

    const keep = await set(emu, `${OID.dot1qVlanStaticRowStatus}.1`, "i", "6");
    expect(keep.ok).toBe(false);
    expect(emu.state.vlans().map((v) => v.vlan)).toEqual([1]);

    // createAndWait leaves the row notInService until someone activates it.
    expect((await set(emu, `${OID.dot1qVlanStaticRowStatus}.43`, "i", "5")).ok).toBe(true);
    expect(emu.state.vlans().find((v) => v.vlan === 43)?.status).toBe("notInService");
    expect((await set(emu, `${OID.dot1qVlanStaticRowStatus}.43`, "i", "1")).ok).toBe(true);
    expect(emu.state.vlans().find((v) => v.vlan === 43)?.status).toBe("active");
  });

  it("refuses inconsistent VLAN writes as a whole PDU, leaving no half-created row behind", async () => {
    const emu = await emulator({ ports: 16 });
    expect((await set(emu, `${OID.dot1qVlanStaticRowStatus}.20`, "i", "4")).ok).toBe(true);
    const before = JSON.stringify(emu.state.snapshot());

    const notSubset = await set(emu, `${OID.dot1qVlanStaticEgressPorts}.20`, "x", "8000", `${OID.dot1qVlanStaticUntaggedPorts}.20`, "x", "4000");
    expect(notSubset.out).toMatch(/inconsistentValue/);
    const beyond = await set(emu, `${OID.dot1qVlanStaticEgressPorts}.20`, "x", "0000FF");
    expect(beyond.out).toMatch(/wrongLength/);
    const pvidNowhere = await set(emu, `${OID.dot1qPvid}.3`, "u", "77");
    expect(pvidNowhere.out).toMatch(/inconsistentValue/);
    const longName = await set(emu, `${OID.dot1qVlanStaticName}.20`, "s", "x".repeat(33));
    expect(longName.out).toMatch(/wrongLength/);
    expect(JSON.stringify(emu.state.snapshot())).toBe(before);

    // createAndGo + an impossible PortList in one PDU: nothing may remain of VLAN 21.
    const half = await set(emu, `${OID.dot1qVlanStaticRowStatus}.21`, "i", "4", `${OID.dot1qVlanStaticEgressPorts}.21`, "x", "000001");
    expect(half.ok).toBe(false);
    expect(emu.state.vlans().map((v) => v.vlan)).toEqual([1, 20]);
    expect((await walk(emu, OID.dot1qVlanStaticEntry)).out).not.toMatch(/\.21 = /);

    // The same lists written together in one PDU are fine.
    expect((await set(emu, `${OID.dot1qVlanStaticEgressPorts}.20`, "x", "C000", `${OID.dot1qVlanStaticUntaggedPorts}.20`, "x", "4000")).ok).toBe(true);
    expect(emu.state.vlans().find((v) => v.vlan === 20)).toMatchObject({ egress: [1, 2], untagged: [2] });
  });

  it("keeps its state in a JSON file across restarts", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "pifleet-emu-")), "switch.json");
    const first = await emulator({ ports: 16, stateFile: file });
    const c = client(first);
    await c.setVerified([{ oid: `${OID.pethPsePortAdminEnable}.1.2`, type: "Integer", value: 2 }]);
    expect((await set(first, `${OID.dot1qVlanStaticRowStatus}.30`, "i", "4", `${OID.dot1qVlanStaticName}.30`, "s", "kept")).ok).toBe(true);
    expect((await set(first, `${OID.dot1qPvid}.4`, "u", "30")).ok).toBe(true);
    const saved = JSON.parse(readFileSync(file, "utf8"));
    expect(saved.format).toBe("pifleet-switch-emulator/1");
    expect(saved.power.find((p: { port: number }) => p.port === 2).on).toBe(false);
    await first.stop();

    const second = await emulator({ ports: 16, stateFile: file });
    expect(second.state.power(2)).toBe(false);
    expect(second.state.power(3)).toBe(true);
    expect(second.state.pvid(4)).toBe(30);
    expect(second.state.vlans().find((v) => v.vlan === 30)?.name).toBe("kept");
    expect((await snmpTool("snmpget", [...v2cArgs("public", second.port), `${OID.pethPsePortAdminEnable}.1.2`, `${OID.ifOperStatus}.1002`])).out).toMatch(/INTEGER: 2\n.*INTEGER: 2/);
    await second.stop();

    await expect(emulator({ ports: 24, stateFile: file })).rejects.toThrow(`${file}: ports: the file holds 16 ports, the emulator was started with 24`);
    writeFileSync(file, "{nope");
    await expect(emulator({ ports: 16, stateFile: file })).rejects.toThrow(`${file}: not JSON`);
  });

  it("the API side: setPower fires the hook and the event; a pulled cable takes the link down; a self-powered port keeps its link without PoE", async () => {
    const calls: Array<[number, boolean]> = [];
    const emu = await emulator({ ports: 8, selfPowered: [8], onPowerChange: (p, on) => void calls.push([p, on]) });
    const events: Array<[number, boolean]> = [];
    emu.on("power", (p, on) => events.push([p, on]));
    const link = new LinkReader(client(emu));
    emu.setPower(2, false);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([[2, false]]);
    expect(events).toEqual([[2, false]]);
    expect(await link.state(2)).toBe("down");
    emu.setCable(3, false);
    expect(await link.state(3)).toBe("down");
    expect(emu.state.detection(3)).toBe("searching");
    emu.setPower(8, false);
    expect(await link.state(8)).toBe("up");
    expect(emu.state.detection(8)).toBe("disabled");
    expect(() => emu.setPower(9, true)).toThrow(/ports 1\.\.8, not 9/);
  });

  it("several emulators side by side, each on its own free port", async () => {
    const [a, b] = await Promise.all([emulator({ ports: 8, sysName: "a" }), emulator({ ports: 8, sysName: "b" })]);
    expect(a.port).not.toBe(b.port);
    expect(String((await client(a).get([`${OID.sysName}.0`]))[0].value)).toBe("a");
    expect(String((await client(b).get([`${OID.sysName}.0`]))[0].value)).toBe("b");
    await expect(startSwitchEmulator({ port: a.port, logger: quiet })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });

  it("listens on IPv6 loopback too, and the client speaks udp6 to it", async () => {
    const emu = await emulator({ ports: 8, address: "::1" });
    const c = new SnmpClient({ name: "v6", host: "::1", port: emu.port }, { write: v2c(RW) }, { timeoutMs: 500, logger: quiet });
    clients.push(c);
    expect(c.label).toBe(`v6 ([::1]:${emu.port})`);
    await c.setVerified([{ oid: `${OID.pethPsePortAdminEnable}.1.2`, type: "Integer", value: 2 }]);
    expect(emu.state.power(2)).toBe(false);
  });
});

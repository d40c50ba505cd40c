import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import snmp from "net-snmp";
import {
  createPowerDriver,
  OID,
  openSwitch,
  powerDriverNames,
  SnmpClient,
  SnmpError,
  startSwitchEmulator,
  switchResourceFromFleet,
  UnknownPowerDriverError,
  v2c,
  type SwitchEmulator,
  type SwitchHandle,
} from "@pifleet/switch";
import { POE_DRIVERS } from "@pifleet/core";
import { exampleFleet, quiet, snmpTool, v2cArgs } from "./helpers.js";

const RW = "rw-Secret-7";
const env = { PIFLEET_SNMP_COMMUNITY: RW };
const quick = { timeoutMs: 400, attempts: 2, backoffMs: 50, logger: quiet };

describe("PoE power over POWER-ETHERNET-MIB (rfc3621 driver) against the emulator", () => {
  let emu: SwitchEmulator;
  let sw: SwitchHandle;
  const hook: Array<[number, boolean]> = [];

  beforeAll(async () => {
    emu = await startSwitchEmulator({ logger: quiet, ports: 24, rwCommunity: RW, community: "public", onPowerChange: (port, on) => void hook.push([port, on]) });
    sw = openSwitch(switchResourceFromFleet(exampleFleet("seed-8.yaml", emu.port), env), quick);
  });
  afterAll(async () => {
    await sw?.close();
    await emu?.stop();
  });

  const nextPower = (): Promise<[number, boolean]> => new Promise((resolve) => emu.once("power", (port: number, on: boolean) => resolve([port, on])));

  it("turns a port off and on, each verified by read-back, as snmpget sees it; the hook and ifOperStatus follow", async () => {
    expect(await sw.power.powerGet(3)).toBe(true);
    const before = sw.snmp.stats.setPdus;

    const event = nextPower();
    await sw.power.powerSet(3, false);
    expect(await event).toEqual([3, false]);
    expect(sw.snmp.stats.setPdus - before).toBe(1);
    expect(await sw.power.powerGet(3)).toBe(false);
    const admin = await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.pethPsePortAdminEnable}.1.3`, `${OID.pethPsePortDetectionStatus}.1.3`, `${OID.ifOperStatus}.1003`]);
    expect(admin.out).toContain(`.${OID.pethPsePortAdminEnable}.1.3 = INTEGER: 2`);
    expect(admin.out).toContain(`.${OID.pethPsePortDetectionStatus}.1.3 = INTEGER: 1`);
    expect(admin.out).toContain(`.${OID.ifOperStatus}.1003 = INTEGER: 2`);
    expect(await sw.link.state(3)).toBe("down");
    expect(emu.state.power(3)).toBe(false);
    expect(emu.state.power(4)).toBe(true); // the neighbour is untouched
    expect(await sw.link.state(4)).toBe("up");

    const on = nextPower();
    await sw.power.powerSet(3, true);
    expect(await on).toEqual([3, true]);
    expect(await sw.power.powerGet(3)).toBe(true);
    expect((await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.pethPsePortAdminEnable}.1.3`])).out).toContain("INTEGER: 1");
    expect(await sw.link.state(3)).toBe("up");
    expect((await sw.status([3]))[0]).toEqual({ port: 3, power: true, detection: "deliveringPower", link: "up" });
    expect(hook).toEqual([
      [3, false],
      [3, true],
    ]);
  });

  it("setting the state a port already has writes once and fires no hook", async () => {
    hook.length = 0;
    await sw.power.powerSet(5, true);
    await new Promise((r) => setImmediate(r));
    expect(hook).toEqual([]);
  });

  it("power-cycles: off (verified), the dwell, on (verified)", async () => {
    const seen: Array<[number, boolean, number]> = [];
    const listener = (port: number, on: boolean): void => void seen.push([port, on, Date.now()]);
    emu.on("power", listener);
    const result = await sw.powerCycle(6, 300);
    await new Promise((r) => setImmediate(r));
    emu.off("power", listener);
    expect(seen.map(([p, on]) => [p, on])).toEqual([
      [6, false],
      [6, true],
    ]);
    expect(seen[1][2] - seen[0][2]).toBeGreaterThanOrEqual(290);
    expect(result.dwellMs).toBeGreaterThanOrEqual(290);
    expect(emu.state.power(6)).toBe(true);
  });

  it("the read-only community cannot switch power: noAccess, named as such, and nothing changes", async () => {
    const ro = new SnmpClient({ name: "shelf-switch", host: "127.0.0.1", port: emu.port }, { write: v2c("public") }, quick);
    const driver = createPowerDriver("rfc3621", { snmp: ro, group: 1 });
    const err = await driver.powerSet(7, false).catch((e: unknown) => e);
    await ro.close();
    expect(err).toBeInstanceOf(SnmpError);
    expect((err as SnmpError).code).toBe("access");
    expect((err as SnmpError).message).toMatch(/refused to write pethPsePortAdminEnable\.1\.7 \(noAccess\): the community has read-only access/);
    expect(emu.state.power(7)).toBe(true);
    const tool = await snmpTool("snmpset", [...v2cArgs("public", emu.port), `${OID.pethPsePortAdminEnable}.1.7`, "i", "2"]);
    expect(tool.ok).toBe(false);
    expect(tool.out).toMatch(/noAccess/);
    expect(emu.state.power(7)).toBe(true);
  });

  it("a port the switch does not have is named, not guessed", async () => {
    const err = await sw.power.powerSet(30, false).catch((e: unknown) => e);
    expect((err as SnmpError).code).toBe("missing");
    expect((err as SnmpError).message).toMatch(/no pethPsePortAdminEnable\.1\.30/);
    await expect(sw.power.powerGet(30)).rejects.toThrow(/port 30 of PoE group 1 does not exist/);
  });
});

describe("the driver registry: one vendor per file, chosen by switch.poe.driver", () => {
  let emu: SwitchEmulator;
  beforeAll(async () => {
    emu = await startSwitchEmulator({ logger: quiet, ports: 24, rwCommunity: RW, cisco: true });
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it("knows rfc3621 and cisco, the names the fleet file accepts; another is refused when the file is read", () => {
    expect(powerDriverNames()).toEqual([...POE_DRIVERS].sort());
    expect(() => exampleFleet("seed-8.yaml", emu.port, (y) => y.replace("driver: rfc3621", "driver: netgear"))).toThrow(
      /switch\.poe\.driver: unknown PoE driver "netgear" \(known: rfc3621, cisco\)/,
    );
    // A resource built by hand (not from a fleet file) still gets the registry's own refusal.
    const fleet = exampleFleet("seed-8.yaml", emu.port);
    const resource = switchResourceFromFleet(fleet, env);
    expect(() => openSwitch({ ...resource, poe: { ...resource.poe, driver: "netgear" } })).toThrow(UnknownPowerDriverError);
  });

  it("the cisco driver writes cpeExtPsePortEnable (disable(4) / auto(1)), and the standard MIB agrees", async () => {
    const fleet = exampleFleet("seed-8.yaml", emu.port, (y) => y.replace("driver: rfc3621", "driver: cisco"));
    const sw = openSwitch(switchResourceFromFleet(fleet, env), quick);
    try {
      expect(sw.power.name).toBe("cisco");
      await sw.power.powerSet(5, false);
      expect(emu.state.power(5)).toBe(false);
      const off = await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.cpeExtPsePortEnable}.1.5`, `${OID.pethPsePortAdminEnable}.1.5`]);
      expect(off.out).toContain(`.${OID.cpeExtPsePortEnable}.1.5 = INTEGER: 4`);
      expect(off.out).toContain(`.${OID.pethPsePortAdminEnable}.1.5 = INTEGER: 2`);
      expect(await sw.power.powerGet(5)).toBe(false);

      await sw.power.powerSet(5, true);
      expect(emu.state.power(5)).toBe(true);
      expect((await snmpTool("snmpget", [...v2cArgs("public", emu.port), `${OID.cpeExtPsePortEnable}.1.5`])).out).toContain("INTEGER: 1");

      // static(2) is a powered port too: someone's power policy is read as on, not fought.
      expect((await snmpTool("snmpset", [...v2cArgs(RW, emu.port), `${OID.cpeExtPsePortEnable}.1.5`, "i", "2"])).ok).toBe(true);
      expect(await sw.power.powerGet(5)).toBe(true);
      const sets = sw.snmp.stats.setPdus;
      await sw.power.powerSet(5, true);
      expect(sw.snmp.stats.setPdus).toBe(sets + 1);
    } finally {
      await sw.close();
    }
  });

  it("the cisco driver on a switch without the Cisco MIB fails clearly (the object is missing)", async () => {
    const plain = await startSwitchEmulator({ logger: quiet, ports: 24, rwCommunity: RW });
    const sw = openSwitch(switchResourceFromFleet(exampleFleet("seed-8.yaml", plain.port, (y) => y.replace("driver: rfc3621", "driver: cisco")), env), quick);
    try {
      const err = await sw.power.powerSet(2, false).catch((e: unknown) => e);
      expect((err as SnmpError).code).toBe("missing");
      expect((err as SnmpError).message).toMatch(/cpeExtPsePortEnable\.1\.2/);
      expect(plain.state.power(2)).toBe(true);
    } finally {
      await sw.close();
      await plain.stop();
    }
  });
});

describe("the SNMP session", () => {
  let agent: ReturnType<typeof snmp.createAgent> | undefined;
  afterEach(() => agent?.close());

  it("serializes operations per switch: one client's set and its read-back never interleave with another's", async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    agent = snmp.createAgent({ port, address: "127.0.0.1" }, () => undefined);
    agent.getAuthorizer().addCommunity(RW);
    const seen: string[] = [];
    const mib = agent.getMib();
    mib.registerProvider({
      name: "peth",
      type: snmp.MibProviderType.Table,
      oid: OID.pethPsePortEntry,
      maxAccess: snmp.MaxAccess["not-accessible"],
      tableColumns: [
        { number: 1, name: "g", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["not-accessible"] },
        { number: 2, name: "p", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["not-accessible"] },
        { number: 3, name: "admin", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["read-write"] },
      ],
      tableIndex: [{ columnName: "g" }, { columnName: "p" }],
      handler: (req) => {
        const port = req.oid.split(".").pop();
        if (req.operation === snmp.PduType.GetRequest) seen.push(`get ${port}`);
        else if (req.commitSet) seen.push(`set ${port}`);
        req.done();
      },
    });
    for (const p of [1, 2, 3]) mib.addTableRow("peth", [1, p, 1]);
    await new Promise((r) => setTimeout(r, 50));
    const mk = () => new SnmpClient({ name: "queued", host: "127.0.0.1", port }, { write: v2c(RW) }, quick);
    const [a, b, c] = [mk(), mk(), mk()];
    await Promise.all([a, b, c].map((client, i) => createPowerDriver("rfc3621", { snmp: client, group: 1 }).powerSet(i + 1, false)));
    await Promise.all([a.close(), b.close(), c.close()]);
    expect(seen).toEqual(["set 1", "get 1", "set 2", "get 2", "set 3", "get 3"]);
  });

  it("a switch that accepts a write but keeps the old value is retried, then reported (not believed)", async () => {
    // A stubborn PoE controller: every set succeeds, every read says the port is on.
    const port = 20000 + Math.floor(Math.random() * 20000);
    agent = snmp.createAgent({ port, address: "127.0.0.1" }, () => undefined);
    agent.getAuthorizer().addCommunity(RW);
    const mib = agent.getMib();
    mib.registerProvider({
      name: "peth",
      type: snmp.MibProviderType.Table,
      oid: OID.pethPsePortEntry,
      maxAccess: snmp.MaxAccess["not-accessible"],
      tableColumns: [
        { number: 1, name: "g", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["not-accessible"] },
        { number: 2, name: "p", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["not-accessible"] },
        { number: 3, name: "admin", type: snmp.ObjectType.Integer, maxAccess: snmp.MaxAccess["read-write"] },
      ],
      tableIndex: [{ columnName: "g" }, { columnName: "p" }],
      handler: (req) => {
        if (req.operation === snmp.PduType.GetRequest && req.instanceNode) req.instanceNode.value = 1;
        req.done();
      },
    });
    mib.addTableRow("peth", [1, 4, 1]);
    await new Promise((r) => setTimeout(r, 50));
    const client = new SnmpClient({ name: "stubborn", host: "127.0.0.1", port }, { write: v2c(RW) }, { ...quick, verifyAttempts: 3 });
    const err = await createPowerDriver("rfc3621", { snmp: client, group: 1 })
      .powerSet(4, false)
      .catch((e: unknown) => e);
    await client.close();
    expect((err as SnmpError).code).toBe("verify");
    expect((err as SnmpError).message).toMatch(/accepted the write but reads back something else after 3 tries — pethPsePortAdminEnable\.1\.4: wrote 2, reads 1/);
    expect(client.stats.setPdus).toBe(3);
    expect(client.stats.verifyRounds).toBe(3);
  });
});

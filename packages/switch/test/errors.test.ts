import dgram from "node:dgram";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import snmp from "net-snmp";
import { createLogger, plan } from "@pifleet/core";
import {
  applySwitchPlan,
  OID,
  openSwitch,
  SnmpClient,
  SnmpError,
  startSwitchEmulator,
  switchResourceFromFleet,
  v2c,
  v3,
  type SwitchEmulator,
} from "@pifleet/switch";
import { exampleFleet, quiet, snmpTool, v3Fleet } from "./helpers.js";

const RW = "rw-Secret-7";
const AUTH = "auth-Key-1234";
const PRIV = "priv-Key-5678";
const SECRETS = [RW, AUTH, PRIV, "wrong-community", "wrong-Auth-Key", "wrong-Priv-Key"];
const fast = { timeoutMs: 250, attempts: 3, backoffMs: 40, logger: quiet };

/** Everything a caller could print of an error. */
function everything(err: unknown): string {
  const e = err as Error;
  return [e.message, String(e), e.stack ?? "", inspect(e), JSON.stringify(e)].join("\n");
}

async function failure(run: () => Promise<unknown>): Promise<{ err: SnmpError; ms: number }> {
  const t0 = Date.now();
  const err = await run().then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SnmpError);
  return { err: err as SnmpError, ms: Date.now() - t0 };
}

describe("credentials and failures over real SNMP", () => {
  let emu: SwitchEmulator;
  beforeAll(async () => {
    emu = await startSwitchEmulator({
      ports: 24,
      rwCommunity: RW,
      community: "public",
      users: [{ name: "pifleet", authProtocol: "sha256", authKey: AUTH, privProtocol: "aes", privKey: PRIV }],
      logger: quiet,
    });
  });
  afterAll(async () => {
    await emu?.stop();
  });
  const target = () => ({ name: "shelf-switch", host: "127.0.0.1", port: emu.port });
  const power = (client: SnmpClient) => client.setVerified([{ oid: `${OID.pethPsePortAdminEnable}.1.2`, type: "Integer", value: 2 }]);

  it("SNMPv3 authPriv (sha256/aes) from the fleet's SecretRefs: power and VLANs work; snmpget agrees", async () => {
    const fleet = v3Fleet(emu.port);
    const resource = switchResourceFromFleet(fleet, { SNMP_AUTH: AUTH, SNMP_PRIV: PRIV });
    expect(resource.credentials.version).toBe("3");
    const sw = openSwitch(resource, fast);
    try {
      await sw.power.powerSet(4, false);
      expect(emu.state.power(4)).toBe(false);
      await sw.power.powerSet(4, true);
      const result = await applySwitchPlan(sw.vlans, plan(fleet).shelves[0].switch, { logger: quiet });
      expect(result.after?.drift).toEqual([]);
    } finally {
      await sw.close();
    }
    const tool = await snmpTool("snmpget", ["-v3", "-l", "authPriv", "-u", "pifleet", "-a", "SHA-256", "-A", AUTH, "-x", "AES", "-X", PRIV, `127.0.0.1:${emu.port}`, `${OID.dot1qPvid}.3`]);
    expect(tool.out).toContain(`.${OID.dot1qPvid}.3 = Gauge32: 12`);
  });

  it("a wrong v2c community: retried, then 'the community is likely wrong', in bounded time", async () => {
    const client = new SnmpClient(target(), { write: v2c("wrong-community") }, fast);
    const { err, ms } = await failure(() => power(client));
    await client.close();
    expect(err.code).toBe("community");
    expect(err.message).toMatch(/no answer to SNMPv2c set pethPsePortAdminEnable\.1\.2 after 3 attempts .* yet the agent answers SNMPv3 discovery: the community \(switch\.snmp\.community\) is likely wrong/);
    expect(err.attempts).toBe(3);
    expect(client.stats.timeouts).toBe(3);
    // 3 × 250 ms + 40 + 80 ms back-off + one 250 ms probe, with room for a loaded machine.
    expect(ms).toBeLessThan(5000);
    expect(emu.state.power(2)).toBe(true);
  });

  it("a wrong auth key: usmStatsWrongDigests, said plainly, at once", async () => {
    const client = new SnmpClient(target(), { write: v3("pifleet", "wrong-Auth-Key", PRIV, "sha256") }, fast);
    const { err, ms } = await failure(() => power(client));
    await client.close();
    expect(err.code).toBe("auth");
    expect(err.message).toBe(
      `shelf-switch (127.0.0.1:${emu.port}): authentication failed for SNMPv3 user "pifleet" (authPriv, sha256/aes): the auth key or auth protocol (sha256) is wrong (usmStatsWrongDigests)`,
    );
    expect(ms).toBeLessThan(2000);
    expect(client.stats.timeouts).toBe(0);
    expect(emu.stats.wrongDigests).toBeGreaterThan(0);
  });

  it("a wrong priv key: usmStatsDecryptionErrors, said plainly, at once", async () => {
    const client = new SnmpClient(target(), { write: v3("pifleet", AUTH, "wrong-Priv-Key", "sha256") }, fast);
    const { err, ms } = await failure(() => power(client));
    await client.close();
    expect(err.code).toBe("decrypt");
    expect(err.message).toMatch(/could not decrypt our request from SNMPv3 user "pifleet" .*: the priv key or privacy protocol \(aes\) is wrong/);
    expect(ms).toBeLessThan(2000);
    expect(emu.stats.decryptionErrors).toBeGreaterThan(0);
  });

  it("an unknown user is named", async () => {
    const client = new SnmpClient(target(), { write: v3("nobody", AUTH, PRIV, "sha256") }, fast);
    const { err } = await failure(() => client.get([`${OID.sysName}.0`]));
    await client.close();
    expect(err.code).toBe("unknown-user");
    expect(err.message).toMatch(/the switch has no SNMPv3 user "nobody"/);
  });

  it("no community or key appears in errors, in the resource, or in the logs", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger("switch", { level: "debug" }, sink);
    const errors: unknown[] = [];
    for (const creds of [v2c("wrong-community"), v3("pifleet", "wrong-Auth-Key", PRIV, "sha256"), v3("pifleet", AUTH, "wrong-Priv-Key", "sha256"), v2c("public")]) {
      const client = new SnmpClient(target(), { write: creds, read: v2c(RW) }, { ...fast, logger });
      errors.push(await power(client).catch((e: unknown) => e));
      await client.close();
    }
    expect(errors.every((e) => e instanceof SnmpError)).toBe(true);
    const resource = switchResourceFromFleet(v3Fleet(emu.port), { SNMP_AUTH: AUTH, SNMP_PRIV: PRIV });
    const printed = [...errors.map(everything), JSON.stringify(resource), inspect(resource, { depth: 9 }), String(resource.credentials.version === "3" && resource.credentials.authKey), ...lines].join("\n");
    expect(lines.some((l) => l.includes("retrying"))).toBe(true); // the log was written to
    for (const s of SECRETS) expect(printed).not.toContain(s);
  });
});

describe("timeouts", () => {
  let silent: dgram.Socket;
  const received: Buffer[] = [];
  beforeAll(async () => {
    // Receives and never answers: a switch that is down, or a firewall that drops.
    silent = dgram.createSocket("udp4");
    silent.on("message", (msg) => received.push(msg));
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", r));
  });
  afterAll(() => silent.close());

  /** SNMP message version: 1 = v2c, 3 = v3 (the second TLV of the outer SEQUENCE). */
  const version = (msg: Buffer): number => {
    const lenBytes = msg[1] & 0x80 ? (msg[1] & 0x7f) + 1 : 1;
    return msg[1 + lenBytes + 2];
  };

  it("are retried with back-off (each attempt reaches the wire), then reported as no answer", async () => {
    received.length = 0;
    const client = new SnmpClient({ name: "shelf-switch", host: "127.0.0.1", port: silent.address().port }, { write: v2c(RW) }, { timeoutMs: 200, attempts: 4, backoffMs: 50, logger: quiet });
    const t0 = Date.now();
    const err = (await client.get([`${OID.sysName}.0`]).catch((e: unknown) => e)) as SnmpError;
    const ms = Date.now() - t0;
    await client.close();
    expect(err).toBeInstanceOf(SnmpError);
    expect(err.code).toBe("timeout");
    expect(err.attempts).toBe(4);
    expect(client.stats.attempts).toBe(4);
    expect(client.stats.timeouts).toBe(4);
    expect(err.message).toMatch(/no answer to get sysName\.0 after 4 attempts over \d+\.\d s: the switch is unreachable, its SNMP agent is off or on another port, or the community \(switch\.snmp\.community\) is wrong/);
    // Four v2c requests on the wire, then one v3 discovery probe (also unanswered).
    expect(received.map(version)).toEqual([1, 1, 1, 1, 3]);
    // 4 × 200 ms + 50 + 100 + 200 ms back-off + 200 ms probe.
    expect(ms).toBeGreaterThanOrEqual(1300);
    expect(ms).toBeLessThan(6000);
  });

  it("SNMPv3 silence after a successful discovery points at the priv key (agents that drop bad keys silently)", async () => {
    // net-snmp's own agent drops a request it cannot authenticate, without a report.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const agent = snmp.createAgent({ port, address: "127.0.0.1" }, () => undefined);
    agent.getAuthorizer().addUser({ name: "pifleet", level: snmp.SecurityLevel.authPriv, authProtocol: snmp.AuthProtocols.sha, authKey: AUTH, privProtocol: snmp.PrivProtocols.aes, privKey: PRIV });
    try {
      await new Promise((r) => setTimeout(r, 50));
      const client = new SnmpClient({ name: "quiet-switch", host: "127.0.0.1", port }, { write: v3("pifleet", AUTH, "wrong-Priv-Key") }, { timeoutMs: 200, attempts: 2, backoffMs: 20, logger: quiet });
      const err = (await client.get([`${OID.sysName}.0`]).catch((e: unknown) => e)) as SnmpError;
      await client.close();
      expect(err.code).toBe("decrypt");
      expect(err.message).toMatch(/answered SNMPv3 discovery but not our authenticated get sysName\.0 from user "pifleet" .*: the priv key or privacy protocol \(aes\) is likely wrong/);
      expect(err.message).not.toContain("wrong-Priv-Key");
    } finally {
      agent.close();
    }
  });
});

describe("fleet credentials", () => {
  it("a missing secret names the field and the reference, not a value", () => {
    expect(() => switchResourceFromFleet(exampleFleet("seed-8.yaml", 1), {})).toThrow("switch.snmp.community: secret: environment variable PIFLEET_SNMP_COMMUNITY is not set");
    expect(() => switchResourceFromFleet(v3Fleet(1), { SNMP_AUTH: "short", SNMP_PRIV: PRIV })).toThrow("switch.snmp.authKey: an SNMPv3 key needs at least 8 characters");
  });
});

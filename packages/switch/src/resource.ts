import { readSecret, type Fleet, type SecretRef, type SwitchSpec } from "@pifleet/core";
import { Secret, type SnmpCredentials } from "./snmp/credentials.js";

/**
 * The switch as hardware (labgrid's "resource"): where it is, how to authenticate, which PoE group
 * and driver. Nothing here acts on it; drivers do. Credentials are resolved from the fleet's
 * SecretRefs once, into Secret wrappers that never print.
 */
export interface SwitchResource {
  name: string;
  address: string;
  snmpPort: number;
  /** Read-write credentials: PoE and VLAN writes, and the read-back that verifies them. */
  credentials: SnmpCredentials;
  /** Read-only community for reads, when the fleet names one (v2c only). */
  readCredentials?: SnmpCredentials;
  poe: {
    driver: string;
    group: number;
    dwellMs: number;
  };
  trunkPort: number;
  uplinkPorts: number[];
}

export class SwitchConfigError extends Error {
  override name = "SwitchConfigError";
}

/** The switch of one shelf (by name; the only one when unnamed), reading its secrets (env or file). */
export function switchResourceFromFleet(fleet: Pick<Fleet, "shelves">, env: NodeJS.ProcessEnv = process.env, shelf?: string): SwitchResource {
  const s = shelf === undefined ? (fleet.shelves.length === 1 ? fleet.shelves[0] : undefined) : fleet.shelves.find((x) => x.name === shelf);
  if (!s) {
    const names = fleet.shelves.map((x) => x.name).join(", ");
    throw new SwitchConfigError(shelf === undefined ? `the fleet has ${fleet.shelves.length} shelves: name one (${names})` : `no shelf "${shelf}" (known: ${names})`);
  }
  return switchResourceFromSpec(s.switch, `${s.at}switch`, env);
}

/** Builds the resource from a switch's fleet-file entry; `at` names it in errors (`shelves[1].switch`). */
export function switchResourceFromSpec(sw: SwitchSpec, at = "switch", env: NodeJS.ProcessEnv = process.env): SwitchResource {
  const secret = (field: string, ref: SecretRef): Secret => {
    try {
      return new Secret(readSecret(ref, env));
    } catch (err) {
      throw new SwitchConfigError(`${at}.snmp.${field}: ${(err as Error).message}`);
    }
  };
  let credentials: SnmpCredentials;
  let readCredentials: SnmpCredentials | undefined;
  if (sw.snmp.version === "2c") {
    credentials = { version: "2c", community: secret("community", sw.snmp.community) };
    if (sw.snmp.readCommunity) readCredentials = { version: "2c", community: secret("readCommunity", sw.snmp.readCommunity) };
  } else {
    credentials = {
      version: "3",
      user: sw.snmp.user,
      authProtocol: sw.snmp.authProtocol,
      authKey: secret("authKey", sw.snmp.authKey),
      privProtocol: sw.snmp.privProtocol,
      privKey: secret("privKey", sw.snmp.privKey),
    };
    // RFC 3414 §11.2: a passphrase under 8 characters is refused by agents; say so before they do.
    if (credentials.authKey.reveal().length < 8) throw new SwitchConfigError(`${at}.snmp.authKey: an SNMPv3 key needs at least 8 characters`);
    if (credentials.privKey.reveal().length < 8) throw new SwitchConfigError(`${at}.snmp.privKey: an SNMPv3 key needs at least 8 characters`);
  }
  return {
    name: sw.name,
    address: sw.address,
    snmpPort: sw.snmpPort,
    credentials,
    readCredentials,
    poe: { driver: sw.poe.driver, group: sw.poe.group, dwellMs: Math.round(sw.poe.dwellSeconds * 1000) },
    trunkPort: sw.trunkPort,
    uplinkPorts: [...sw.uplinkPorts],
  };
}

import type { SnmpClient, SnmpVarbind } from "./snmp/client.js";
import { OID } from "./snmp/oids.js";

/**
 * BRIDGE-MIB dot1dBasePortIfIndex: bridge port number → ifIndex. Q-BRIDGE port lists and PVIDs
 * count bridge ports (the front-panel numbers pifleet's plan uses); IF-MIB counts ifIndex, which
 * on most switches is something else entirely (Cisco: 10101…, others: 1000+port).
 */
export async function readBridgePorts(snmp: SnmpClient): Promise<Map<number, number>> {
  return bridgePortsFrom(await snmp.walk(OID.dot1dBasePortIfIndex));
}

export function bridgePortsFrom(vbs: SnmpVarbind[]): Map<number, number> {
  const map = new Map<number, number>();
  for (const vb of vbs) {
    const port = Number(vb.oid.slice(OID.dot1dBasePortIfIndex.length + 1));
    if (Number.isInteger(port) && typeof vb.value === "number") map.set(port, vb.value);
  }
  return map;
}

import { bridgePortsFrom } from "../bridge.js";
import type { SnmpClient, SnmpValue } from "../snmp/client.js";
import { decodePortList, encodePortList, samePorts } from "../snmp/portlist.js";
import { OID, RowStatus, rowStatusName } from "../snmp/oids.js";
import type { SwitchVlanTable, VlanDriver, VlanEntry, VlanSetting } from "./driver.js";

/** RFC 4363 Q-BRIDGE-MIB static VLAN table and port VLAN table. */
export class QBridgeVlanDriver implements VlanDriver {
  readonly name = "qbridge";
  constructor(private readonly snmp: SnmpClient) {}

  async read(): Promise<SwitchVlanTable> {
    const [staticRows, pvidRows, bridgeRows] = await this.snmp.walkMany([OID.dot1qVlanStaticEntry, OID.dot1qPvid, OID.dot1dBasePortIfIndex]);
    const rows = new Map<number, Partial<VlanEntry>>();
    let octets = 0;
    const prefix = OID.dot1qVlanStaticEntry.length + 1;
    for (const vb of staticRows) {
      const [column, vlanText] = vb.oid.slice(prefix).split(".");
      const vlan = Number(vlanText);
      const row = rows.get(vlan) ?? { vlan };
      rows.set(vlan, row);
      switch (Number(column)) {
        case 1:
          row.name = text(vb.value);
          break;
        case 2:
          row.egress = ports(vb.value);
          octets = Math.max(octets, Buffer.isBuffer(vb.value) ? vb.value.length : 0);
          break;
        case 4:
          row.untagged = ports(vb.value);
          break;
        case 5:
          row.status = typeof vb.value === "number" ? rowStatusName(vb.value) : "unknown";
          break;
      }
    }
    const pvids = new Map<number, number>();
    for (const vb of pvidRows) {
      const port = Number(vb.oid.slice(OID.dot1qPvid.length + 1));
      if (typeof vb.value === "number") pvids.set(port, vb.value);
    }
    const bridgePorts = bridgePortsFrom(bridgeRows);
    const highest = Math.max(0, ...bridgePorts.keys());
    const vlans = [...rows.values()]
      .map((r) => ({ vlan: r.vlan!, name: r.name ?? "", egress: r.egress ?? [], untagged: r.untagged ?? [], status: r.status ?? "active" }))
      .sort((a, b) => a.vlan - b.vlan);
    return { vlans, pvids, bridgePorts, portListOctets: Math.max(octets, Math.ceil(highest / 8)) };
  }

  async create(vlans: number[]): Promise<void> {
    await this.snmp.setVerified(
      vlans.map((vlan) => ({
        oid: `${OID.dot1qVlanStaticRowStatus}.${vlan}`,
        type: "Integer" as const,
        value: RowStatus.createAndGo,
        expect: (got: SnmpValue) => got === RowStatus.active,
      })),
    );
  }

  async activate(vlans: number[]): Promise<void> {
    await this.snmp.setVerified(vlans.map((vlan) => ({ oid: `${OID.dot1qVlanStaticRowStatus}.${vlan}`, type: "Integer" as const, value: RowStatus.active })));
  }

  async configure(settings: VlanSetting[], portListOctets: number): Promise<void> {
    await this.snmp.setVerified(
      settings.map((s) => {
        const egress = encodePortList(s.egress, Math.max(portListOctets, Math.ceil(Math.max(0, ...s.egress) / 8)));
        const untagged = encodePortList(s.untagged, egress.length);
        // One PDU per VLAN: an agent that checks untagged ⊆ egress sees both lists change together.
        return [
          { oid: `${OID.dot1qVlanStaticName}.${s.vlan}`, type: "OctetString" as const, value: Buffer.from(s.name) },
          { oid: `${OID.dot1qVlanStaticEgressPorts}.${s.vlan}`, type: "OctetString" as const, value: egress, expect: (got: SnmpValue) => samePorts(ports(got), s.egress) },
          { oid: `${OID.dot1qVlanStaticUntaggedPorts}.${s.vlan}`, type: "OctetString" as const, value: untagged, expect: (got: SnmpValue) => samePorts(ports(got), s.untagged) },
        ];
      }),
    );
  }

  async setPvids(pvids: Array<{ port: number; vlan: number }>): Promise<void> {
    await this.snmp.setVerified(pvids.map((p) => ({ oid: `${OID.dot1qPvid}.${p.port}`, type: "Unsigned32" as const, value: p.vlan })));
  }
}

function text(v: SnmpValue): string {
  return Buffer.isBuffer(v) ? v.toString("utf8") : typeof v === "string" ? v : "";
}

function ports(v: SnmpValue): number[] {
  return Buffer.isBuffer(v) ? decodePortList(v) : [];
}

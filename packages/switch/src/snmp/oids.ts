/**
 * The MIB objects pifleet reads and writes, by numeric OID (no MIB files are loaded: switches and
 * the emulator agree on numbers, and numbers are what appears on the wire).
 */
export const OID = {
  // SNMPv2-MIB system group
  sysDescr: "1.3.6.1.2.1.1.1",
  sysObjectID: "1.3.6.1.2.1.1.2",
  sysUpTime: "1.3.6.1.2.1.1.3",
  sysName: "1.3.6.1.2.1.1.5",

  // IF-MIB ifTable (entry)
  ifEntry: "1.3.6.1.2.1.2.2.1",
  ifDescr: "1.3.6.1.2.1.2.2.1.2",
  ifOperStatus: "1.3.6.1.2.1.2.2.1.8",

  // BRIDGE-MIB dot1dBasePortTable (entry)
  dot1dBasePortEntry: "1.3.6.1.2.1.17.1.4.1",
  dot1dBasePortIfIndex: "1.3.6.1.2.1.17.1.4.1.2",

  // Q-BRIDGE-MIB (RFC 4363) dot1qVlanStaticTable (entry), indexed by VLAN id
  dot1qVlanStaticEntry: "1.3.6.1.2.1.17.7.1.4.3.1",
  dot1qVlanStaticName: "1.3.6.1.2.1.17.7.1.4.3.1.1",
  dot1qVlanStaticEgressPorts: "1.3.6.1.2.1.17.7.1.4.3.1.2",
  dot1qVlanForbiddenEgressPorts: "1.3.6.1.2.1.17.7.1.4.3.1.3",
  dot1qVlanStaticUntaggedPorts: "1.3.6.1.2.1.17.7.1.4.3.1.4",
  dot1qVlanStaticRowStatus: "1.3.6.1.2.1.17.7.1.4.3.1.5",

  // Q-BRIDGE-MIB dot1qPortVlanTable (entry), AUGMENTS dot1dBasePortEntry
  dot1qPortVlanEntry: "1.3.6.1.2.1.17.7.1.4.5.1",
  dot1qPvid: "1.3.6.1.2.1.17.7.1.4.5.1.1",

  // POWER-ETHERNET-MIB (RFC 3621) pethPsePortTable (entry), indexed by {group, port}
  pethPsePortEntry: "1.3.6.1.2.1.105.1.1.1",
  pethPsePortAdminEnable: "1.3.6.1.2.1.105.1.1.1.3",
  pethPsePortDetectionStatus: "1.3.6.1.2.1.105.1.1.1.6",

  // CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortTable (entry), AUGMENTS pethPsePortEntry
  cpeExtPsePortEntry: "1.3.6.1.4.1.9.9.402.1.2.1",
  cpeExtPsePortEnable: "1.3.6.1.4.1.9.9.402.1.2.1.1",
} as const;

/** RFC 2579 RowStatus. */
export const RowStatus = { active: 1, notInService: 2, notReady: 3, createAndGo: 4, createAndWait: 5, destroy: 6 } as const;
export type RowStatusValue = (typeof RowStatus)[keyof typeof RowStatus];

export function rowStatusName(value: number): string {
  return Object.entries(RowStatus).find(([, v]) => v === value)?.[0] ?? `rowStatus(${value})`;
}

/** SNMPv2-TC TruthValue. */
export const TruthValue = { true: 1, false: 2 } as const;

/** IF-MIB ifOperStatus. */
export const IfOperStatus: Record<number, string> = {
  1: "up",
  2: "down",
  3: "testing",
  4: "unknown",
  5: "dormant",
  6: "notPresent",
  7: "lowerLayerDown",
};

/** POWER-ETHERNET-MIB pethPsePortDetectionStatus. */
export const DetectionStatus: Record<number, string> = {
  1: "disabled",
  2: "searching",
  3: "deliveringPower",
  4: "fault",
  5: "test",
  6: "otherFault",
};

const NAMES: Array<[string, string]> = Object.entries(OID)
  .map(([name, oid]) => [oid, name] as [string, string])
  .sort((a, b) => b[0].length - a[0].length);

/** `1.3.6.1.2.1.105.1.1.1.3.1.7` → `pethPsePortAdminEnable.1.7`: error messages name objects, not numbers. */
export function oidName(oid: string): string {
  for (const [prefix, name] of NAMES) {
    if (oid === prefix) return name;
    if (oid.startsWith(`${prefix}.`)) return `${name}${oid.slice(prefix.length)}`;
  }
  return oid;
}

/** True when `oid` lies strictly below `base`. */
export function isUnder(oid: string, base: string): boolean {
  return oid.startsWith(`${base}.`);
}

/** Compares OIDs arc by arc (a walk must move forward). */
export function compareOids(a: string, b: string): number {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

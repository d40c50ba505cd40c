/** A VLAN as the switch holds it (Q-BRIDGE dot1qVlanStaticEntry). Ports are bridge port numbers. */
export interface VlanEntry {
  vlan: number;
  name: string;
  /** Every port that sends this VLAN's frames (tagged or untagged). */
  egress: number[];
  /** The subset of egress that sends them untagged. */
  untagged: number[];
  /** RowStatus name: active, notInService, notReady. */
  status: string;
}

export interface SwitchVlanTable {
  vlans: VlanEntry[];
  /** Native VLAN (dot1qPvid) of each bridge port. */
  pvids: Map<number, number>;
  /** Bridge port → ifIndex. */
  bridgePorts: Map<number, number>;
  /** The switch's PortList width in octets (lists are written at this width). */
  portListOctets: number;
}

export interface VlanSetting {
  vlan: number;
  name: string;
  egress: number[];
  untagged: number[];
}

/**
 * What pifleet needs from a switch's VLAN configuration. Every write is verified by reading it
 * back; a batch method may group several VLANs per PDU.
 */
export interface VlanDriver {
  readonly name: string;
  read(): Promise<SwitchVlanTable>;
  /** Creates VLANs (empty, active). */
  create(vlans: number[]): Promise<void>;
  /** Makes existing VLANs active (rows left notInService by someone's createAndWait). */
  activate(vlans: number[]): Promise<void>;
  /** Sets name, egress and untagged ports of each VLAN (egress and untagged in one PDU). */
  configure(settings: VlanSetting[], portListOctets: number): Promise<void>;
  setPvids(pvids: Array<{ port: number; vlan: number }>): Promise<void>;
}

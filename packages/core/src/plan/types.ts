/** The addressing plan: everything derived from a fleet file. Every component reads this, none re-derives it. */

export interface PiPlan {
  name: string;
  port: number;
  /** Position in the private range: port − 1. */
  slot: number;
  vlan: number;
  /** The fileserver side of this Pi's private VLAN, e.g. `eth0.10`. */
  fileserverInterface: string;
  network: string;
  netmask: string;
  prefixLength: 30;
  broadcast: string;
  fileserverAddress: string;
  piAddress: string;
  nfsRoot: string;
  exportLine: string;
  cmdline: string;
  publicInterface: string;
  ipv6: string;
  ipv6PrefixLength: 64;
  ipv6Gateway: string;
  mac?: string;
  serial?: string;
}

export interface FileserverInterfacePlan {
  name: string;
  vlan: number;
  address: string;
  netmask: string;
  prefixLength: 30;
  pi: string;
}

export interface SwitchVlanPlan {
  vlan: number;
  name: string;
  untagged: number[];
  tagged: number[];
}

export interface SwitchPlan {
  name: string;
  trunkPort: number;
  vlans: SwitchVlanPlan[];
  /** Native VLAN of each port that carries untagged traffic. */
  pvids: { port: number; vlan: number }[];
  poePorts: number[];
}

export interface LoadBalancerServerPlan {
  name: string;
  address: string;
  port: number;
}

export interface Plan {
  fleet: string;
  privateRange: { cidr: string; capacity: number; used: number };
  publicVlan: number;
  pis: PiPlan[];
  fileserver: {
    name: string;
    trunkInterface: string;
    exportRoot: string;
    goldenImage: string;
    network: "ifupdown" | "networkd";
    interfaces: FileserverInterfacePlan[];
  };
  switch: SwitchPlan;
  loadBalancer: { driver: string; backend: string; servers: LoadBalancerServerPlan[] };
}

/** The addressing plan: everything derived from a fleet file. Every component reads this, none re-derives it. */
import type { BootMethodName, BootMode, ContentMode, NetworkDriverName } from "../fleet/drivers.js";

/** How a netbooted Pi gets its kernel: a DHCP reservation on its own VLAN, then TFTP from its folder. */
export interface NetbootPlan {
  method: BootMethodName;
  mac: string;
  /** The board serial as given; the boot ROM's TFTP folder is its last 8 hex digits. */
  serial?: string;
  /** Folder the Pi asks TFTP for (`<serial>` for `rpi`, the Pi's name otherwise). */
  tftpPrefix: string;
  /**
   * The TFTP root dnsmasq uses for requests arriving on this Pi's VLAN interface only
   * (`<tftpRoot>/<eth0.N>`): a Pi on another VLAN sees another root, so it cannot fetch this
   * Pi's files even if it knows the serial.
   */
  tftpInterfaceRoot: string;
  /** Absolute fileserver path of the Pi's folder: `<tftpInterfaceRoot>/<tftpPrefix>`. */
  tftpDir: string;
  /** The file a PXE ROM is told to fetch (the `ipxe` method's script); the Pi ROM ignores it. */
  bootFile: string;
  /** Where the kernel, device trees and initramfs come from: inside the Pi's own root, first that exists. */
  bootFrom: string[];
}

export interface PiPlan {
  name: string;
  /** The shelf the Pi sits in. */
  shelf: string;
  port: number;
  /** Position in the shelf's private range: port − 1. */
  slot: number;
  vlan: number;
  /** The fileserver serving this Pi. */
  fileserver: string;
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
  boot: BootMode;
  netboot?: NetbootPlan;
  mac?: string;
  serial?: string;
}

export interface FileserverInterfacePlan {
  name: string;
  /** The trunk interface this VLAN rides on (`eth0` of `eth0.10`). */
  parent: string;
  vlan: number;
  address: string;
  netmask: string;
  prefixLength: 30;
  pi: string;
  shelf: string;
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
  uplinkPorts: number[];
  vlans: SwitchVlanPlan[];
  /** Native VLAN of each port that carries untagged traffic. */
  pvids: { port: number; vlan: number }[];
  poePorts: number[];
}

export interface ShelfPlan {
  name: string;
  /** Position in the fleet, from 1. */
  index: number;
  privateRange: { cidr: string; capacity: number; used: number };
  switch: SwitchPlan;
  fileserver: string;
  trunkInterface: string;
  /** Names of its Pis, by port. */
  pis: string[];
}

export interface FileserverPlan {
  name: string;
  address?: string;
  exportRoot: string;
  goldenImage: string;
  network: NetworkDriverName;
  tftpRoot: string;
  /** `shared`: every Pi mounts `contentExport` read-only; `copy`: a copy of the site in each root. */
  content: ContentMode;
  /** The master copies of the site (`<exportRoot>/.pifleet/content`): exported read-only in `shared` mode. */
  contentExport: string;
  /** One per shelf it serves. */
  trunkInterfaces: string[];
  shelves: string[];
  interfaces: FileserverInterfacePlan[];
}

export interface LoadBalancerServerPlan {
  name: string;
  address: string;
  port: number;
}

export interface Plan {
  fleet: string;
  publicVlan: number;
  /** Every Pi, shelf by shelf (in file order), by port within a shelf. */
  pis: PiPlan[];
  shelves: ShelfPlan[];
  fileservers: FileserverPlan[];
  loadBalancer: { driver: string; backend: string; servers: LoadBalancerServerPlan[] };
  /** Set when the fleet file has a `piAgent:` section: every Pi's root gets the agent's config and secret. */
  piAgent?: PiAgentPlan;
}

export interface PiAgentPlan {
  coordinator: { url: string; urls?: string[]; ca?: string };
  /** Fileserver folder holding `<pi name>.secret`. */
  secrets: string;
  intervalMs?: number;
}

/** What one fileserver agent owns: its own part of the plan (the Pis of the shelves it serves). */
export interface FileserverView {
  fleet: string;
  fileserver: FileserverPlan;
  pis: PiPlan[];
  piAgent?: PiAgentPlan;
}

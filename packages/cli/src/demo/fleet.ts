import { stringify } from "yaml";
import type { FleetInput } from "@pifleet/core";

/**
 * The demo's fleet: the seed's addressing (a /23 once it outgrows the seed's /24), a switch
 * emulator on loopback, the fileserver's trunk on the port after the last Pi.
 */
export function demoFleet(opts: { pis: number; snmpPort: number; communityFile: string; goldenImage: string; exportRoot: string; lbSocket: string; dwellSeconds?: number }): FleetInput {
  const n = opts.pis;
  const range = demoRange(n, 0);
  return {
    name: "demo",
    switch: {
      name: "demo-switch",
      address: "127.0.0.1",
      snmpPort: opts.snmpPort,
      snmp: { version: "2c", community: { file: opts.communityFile } },
      trunkPort: n + 1,
      poe: { driver: "rfc3621", group: 1, dwellSeconds: opts.dwellSeconds ?? 2 },
    },
    fileserver: { name: "fileserver", trunkInterface: "eth0", exportRoot: opts.exportRoot, goldenImage: opts.goldenImage },
    private: { range, firstVlan: 10 },
    public: { vlan: n + 10 >= 131 ? 4000 : 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1", addressScheme: "1000:{port}::2" },
    loadBalancer: { driver: "haproxy", socket: opts.lbSocket, backend: "pifleet" },
    pis: Array.from({ length: n }, (_, i) => ({ name: `pi${String(i + 1).padStart(2, "0")}`, port: i + 1 })),
  };
}

/** Shelf k's private range (from 0): the seed's for the first, the next /16 up for each further one. */
function demoRange(n: number, k: number): string {
  const b = 46 + k;
  return n <= 64 ? `10.${b}.189.0/24` : n <= 128 ? `10.${b}.188.0/23` : `10.${b}.184.0/21`;
}

/** The name of Pi i (from 0) on shelf k (from 0) of a demo with `shelves` shelves. */
export function demoPiName(shelves: number, k: number, i: number): string {
  const pi = `pi${String(i + 1).padStart(2, "0")}`;
  return shelves > 1 ? `s${k + 1}-${pi}` : pi;
}

/**
 * The demo's fleet of several shelves: each its own switch emulator (one SNMP port each) with the
 * same VLAN ids and port numbers, its own private range, addresses unique through `{shelf}`.
 */
export function demoShelvesFleet(opts: { pis: number; snmpPorts: number[]; communityFile: string; goldenImage: string; exportRoot: string; lbSocket: string; dwellSeconds?: number }): FleetInput {
  const n = opts.pis;
  const count = opts.snmpPorts.length;
  return {
    name: "demo",
    fileserver: { name: "fileserver", trunkInterface: "eth0", exportRoot: opts.exportRoot, goldenImage: opts.goldenImage },
    public: { vlan: n + 10 >= 131 ? 4000 : 131, prefix: "2a00:1098:0:84::/64", gateway: "2a00:1098:0:84::1", addressScheme: "{shelf}:{port}::2" },
    loadBalancer: { driver: "haproxy", socket: opts.lbSocket, backend: "pifleet" },
    shelves: opts.snmpPorts.map((snmpPort, k) => ({
      name: `shelf${k + 1}`,
      switch: {
        name: `demo-switch-${k + 1}`,
        address: "127.0.0.1",
        snmpPort,
        snmp: { version: "2c" as const, community: { file: opts.communityFile } },
        trunkPort: n + 1,
        poe: { driver: "rfc3621" as const, group: 1, dwellSeconds: opts.dwellSeconds ?? 2 },
      },
      // Each shelf's trunk arrives on its own fileserver port.
      fileserver: { trunkInterface: `eth${k}` },
      private: { range: demoRange(n, k), firstVlan: 10 },
      pis: Array.from({ length: n }, (_, i) => ({ name: demoPiName(count, k, i), port: i + 1 })),
    })),
  };
}

export function fleetYaml(fleet: FleetInput): string {
  return `# Written by pifleet demo\n${stringify(fleet)}`;
}

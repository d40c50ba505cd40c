import { stringify } from "yaml";
import type { FleetInput } from "@pifleet/core";

/**
 * The demo's fleet: the seed's addressing (a /23 once it outgrows the seed's /24), a switch
 * emulator on loopback, the fileserver's trunk on the port after the last Pi.
 */
export function demoFleet(opts: { pis: number; snmpPort: number; communityFile: string; goldenImage: string; exportRoot: string; lbSocket: string; dwellSeconds?: number }): FleetInput {
  const n = opts.pis;
  const range = n <= 64 ? "10.46.189.0/24" : n <= 128 ? "10.46.188.0/23" : "10.46.184.0/21";
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

export function fleetYaml(fleet: FleetInput): string {
  return `# Written by pifleet demo\n${stringify(fleet)}`;
}

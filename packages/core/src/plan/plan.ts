import path from "node:path";
import type { Fleet } from "../fleet/schema.js";
import { FleetError } from "../fleet/errors.js";
import { formatIPv4, netmaskOf, parseIPv4Cidr } from "../net/ipv4.js";
import { parseIPv6Prefix } from "../net/ipv6.js";
import type { PiPlan, Plan, SwitchVlanPlan } from "./types.js";
import { schemeText, validateFleet } from "./validate.js";

const PUBLIC_IFACE_PARENT = "eth0";

/**
 * Derives the whole addressing plan from a fleet. Pure: same fleet, same plan, no I/O.
 * Throws FleetError (every field at fault) when the fleet cannot be planned.
 */
export function plan(fleet: Fleet): Plan {
  const issues = validateFleet(fleet);
  if (issues.length > 0) throw new FleetError(issues);

  const range = parseIPv4Cidr(fleet.private.range);
  const prefix = parseIPv6Prefix(fleet.public.prefix);
  if (typeof range === "string" || typeof prefix === "string") throw new Error("unreachable: validated above");
  const gateway = fleet.public.gateway.toLowerCase();
  const trunk = fleet.fileserver.trunkInterface;
  const netmask = netmaskOf(30);
  const publicInterface = `${PUBLIC_IFACE_PARENT}.${fleet.public.vlan}`;

  const pis: PiPlan[] = [...fleet.pis]
    .sort((a, b) => a.port - b.port)
    .map((pi) => {
      const slot = pi.port - 1;
      const vlan = fleet.private.firstVlan + slot;
      const base = range.network + 4 * slot;
      const fileserverAddress = formatIPv4(base + 1);
      const piAddress = formatIPv4(base + 2);
      const nfsRoot = path.posix.join(fleet.fileserver.exportRoot, piAddress);
      const ipv6 = pi.ipv6 ? pi.ipv6.toLowerCase() : schemeText(fleet.public.addressScheme, prefix.groups, { port: pi.port, slot, vlan });
      const cmdline = [
        fleet.boot.cmdlinePrefix,
        "root=/dev/nfs rootfstype=nfs",
        `ip=${piAddress}::${fileserverAddress}:${netmask}::eth0:off`,
        `nfsroot=${fileserverAddress}:${nfsRoot}`,
        fleet.boot.cmdlineSuffix,
      ]
        .filter((part) => part.length > 0)
        .join(" ");
      const planned: PiPlan = {
        name: pi.name,
        port: pi.port,
        slot,
        vlan,
        fileserverInterface: `${trunk}.${vlan}`,
        network: formatIPv4(base),
        netmask,
        prefixLength: 30,
        broadcast: formatIPv4(base + 3),
        fileserverAddress,
        piAddress,
        nfsRoot,
        exportLine: `${nfsRoot} ${piAddress}(${fleet.fileserver.exportOptions})`,
        cmdline,
        publicInterface,
        ipv6,
        ipv6PrefixLength: 64,
        ipv6Gateway: gateway,
      };
      if (pi.mac) planned.mac = pi.mac;
      if (pi.serial) planned.serial = pi.serial;
      return planned;
    });

  const piPorts = pis.map((p) => p.port);
  const vlans: SwitchVlanPlan[] = pis.map((p) => ({
    vlan: p.vlan,
    name: `pifleet-${p.name}`,
    untagged: [p.port],
    tagged: [fleet.switch.trunkPort],
  }));
  vlans.push({
    vlan: fleet.public.vlan,
    name: "pifleet-public",
    untagged: [],
    tagged: [...piPorts, ...fleet.switch.uplinkPorts].sort((a, b) => a - b),
  });
  vlans.sort((a, b) => a.vlan - b.vlan);

  return {
    fleet: fleet.name,
    privateRange: { cidr: fleet.private.range, capacity: range.size / 4, used: pis.length },
    publicVlan: fleet.public.vlan,
    pis,
    fileserver: {
      name: fleet.fileserver.name,
      trunkInterface: trunk,
      exportRoot: fleet.fileserver.exportRoot,
      goldenImage: fleet.fileserver.goldenImage,
      network: fleet.fileserver.network,
      interfaces: pis.map((p) => ({
        name: p.fileserverInterface,
        vlan: p.vlan,
        address: p.fileserverAddress,
        netmask,
        prefixLength: 30,
        pi: p.name,
      })),
    },
    switch: {
      name: fleet.switch.name,
      trunkPort: fleet.switch.trunkPort,
      vlans,
      pvids: pis.map((p) => ({ port: p.port, vlan: p.vlan })),
      poePorts: piPorts,
    },
    loadBalancer: {
      driver: fleet.loadBalancer.driver,
      backend: fleet.loadBalancer.backend,
      servers: pis.map((p) => ({ name: p.name, address: p.ipv6, port: fleet.loadBalancer.serverPort })),
    },
  };
}

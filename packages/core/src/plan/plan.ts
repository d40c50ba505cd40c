import path from "node:path";
import type { FileserverSpec, Fleet, PiAgentSpec, PiSpec, ShelfSpec } from "../fleet/schema.js";
import { FleetError } from "../fleet/errors.js";
import { formatIPv4, netmaskOf, parseIPv4Cidr } from "../net/ipv4.js";
import { parseIPv6Prefix } from "../net/ipv6.js";
import type { FileserverPlan, FileserverView, NetbootPlan, PiAgentPlan, PiPlan, Plan, ShelfPlan, SwitchVlanPlan } from "./types.js";
import { schemeText, validateFleet } from "./validate.js";

const PUBLIC_IFACE_PARENT = "eth0";
const NETMASK_30 = netmaskOf(30);

/**
 * Derives the whole addressing plan from a fleet. Pure: same fleet, same plan, no I/O.
 * Throws FleetError (every field at fault) when the fleet cannot be planned.
 */
/** The site's master copies, under the export root (so a swap inside it is a rename). */
export const CONTENT_EXPORT_DIR = ".pifleet/content";

export function plan(fleet: Fleet): Plan {
  const issues = validateFleet(fleet);
  if (issues.length > 0) throw new FleetError(issues);
  const prefix = parseIPv6Prefix(fleet.public.prefix);
  if (typeof prefix === "string") throw new Error("unreachable: validated above");

  const pis: PiPlan[] = [];
  const shelves: ShelfPlan[] = [];
  for (const shelf of fleet.shelves) {
    const range = parseIPv4Cidr(shelf.private.range);
    const fs = fleet.fileservers.find((f) => f.name === shelf.fileserver);
    if (typeof range === "string" || !fs) throw new Error("unreachable: validated above");
    const planned = [...shelf.pis].sort((a, b) => a.port - b.port).map((pi) => planPi(fleet, shelf, fs, range.network, pi, prefix.groups));
    pis.push(...planned);
    shelves.push(planShelf(fleet, shelf, planned));
  }

  const fileservers: FileserverPlan[] = fleet.fileservers.map((fs) => {
    const served = fleet.shelves.filter((s) => s.fileserver === fs.name);
    const names = new Set(served.map((s) => s.name));
    return {
      name: fs.name,
      ...(fs.address !== undefined ? { address: fs.address } : {}),
      exportRoot: fs.exportRoot,
      goldenImage: fs.goldenImage,
      network: fs.network,
      tftpRoot: fs.tftpRoot,
      content: fs.content,
      contentExport: path.posix.join(fs.exportRoot, CONTENT_EXPORT_DIR),
      trunkInterfaces: served.map((s) => s.trunkInterface),
      shelves: served.map((s) => s.name),
      interfaces: pis
        .filter((p) => names.has(p.shelf))
        .map((p) => ({
          name: p.fileserverInterface,
          parent: p.fileserverInterface.slice(0, p.fileserverInterface.lastIndexOf(".")),
          vlan: p.vlan,
          address: p.fileserverAddress,
          netmask: p.netmask,
          prefixLength: 30,
          pi: p.name,
          shelf: p.shelf,
        })),
    };
  });

  return {
    fleet: fleet.name,
    publicVlan: fleet.public.vlan,
    pis,
    shelves,
    fileservers,
    loadBalancer: {
      driver: fleet.loadBalancer.driver,
      backend: fleet.loadBalancer.backend,
      servers: pis.map((p) => ({ name: p.name, address: p.ipv6, port: fleet.loadBalancer.serverPort })),
    },
    ...(fleet.piAgent ? { piAgent: planPiAgent(fleet.piAgent) } : {}),
  };
}

/** Only the keys the file gave: the rendered agent config then says no more than the fleet file. */
function planPiAgent(a: PiAgentSpec): PiAgentPlan {
  const c = a.coordinator;
  return {
    coordinator: { url: c.url, ...(c.urls ? { urls: [...c.urls] } : {}), ...(c.ca !== undefined ? { ca: c.ca } : {}) },
    secrets: a.secrets,
    ...(a.intervalMs !== undefined ? { intervalMs: a.intervalMs } : {}),
  };
}

function planPi(fleet: Fleet, shelf: ShelfSpec, fs: FileserverSpec, network: number, pi: PiSpec, prefixGroups: number[]): PiPlan {
  const netmask = NETMASK_30;
  const slot = pi.port - 1;
  const vlan = shelf.private.firstVlan + slot;
  const base = network + 4 * slot;
  const fileserverAddress = formatIPv4(base + 1);
  const piAddress = formatIPv4(base + 2);
  const nfsRoot = path.posix.join(fs.exportRoot, piAddress);
  const ipv6 = pi.ipv6 ? pi.ipv6.toLowerCase() : schemeText(shelf.addressScheme, prefixGroups, { port: pi.port, slot, vlan, shelf: shelf.index });
  const cmdline = [
    fleet.boot.cmdlinePrefix,
    "root=/dev/nfs rootfstype=nfs",
    `ip=${piAddress}::${fileserverAddress}:${netmask}::eth0:off`,
    `nfsroot=${fileserverAddress}:${nfsRoot}`,
    fleet.boot.cmdlineSuffix,
  ]
    .filter((part) => part.length > 0)
    .join(" ");
  const boot = pi.boot ?? fleet.boot.mode;
  const planned: PiPlan = {
    name: pi.name,
    shelf: shelf.name,
    port: pi.port,
    slot,
    vlan,
    fileserver: fs.name,
    fileserverInterface: `${shelf.trunkInterface}.${vlan}`,
    network: formatIPv4(base),
    netmask,
    prefixLength: 30,
    broadcast: formatIPv4(base + 3),
    fileserverAddress,
    piAddress,
    nfsRoot,
    exportLine: `${nfsRoot} ${piAddress}(${fs.exportOptions})`,
    cmdline,
    publicInterface: `${PUBLIC_IFACE_PARENT}.${fleet.public.vlan}`,
    ipv6,
    ipv6PrefixLength: 64,
    ipv6Gateway: fleet.public.gateway.toLowerCase(),
    boot,
  };
  if (pi.mac) planned.mac = pi.mac;
  if (pi.serial) planned.serial = pi.serial;
  if (boot === "netboot") planned.netboot = netbootOf(fleet.boot.method, pi, path.posix.join(fs.tftpRoot, planned.fileserverInterface), nfsRoot);
  return planned;
}

function netbootOf(method: NetbootPlan["method"], pi: PiSpec, interfaceRoot: string, nfsRoot: string): NetbootPlan {
  // The Raspberry Pi boot ROM asks for `<serial>/start4.elf`; a PXE ROM has no such convention.
  const tftpPrefix = method === "rpi" && pi.serial ? pi.serial.slice(-8) : pi.name;
  return {
    method,
    mac: pi.mac!,
    ...(pi.serial ? { serial: pi.serial } : {}),
    tftpPrefix,
    tftpInterfaceRoot: interfaceRoot,
    tftpDir: path.posix.join(interfaceRoot, tftpPrefix),
    // Pi 3 ROMs fetch bootcode.bin from the root before looking for <serial>/; iPXE runs a script.
    bootFile: method === "rpi" ? "bootcode.bin" : `${tftpPrefix}/boot.ipxe`,
    bootFrom: [path.posix.join(nfsRoot, "boot/firmware"), path.posix.join(nfsRoot, "boot")],
  };
}

function planShelf(fleet: Fleet, shelf: ShelfSpec, pis: PiPlan[]): ShelfPlan {
  const range = parseIPv4Cidr(shelf.private.range);
  if (typeof range === "string") throw new Error("unreachable: validated");
  const sw = shelf.switch;
  const piPorts = pis.map((p) => p.port);
  const vlans: SwitchVlanPlan[] = pis.map((p) => ({ vlan: p.vlan, name: `pifleet-${p.name}`, untagged: [p.port], tagged: [sw.trunkPort] }));
  vlans.push({
    vlan: fleet.public.vlan,
    name: "pifleet-public",
    untagged: [],
    tagged: [...piPorts, ...sw.uplinkPorts].sort((a, b) => a - b),
  });
  vlans.sort((a, b) => a.vlan - b.vlan);
  return {
    name: shelf.name,
    index: shelf.index,
    privateRange: { cidr: shelf.private.range, capacity: range.size / 4, used: pis.length },
    switch: {
      name: sw.name,
      trunkPort: sw.trunkPort,
      uplinkPorts: [...sw.uplinkPorts],
      vlans,
      pvids: pis.map((p) => ({ port: p.port, vlan: p.vlan })),
      poePorts: piPorts,
    },
    fileserver: shelf.fileserver,
    trunkInterface: shelf.trunkInterface,
    pis: pis.map((p) => p.name),
  };
}

/** A plan error for a name that matches nothing, listing what does. */
export class UnknownNameError extends Error {
  override name = "UnknownNameError";
}

/** One shelf of the plan, by name (or the only one). */
export function shelfOf(p: Plan, name?: string): ShelfPlan {
  if (name === undefined) {
    if (p.shelves.length === 1) return p.shelves[0];
    throw new UnknownNameError(`fleet ${p.fleet} has ${p.shelves.length} shelves: name one (${p.shelves.map((s) => s.name).join(", ")})`);
  }
  const s = p.shelves.find((x) => x.name === name);
  if (!s) throw new UnknownNameError(`no shelf "${name}" in fleet ${p.fleet} (known: ${p.shelves.map((x) => x.name).join(", ")})`);
  return s;
}

/** The part of the plan one fileserver owns: it, and only the Pis of the shelves it serves. */
export function fileserverView(p: Plan, name?: string): FileserverView {
  let fs: FileserverPlan | undefined;
  if (name === undefined) {
    if (p.fileservers.length !== 1) throw new UnknownNameError(`fleet ${p.fleet} has ${p.fileservers.length} fileservers: name one (${p.fileservers.map((f) => f.name).join(", ")})`);
    fs = p.fileservers[0];
  } else {
    fs = p.fileservers.find((f) => f.name === name);
    if (!fs) throw new UnknownNameError(`no fileserver "${name}" in fleet ${p.fleet} (known: ${p.fileservers.map((f) => f.name).join(", ")})`);
  }
  const served = new Set(fs.shelves);
  return { fleet: p.fleet, fileserver: fs, pis: p.pis.filter((pi) => served.has(pi.shelf)), ...(p.piAgent ? { piAgent: p.piAgent } : {}) };
}

import path from "node:path";
import type { Fleet, FileserverSpec, ShelfSpec } from "../fleet/schema.js";
import type { FieldIssue } from "../fleet/errors.js";
import { parseIPv4Cidr, prefixLengthFor, formatIPv4, type IPv4Cidr } from "../net/ipv4.js";
import { parseIPv6, parseIPv6Prefix, ipv6InPrefix, formatIPv6 } from "../net/ipv6.js";

/** Maximum 802.1Q VLAN id. */
export const MAX_VLAN = 4094;

/** Parses a 64-bit interface identifier (four groups, `::` allowed) like `1000:1::2`. */
export function parseInterfaceId(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 4 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...head, ...new Array<string>(fill).fill("0"), ...tail];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return all.map((g) => parseInt(g, 16));
}

export type SchemeVars = Record<"port" | "slot" | "vlan" | "shelf", number>;

const PLACEHOLDER = /\{(port|slot|vlan|shelf)\}/g;

/**
 * A Pi's public address as text: the prefix's four groups then the scheme as written, so the
 * seed's `2a00:1098:0:84:1000:1::2` stays in the operator's form in every rendered file.
 */
export function schemeText(scheme: string, prefixGroups: number[], vars: SchemeVars): string {
  const iid = scheme.replace(PLACEHOLDER, (_m, key: keyof SchemeVars) => String(vars[key]));
  return `${prefixGroups.slice(0, 4).map((g) => g.toString(16)).join(":")}:${iid.toLowerCase()}`;
}

/** A Pi's public address from the scheme, or an error message. */
export function schemeAddress(scheme: string, prefixGroups: number[], vars: SchemeVars): number[] | string {
  const iid = scheme.replace(PLACEHOLDER, (_m, key: keyof SchemeVars) => String(vars[key]));
  if (/[{}]/.test(iid)) return `unknown placeholder in "${scheme}" (use {port}, {slot}, {vlan} or {shelf})`;
  const groups = parseInterfaceId(iid);
  if (!groups) return `"${iid}" (from "${scheme}") is not a 64-bit interface identifier like 1000:1::2`;
  return [...prefixGroups.slice(0, 4), ...groups];
}

/** The shelf's private range as parsed, or undefined when it does not parse (reported elsewhere). */
function rangeOf(shelf: ShelfSpec): IPv4Cidr | undefined {
  const r = parseIPv4Cidr(shelf.private.range);
  return typeof r === "string" ? undefined : r;
}

/** `pis[3]` in the one-shelf form, `shelves[1].pis[3]` otherwise: where a person finds the field. */
function piAt(shelf: ShelfSpec, i: number): string {
  return `${shelf.at}pis[${i}]`;
}

function isNormalisedAbsolute(p: string): boolean {
  return path.posix.normalize(p) === p.replace(/\/+$/, "") && p !== "/" && !p.includes("/../");
}

/**
 * Checks what a schema cannot: relations between fields, within a shelf and across the fleet.
 * Returns every issue found so an operator fixes the file in one pass; an issue about two places
 * names both.
 */
export function validateFleet(fleet: Fleet): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const add = (p: string, message: string) => issues.push({ path: p, message });

  const prefix = parseIPv6Prefix(fleet.public.prefix);
  if (typeof prefix === "string") add("public.prefix", prefix);
  const gateway = parseIPv6(fleet.public.gateway);
  if (!gateway) add("public.gateway", `"${fleet.public.gateway}" is not an IPv6 address`);
  else if (typeof prefix !== "string" && !ipv6InPrefix(gateway, prefix)) {
    add("public.gateway", `${fleet.public.gateway} is outside ${fleet.public.prefix}`);
  }

  const fileservers = new Map<string, FileserverSpec>();
  for (const fs of fleet.fileservers) {
    const other = fileservers.get(fs.name);
    if (other) add(`${fs.at}.name`, `"${fs.name}" is already the name of ${other.at}`);
    else fileservers.set(fs.name, fs);
    const root = fs.exportRoot;
    if (!isNormalisedAbsolute(root)) add(`${fs.at}.exportRoot`, `"${root}" must be a normalised absolute path other than /`);
    const tftp = fs.tftpRoot;
    if (!isNormalisedAbsolute(tftp)) add(`${fs.at}.tftpRoot`, `"${tftp}" must be a normalised absolute path`);
    else if (!tftp.startsWith(`${root.replace(/\/+$/, "")}/`)) {
      add(`${fs.at}.tftpRoot`, `${tftp} is outside the export tree ${root}: TFTP folders must live under fileserver.exportRoot`);
    }
  }

  if (fleet.piAgent) {
    const secrets = fleet.piAgent.secrets;
    if (!isNormalisedAbsolute(secrets)) add("piAgent.secrets", `"${secrets}" must be a normalised absolute path other than /`);
    for (const fs of fleet.fileservers) {
      const root = fs.exportRoot.replace(/\/+$/, "");
      // Pis' roots are exported read-write: every Pi's secret in there could be read, or planted, by a Pi.
      if (secrets === root || secrets.startsWith(`${root}/`)) add("piAgent.secrets", `${secrets} is inside ${fs.at}.exportRoot ${fs.exportRoot}, which the Pis mount: keep the Pis' secrets outside the export tree`);
    }
  }

  const shelfNames = new Map<string, ShelfSpec>();
  const switches = new Map<string, ShelfSpec>();
  const trunks = new Map<string, ShelfSpec>();
  for (const shelf of fleet.shelves) {
    const at = shelf.at;
    const seen = shelfNames.get(shelf.name);
    if (seen) add(`${at}name`, `"${shelf.name}" is already the name of ${seen.at.replace(/\.$/, "")}`);
    else shelfNames.set(shelf.name, shelf);

    const sw = `${shelf.switch.address}:${shelf.switch.snmpPort}`;
    const swOther = switches.get(sw);
    if (swOther) add(`${at}switch.address`, `switch ${sw} is already ${swOther.at}switch (shelf ${swOther.name}): one switch serves one shelf`);
    else switches.set(sw, shelf);

    if (!fileservers.has(shelf.fileserver)) {
      add(
        `${at}fileserver.name`,
        shelf.fileserver === ""
          ? `required: the fleet lists ${fleet.fileservers.length} fileservers (${[...fileservers.keys()].join(", ")})`
          : `no fileserver named "${shelf.fileserver}" (known: ${[...fileservers.keys()].join(", ")})`,
      );
    } else {
      // One trunk is one cable to one switch, and its VLAN ids (eth0.N) are this shelf's alone.
      const trunk = `${shelf.fileserver}/${shelf.trunkInterface}`;
      const tOther = trunks.get(trunk);
      if (tOther) {
        add(
          `${at}fileserver.trunkInterface`,
          `${shelf.fileserver}'s ${shelf.trunkInterface} is already the trunk of ${tOther.at}fileserver (shelf ${tOther.name}); give each shelf its own fileserver interface`,
        );
      } else trunks.set(trunk, shelf);
    }
    validateShelf(fleet, shelf, typeof prefix === "string" ? undefined : prefix.groups, add);
  }

  // A Pi's root is exported read-write with no_root_squash: TFTP files inside it would be the Pi's to rewrite.
  for (const shelf of fleet.shelves) {
    const fs = fileservers.get(shelf.fileserver);
    const r = rangeOf(shelf);
    if (!fs || !r || !isNormalisedAbsolute(fs.tftpRoot)) continue;
    shelf.pis.forEach((pi, i) => {
      const root = path.posix.join(fs.exportRoot, formatIPv4(r.network + 4 * (pi.port - 1) + 2));
      if (fs.tftpRoot === root || fs.tftpRoot.startsWith(`${root}/`)) {
        add(`${fs.at}.tftpRoot`, `${fs.tftpRoot} is inside ${piAt(shelf, i)}'s root ${root} (exported read-write to that Pi): put TFTP folders beside the roots, e.g. ${path.posix.join(fs.exportRoot, "tftp")}`);
      }
    });
  }

  // Across shelves: names, addresses, public addresses, boot identities unique in the whole fleet.
  const ranges: Array<{ shelf: ShelfSpec; r: IPv4Cidr }> = [];
  for (const shelf of fleet.shelves) {
    const r = rangeOf(shelf);
    if (!r) continue;
    for (const o of ranges) {
      if (r.network < o.r.network + o.r.size && o.r.network < r.network + r.size) {
        add(`${shelf.at}private.range`, `${shelf.private.range} overlaps ${o.shelf.at}private.range ${o.shelf.private.range} (shelf ${o.shelf.name}): addresses are unique fleet-wide`);
      }
    }
    ranges.push({ shelf, r });
  }
  const unique = (key: string, what: (v: string) => string, value: (shelf: ShelfSpec, i: number) => string | undefined, hint = "") => {
    const seen = new Map<string, string>();
    for (const shelf of fleet.shelves) {
      shelf.pis.forEach((_pi, i) => {
        const v = value(shelf, i);
        if (v === undefined) return;
        const other = seen.get(v);
        if (other !== undefined) add(`${piAt(shelf, i)}.${key}`, `${what(v)} is already used by ${other}${hint}`);
        else seen.set(v, piAt(shelf, i));
      });
    }
  };
  unique("name", (v) => `"${v}"`, (s, i) => s.pis[i].name);
  unique("mac", (v) => `MAC ${v}`, (s, i) => s.pis[i].mac);
  unique("serial", (v) => `serial ${v} (its TFTP folder)`, (s, i) => {
    const serial = s.pis[i].serial;
    return serial === undefined ? undefined : serial.slice(-8);
  });
  if (typeof prefix !== "string") {
    const multi = fleet.shelves.length > 1;
    unique(
      "ipv6",
      (v) => v,
      (s, i) => {
        const a = publicAddressOf(s, i, prefix.groups);
        return typeof a === "string" ? undefined : formatIPv6(a);
      },
      multi ? " (with several shelves, put {shelf} in public.addressScheme, or give each shelf its own addressScheme)" : "",
    );
  }
  return issues;
}

function publicAddressOf(shelf: ShelfSpec, i: number, prefixGroups: number[]): number[] | string {
  const pi = shelf.pis[i];
  if (pi.ipv6 !== undefined) return parseIPv6(pi.ipv6) ?? `"${pi.ipv6}" is not an IPv6 address`;
  const slot = pi.port - 1;
  return schemeAddress(shelf.addressScheme, prefixGroups, { port: pi.port, slot, vlan: shelf.private.firstVlan + slot, shelf: shelf.index });
}

function validateShelf(fleet: Fleet, shelf: ShelfSpec, prefixGroups: number[] | undefined, add: (p: string, m: string) => void): void {
  const at = shelf.at;
  const range = parseIPv4Cidr(shelf.private.range);
  if (typeof range === "string") add(`${at}private.range`, range);

  const { trunkPort, uplinkPorts } = shelf.switch;
  if (uplinkPorts.includes(trunkPort)) add(`${at}switch.uplinkPorts`, `port ${trunkPort} is the fileserver trunk`);

  const ports = new Map<number, number>();
  const schemeField = shelf.addressScheme === fleet.public.addressScheme ? "public.addressScheme" : `${at}addressScheme`;
  const gateway = parseIPv6(fleet.public.gateway);
  const prefix = parseIPv6Prefix(fleet.public.prefix);
  let maxPort = 0;
  shelf.pis.forEach((pi, i) => {
    const pat = piAt(shelf, i);
    const seenPort = ports.get(pi.port);
    if (seenPort !== undefined) add(`${pat}.port`, `port ${pi.port} is already used by ${piAt(shelf, seenPort)} (${shelf.pis[seenPort].name})`);
    else ports.set(pi.port, i);
    if (pi.port === trunkPort) add(`${pat}.port`, `port ${pi.port} is the fileserver trunk (${at}switch.trunkPort)`);
    if (uplinkPorts.includes(pi.port)) add(`${pat}.port`, `port ${pi.port} is an uplink (${at}switch.uplinkPorts)`);
    maxPort = Math.max(maxPort, pi.port);

    const slot = pi.port - 1;
    const vlan = shelf.private.firstVlan + slot;
    if (vlan > MAX_VLAN) {
      add(`${pat}.port`, `port ${pi.port} needs VLAN ${vlan} (${at}private.firstVlan ${shelf.private.firstVlan} + ${slot}), beyond ${MAX_VLAN}`);
    }
    if (vlan === fleet.public.vlan) {
      add(`${pat}.port`, `port ${pi.port} would use VLAN ${vlan}, which is the public VLAN (public.vlan); move ${at}private.firstVlan`);
    }

    if (pi.mac !== undefined) {
      const first = parseInt(pi.mac.slice(0, 2), 16);
      if (pi.mac === "00:00:00:00:00:00" || pi.mac === "ff:ff:ff:ff:ff:ff") add(`${pat}.mac`, `${pi.mac} is not a board's MAC`);
      else if (first & 1) add(`${pat}.mac`, `${pi.mac} is a multicast address; a Pi's Ethernet MAC is unicast (first byte even)`);
    }

    const mode = pi.boot ?? fleet.boot.mode;
    if (mode === "netboot") {
      const why = pi.boot ? `${pat}.boot is netboot` : "boot.mode is netboot";
      if (pi.mac === undefined) add(`${pat}.mac`, `required: ${why}, and the DHCP reservation is made for the Pi's MAC`);
      if (pi.serial === undefined && fleet.boot.method === "rpi") add(`${pat}.serial`, `required: ${why}, and the boot ROM asks TFTP for <serial>/`);
    }

    if (prefixGroups && typeof prefix !== "string") {
      const addr = publicAddressOf(shelf, i, prefixGroups);
      if (typeof addr === "string") add(pi.ipv6 !== undefined ? `${pat}.ipv6` : schemeField, addr);
      else {
        if (pi.ipv6 !== undefined && !ipv6InPrefix(addr, prefix)) add(`${pat}.ipv6`, `${pi.ipv6} is outside ${fleet.public.prefix}`);
        if (gateway && formatIPv6(gateway) === formatIPv6(addr)) add(`${pat}.ipv6`, `${formatIPv6(addr)} is the gateway's address`);
      }
    }
  });

  if (typeof range !== "string") {
    const capacity = range.size / 4;
    if (maxPort > capacity) {
      const needed = maxPort * 4;
      const len = prefixLengthFor(needed);
      add(
        `${at}private.range`,
        `${shelf.private.range} holds ${capacity} Pis (one /30 each, by port); port ${maxPort} needs ${needed} addresses: ` +
          `use a /${len} or larger (e.g. ${formatIPv4(range.network - (range.network % 2 ** (32 - len)))}/${len})`,
      );
    }
  }
}


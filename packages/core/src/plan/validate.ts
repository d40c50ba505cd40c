import path from "node:path";
import type { Fleet } from "../fleet/schema.js";
import type { FieldIssue } from "../fleet/errors.js";
import { parseIPv4Cidr, prefixLengthFor, formatIPv4 } from "../net/ipv4.js";
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

/**
 * A Pi's public address as text: the prefix's four groups then the scheme as written, so the
 * seed's `2a00:1098:0:84:1000:1::2` stays in the operator's form in every rendered file.
 */
export function schemeText(scheme: string, prefixGroups: number[], vars: Record<string, number>): string {
  const iid = scheme.replace(/\{(port|slot|vlan)\}/g, (_m, key: string) => String(vars[key]));
  return `${prefixGroups.slice(0, 4).map((g) => g.toString(16)).join(":")}:${iid.toLowerCase()}`;
}

/** A Pi's public address from the scheme, or an error message. */
export function schemeAddress(scheme: string, prefixGroups: number[], vars: Record<string, number>): number[] | string {
  const iid = scheme.replace(/\{(port|slot|vlan)\}/g, (_m, key: string) => String(vars[key]));
  if (/[{}]/.test(iid)) return `unknown placeholder in "${scheme}" (use {port}, {slot} or {vlan})`;
  const groups = parseInterfaceId(iid);
  if (!groups) return `"${iid}" (from "${scheme}") is not a 64-bit interface identifier like 1000:1::2`;
  return [...prefixGroups.slice(0, 4), ...groups];
}

/**
 * Checks what a schema cannot: relations between fields. Returns every issue found so an
 * operator fixes the file in one pass.
 */
export function validateFleet(fleet: Fleet): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const add = (p: string, message: string) => issues.push({ path: p, message });

  const range = parseIPv4Cidr(fleet.private.range);
  if (typeof range === "string") add("private.range", range);

  const prefix = parseIPv6Prefix(fleet.public.prefix);
  if (typeof prefix === "string") add("public.prefix", prefix);
  const gateway = parseIPv6(fleet.public.gateway);
  if (!gateway) add("public.gateway", `"${fleet.public.gateway}" is not an IPv6 address`);
  else if (typeof prefix !== "string" && !ipv6InPrefix(gateway, prefix)) {
    add("public.gateway", `${fleet.public.gateway} is outside ${fleet.public.prefix}`);
  }

  const root = fleet.fileserver.exportRoot;
  if (path.posix.normalize(root) !== root.replace(/\/+$/, "") || root === "/" || root.includes("/../")) {
    add("fileserver.exportRoot", `"${root}" must be a normalised absolute path other than /`);
  }

  const { trunkPort, uplinkPorts } = fleet.switch;
  if (uplinkPorts.includes(trunkPort)) add("switch.uplinkPorts", `port ${trunkPort} is the fileserver trunk`);

  const names = new Map<string, number>();
  const ports = new Map<number, number>();
  const v6 = new Map<string, number>();
  let maxPort = 0;
  fleet.pis.forEach((pi, i) => {
    const at = `pis[${i}]`;
    const seenName = names.get(pi.name);
    if (seenName !== undefined) add(`${at}.name`, `"${pi.name}" is already used by pis[${seenName}]`);
    else names.set(pi.name, i);
    const seenPort = ports.get(pi.port);
    if (seenPort !== undefined) add(`${at}.port`, `port ${pi.port} is already used by pis[${seenPort}] (${fleet.pis[seenPort].name})`);
    else ports.set(pi.port, i);
    if (pi.port === trunkPort) add(`${at}.port`, `port ${pi.port} is the fileserver trunk (switch.trunkPort)`);
    if (uplinkPorts.includes(pi.port)) add(`${at}.port`, `port ${pi.port} is an uplink (switch.uplinkPorts)`);
    maxPort = Math.max(maxPort, pi.port);

    const slot = pi.port - 1;
    const vlan = fleet.private.firstVlan + slot;
    if (vlan > MAX_VLAN) {
      add(`${at}.port`, `port ${pi.port} needs VLAN ${vlan} (private.firstVlan ${fleet.private.firstVlan} + ${slot}), beyond ${MAX_VLAN}`);
    }
    if (vlan === fleet.public.vlan) {
      add(`${at}.port`, `port ${pi.port} would use VLAN ${vlan}, which is the public VLAN (public.vlan); move private.firstVlan`);
    }

    if (typeof prefix !== "string") {
      let addr: number[] | string;
      if (pi.ipv6 !== undefined) {
        const parsed = parseIPv6(pi.ipv6);
        addr = parsed ?? `"${pi.ipv6}" is not an IPv6 address`;
        if (parsed && !ipv6InPrefix(parsed, prefix)) addr = `${pi.ipv6} is outside ${fleet.public.prefix}`;
      } else {
        addr = schemeAddress(fleet.public.addressScheme, prefix.groups, { port: pi.port, slot, vlan });
      }
      if (typeof addr === "string") add(pi.ipv6 !== undefined ? `${at}.ipv6` : "public.addressScheme", addr);
      else {
        const text = formatIPv6(addr);
        const other = v6.get(text);
        if (other !== undefined) add(`${at}.ipv6`, `${text} is already used by pis[${other}]`);
        else v6.set(text, i);
        if (gateway && formatIPv6(gateway) === text) add(`${at}.ipv6`, `${text} is the gateway's address`);
      }
    }
  });

  if (typeof range !== "string") {
    const capacity = range.size / 4;
    if (maxPort > capacity) {
      const needed = maxPort * 4;
      add(
        "private.range",
        `${fleet.private.range} holds ${capacity} Pis (one /30 each, by port); port ${maxPort} needs ${needed} addresses: ` +
          `use a /${prefixLengthFor(needed)} or larger (e.g. ${formatIPv4(range.network - (range.network % 2 ** (32 - prefixLengthFor(needed))))}/${prefixLengthFor(needed)})`,
      );
    }
  }
  return issues;
}

/** What pifleet needs to know about a live link, from `ip -j -d link show` and `ip -j addr show`. */
export interface LiveLink {
  name: string;
  /** `linkinfo.info_kind`: "vlan", "veth", "bridge"…; "" for a plain device. */
  kind: string;
  /** For a VLAN: its parent (`link`) and 802.1Q id. */
  parent?: string;
  vlanId?: number;
  up: boolean;
  operstate: string;
  alias?: string;
  addresses: LiveAddress[];
}

export interface LiveAddress {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  scope: string;
}

interface IpLinkJson {
  ifname?: unknown;
  link?: unknown;
  flags?: unknown;
  operstate?: unknown;
  ifalias?: unknown;
  linkinfo?: { info_kind?: unknown; info_data?: { id?: unknown; protocol?: unknown } };
  addr_info?: Array<{ family?: unknown; local?: unknown; prefixlen?: unknown; scope?: unknown }>;
}

function parseArray(text: string, what: string): IpLinkJson[] {
  let data: unknown;
  try {
    data = JSON.parse(text.trim() === "" ? "[]" : text);
  } catch (err) {
    throw new Error(`${what}: not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(data)) throw new Error(`${what}: expected a JSON array`);
  return data as IpLinkJson[];
}

/**
 * Merges the two outputs by name. `ip -d` is needed for `linkinfo` (the VLAN id); `link` alone
 * means something else for a veth (its peer), so only a VLAN's `link` is read as its parent.
 */
export function parseIpLinks(linkJson: string, addrJson: string): LiveLink[] {
  const links = new Map<string, LiveLink>();
  for (const l of parseArray(linkJson, "ip -j -d link show")) {
    if (typeof l.ifname !== "string") continue;
    const kind = typeof l.linkinfo?.info_kind === "string" ? l.linkinfo.info_kind : "";
    const flags = Array.isArray(l.flags) ? (l.flags as unknown[]).filter((f): f is string => typeof f === "string") : [];
    const link: LiveLink = {
      name: l.ifname,
      kind,
      up: flags.includes("UP"),
      operstate: typeof l.operstate === "string" ? l.operstate : "UNKNOWN",
      addresses: [],
    };
    if (typeof l.ifalias === "string" && l.ifalias !== "") link.alias = l.ifalias;
    if (kind === "vlan") {
      if (typeof l.link === "string") link.parent = l.link;
      const id = l.linkinfo?.info_data?.id;
      if (typeof id === "number") link.vlanId = id;
    }
    links.set(link.name, link);
  }
  for (const l of parseArray(addrJson, "ip -j addr show")) {
    if (typeof l.ifname !== "string") continue;
    const link = links.get(l.ifname);
    if (!link) continue;
    for (const a of l.addr_info ?? []) {
      if ((a.family !== "inet" && a.family !== "inet6") || typeof a.local !== "string" || typeof a.prefixlen !== "number") continue;
      link.addresses.push({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: typeof a.scope === "string" ? a.scope : "global" });
    }
  }
  return [...links.values()];
}

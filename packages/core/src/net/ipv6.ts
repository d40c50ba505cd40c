/** IPv6 as eight 16-bit groups; formatting follows RFC 5952 so rendered files match what `ip` prints. */

export type IPv6Groups = number[];

export function parseIPv6(text: string): IPv6Groups | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.includes(":::")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseHalf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const groups = half.split(":");
    const out: number[] = [];
    for (const group of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const head = parseHalf(halves[0]);
  const tail = halves.length === 2 ? parseHalf(halves[1]) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

export function formatIPv6(groups: IPv6Groups): string {
  // RFC 5952: compress the longest run (>1) of zero groups, first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

export interface IPv6Prefix {
  groups: IPv6Groups;
  prefixLength: number;
}

export function parseIPv6Prefix(text: string): IPv6Prefix | string {
  const match = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  if (!match) return "must be an IPv6 prefix like 2a00:1098:0:84::/64";
  const groups = parseIPv6(match[1]);
  if (!groups) return `"${match[1]}" is not an IPv6 address`;
  const prefixLength = Number(match[2]);
  if (prefixLength !== 64) return "the public prefix must be a /64 (SLAAC-sized, as in the seed)";
  if (groups.slice(4).some((g) => g !== 0)) return `${text} has bits set past /64`;
  return { groups, prefixLength };
}

export function ipv6InPrefix(address: IPv6Groups, prefix: IPv6Prefix): boolean {
  return prefix.groups.slice(0, 4).every((g, i) => address[i] === g);
}

/** RFC 5952 form of any valid IPv6 text (what the kernel and `ip` print); undefined if invalid. */
export function canonicalIPv6(text: string): string | undefined {
  const groups = parseIPv6(text);
  return groups ? formatIPv6(groups) : undefined;
}

/** IPv4 addresses as unsigned 32-bit numbers: arithmetic on /30 blocks stays exact. */

export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

export interface IPv4Cidr {
  network: number;
  prefixLength: number;
  size: number;
}

/** Parses `a.b.c.d/len`; rejects host bits set so a typo cannot silently shift the plan. */
export function parseIPv4Cidr(text: string): IPv4Cidr | string {
  const match = /^([^/]+)\/([0-9]{1,2})$/.exec(text);
  if (!match) return "must be an IPv4 range like 10.46.189.0/24";
  const address = parseIPv4(match[1]);
  if (address === undefined) return `"${match[1]}" is not an IPv4 address`;
  const prefixLength = Number(match[2]);
  if (prefixLength > 30) return "prefix length must be 30 or shorter (each Pi takes a /30)";
  const size = 2 ** (32 - prefixLength);
  if (address % size !== 0) {
    return `${text} has host bits set; the network is ${formatIPv4(address - (address % size))}/${prefixLength}`;
  }
  return { network: address, prefixLength, size };
}

export function netmaskOf(prefixLength: number): string {
  return formatIPv4(2 ** 32 - 2 ** (32 - prefixLength));
}

/** Smallest prefix length whose range holds `addresses` addresses. */
export function prefixLengthFor(addresses: number): number {
  return 32 - Math.ceil(Math.log2(Math.max(addresses, 1)));
}

/**
 * Q-BRIDGE-MIB PortList: one bit per bridge port, port 1 is the most significant bit of the first
 * octet (RFC 4363 §6, after RFC 2674). Ports are 1-based.
 */
export function encodePortList(ports: Iterable<number>, octets?: number): Buffer {
  const list = [...ports];
  const highest = list.length ? Math.max(...list) : 0;
  const size = octets ?? Math.ceil(highest / 8);
  if (highest > size * 8) throw new RangeError(`port ${highest} does not fit a ${size}-octet PortList`);
  const buf = Buffer.alloc(size);
  for (const port of list) {
    if (!Number.isInteger(port) || port < 1) throw new RangeError(`port ${port} is not a bridge port number`);
    buf[(port - 1) >> 3] |= 0x80 >> ((port - 1) & 7);
  }
  return buf;
}

/** The ports set in a PortList, ascending. */
export function decodePortList(buf: Uint8Array): number[] {
  const ports: number[] = [];
  for (let i = 0; i < buf.length; i++) {
    const byte = buf[i];
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) ports.push(i * 8 + bit + 1);
  }
  return ports;
}

/** Same ports, whatever the octet count (switches pad PortLists to their own width). */
export function samePorts(a: Iterable<number>, b: Iterable<number>): boolean {
  const x = [...new Set(a)].sort((p, q) => p - q);
  const y = [...new Set(b)].sort((p, q) => p - q);
  return x.length === y.length && x.every((p, i) => p === y[i]);
}

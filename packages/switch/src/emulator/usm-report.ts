/**
 * RFC 3414 §3.2: an agent that cannot authenticate (step 6) or decrypt (step 8) a reportable
 * request answers with a Report PDU naming the USM counter — usmStatsWrongDigests or
 * usmStatsDecryptionErrors — so the manager can tell a bad key from a dead switch. net-snmp's
 * agent drops such messages silently; the emulator sends the report itself, built here from the
 * request's unencrypted header (BER, by hand: only a handful of tags are needed).
 */
export type UsmFailure = "wrongDigests" | "decryptionErrors";

const USM_STATS = "1.3.6.1.6.3.15.1.1";
const COUNTER_ARC: Record<UsmFailure, number> = { wrongDigests: 5, decryptionErrors: 6 };

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new RangeError("truncated");
  const tag = buf[offset];
  let len = buf[offset + 1];
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || offset + 2 + n > buf.length) throw new RangeError("bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | buf[offset + 2 + i];
    header += n;
  }
  const start = offset + header;
  if (start + len > buf.length) throw new RangeError("truncated");
  return { tag, start, end: start + len };
}

function readInt(buf: Buffer, t: Tlv): number {
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + buf[i];
  return v;
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

/** Non-negative INTEGER (or Counter32 with tag 0x41), minimal two's complement. */
function uint(value: number, tag = 0x02): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

function oid(text: string): Buffer {
  const arcs = text.split(".").map(Number);
  const out: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v & 0x7f);
      v >>>= 7;
    } while (v > 0);
    groups.forEach((g, i) => out.push(i < groups.length - 1 ? g | 0x80 : g));
  }
  return tlv(0x06, Buffer.from(out));
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const octets = (b: Buffer): Buffer => tlv(0x04, b);

/** The report for a failed request, or null when the request is not a reportable SNMPv3 message. */
export function usmReport(request: Buffer, failure: UsmFailure, engine: { engineID: Buffer; engineBoots: number; engineTime: number }, count: number): Buffer | null {
  try {
    const message = readTlv(request, 0);
    const version = readTlv(request, message.start);
    if (message.tag !== 0x30 || version.tag !== 0x02 || readInt(request, version) !== 3) return null;
    const global = readTlv(request, version.end);
    const msgId = readTlv(request, global.start);
    const maxSize = readTlv(request, msgId.end);
    const flags = readTlv(request, maxSize.end);
    if (flags.tag !== 0x04 || flags.end - flags.start !== 1) return null;
    if ((request[flags.start] & 0x04) === 0) return null; // not reportable
    const id = readInt(request, msgId);
    const securityParameters = seq(octets(engine.engineID), uint(engine.engineBoots), uint(engine.engineTime), octets(Buffer.alloc(0)), octets(Buffer.alloc(0)), octets(Buffer.alloc(0)));
    const varbind = seq(oid(`${USM_STATS}.${COUNTER_ARC[failure]}.0`), uint(count, 0x41));
    const pdu = tlv(0xa8, Buffer.concat([uint(id), uint(0), uint(0), seq(varbind)]));
    return seq(
      uint(3),
      seq(uint(id), uint(65507), octets(Buffer.from([0x00])), uint(3)),
      octets(securityParameters),
      seq(octets(engine.engineID), octets(Buffer.alloc(0)), pdu),
    );
  } catch {
    return null;
  }
}

import $protobuf from "protobufjs/minimal.js";
import { PROTOCOL_VERSION, v1 } from "./codec.js";

/** Envelope field numbers of the bodies a coordinator sends to many peers at once. */
const FIELD = { snapshot: 18, delta: 19 } as const;
export type SharedBodyName = keyof typeof FIELD;

/**
 * The Envelope{version, seq, <name>: body} that encodeEnvelope would produce, from body bytes
 * encoded once: a feed delta goes to every watcher, and their envelopes differ only in `seq`.
 */
export function envelopeAround(seq: number, name: SharedBodyName, body: Uint8Array): Uint8Array {
  const w = $protobuf.Writer.create();
  w.uint32(8).uint32(PROTOCOL_VERSION);
  w.uint32(16).uint64(seq);
  w.uint32((FIELD[name] << 3) | 2).bytes(body);
  return w.finish();
}

/**
 * The bytes of one top-level envelope field as they arrived (e.g. a PiReport), copied out of the
 * frame: the coordinator forwards a report to watchers and the database without re-encoding it.
 */
export function rawBodyOf(frame: Uint8Array, name: RawBodyName): Uint8Array | undefined {
  const at = rawBodyRange(frame, name);
  // A copy, never a view: a Buffer's slice shares memory with the whole socket read.
  return at ? new Uint8Array(frame.subarray(at[0], at[1])) : undefined;
}

/**
 * Where one top-level envelope field's bytes lie in a frame ([start, end)), so the caller can copy
 * them into a buffer it keeps (the coordinator keeps one per Pi): no allocation per report.
 */
export function rawBodyRange(frame: Uint8Array, name: RawBodyName): [number, number] | undefined {
  // A few top-level fields to step over: read by hand, no Reader object per frame.
  const want = BODY_FIELD[name];
  let p = 0;
  const n = frame.byteLength;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= n) return -1;
      const b = frame[p++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 63) return -1;
    }
  };
  while (p < n) {
    const tag = varint();
    if (tag < 0) return undefined;
    const wire = tag % 8;
    if (wire === 0) {
      if (varint() < 0) return undefined;
    } else if (wire === 2) {
      const len = varint();
      if (len < 0 || p + len > n) return undefined;
      if (Math.floor(tag / 8) === want) return [p, p + len];
      p += len;
    } else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else return undefined;
  }
  return undefined;
}
const BODY_FIELD = { piReport: 14, piSample: 22 } as const;
export type RawBodyName = keyof typeof BODY_FIELD;

/**
 * PiStatus bytes with `last_sample` (field 11) and `facts` (field 12) given already encoded;
 * `status.lastSample`, `status.facts` and `status.lastReport` themselves are not encoded. Written
 * by hand: the feed encodes one of these per report, and protobufjs' Writer allocates an object
 * per field. The test checks it decodes exactly like v1.PiStatus.encode.
 */
export function encodePiStatusWith(s: v1.PiStatus.$Properties, sample: Uint8Array | null | undefined, facts: Uint8Array | null | undefined): Uint8Array {
  const name = s.name ?? "";
  const reason = s.reason ?? "";
  const nameLen = Buffer.byteLength(name);
  const reasonLen = Buffer.byteLength(reason);
  const port = s.port ?? 0;
  const state = s.state ?? 0;
  const seen = Number(s.lastSeenMs ?? 0);
  const since = Number(s.stateSinceMs ?? 0);
  const attempts = s.attempts ?? 0;
  const shelf = s.shelf ?? "";
  const shelfLen = Buffer.byteLength(shelf);
  let size = 0;
  if (nameLen) size += 1 + varintSize(nameLen) + nameLen;
  if (port) size += 1 + varintSize(port);
  if (state) size += 1 + varintSize(state);
  if (reasonLen) size += 1 + varintSize(reasonLen) + reasonLen;
  if (seen) size += 1 + varintSize(seen);
  if (since) size += 1 + varintSize(since);
  if (attempts) size += 1 + varintSize(attempts);
  if (s.connected) size += 2;
  if (s.held) size += 2;
  if (sample) size += 1 + varintSize(sample.byteLength) + sample.byteLength;
  if (facts) size += 1 + varintSize(facts.byteLength) + facts.byteLength;
  if (shelfLen) size += 1 + varintSize(shelfLen) + shelfLen;
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  if (nameLen) {
    b[p++] = (1 << 3) | 2;
    p = writeVarint(b, p, nameLen);
    p += b.write(name, p, "utf8");
  }
  if (port) {
    b[p++] = 2 << 3;
    p = writeVarint(b, p, port);
  }
  if (state) {
    b[p++] = 3 << 3;
    p = writeVarint(b, p, state);
  }
  if (reasonLen) {
    b[p++] = (4 << 3) | 2;
    p = writeVarint(b, p, reasonLen);
    p += b.write(reason, p, "utf8");
  }
  if (seen) {
    b[p++] = 5 << 3;
    p = writeVarint(b, p, seen);
  }
  if (since) {
    b[p++] = 6 << 3;
    p = writeVarint(b, p, since);
  }
  if (attempts) {
    b[p++] = 8 << 3;
    p = writeVarint(b, p, attempts);
  }
  if (s.connected) {
    b[p++] = 9 << 3;
    b[p++] = 1;
  }
  if (s.held) {
    b[p++] = 10 << 3;
    b[p++] = 1;
  }
  if (sample) {
    b[p++] = (11 << 3) | 2;
    p = writeVarint(b, p, sample.byteLength);
    b.set(sample, p);
    p += sample.byteLength;
  }
  if (facts) {
    b[p++] = (12 << 3) | 2;
    p = writeVarint(b, p, facts.byteLength);
    b.set(facts, p);
    p += facts.byteLength;
  }
  if (shelfLen) {
    b[p++] = (13 << 3) | 2;
    p = writeVarint(b, p, shelfLen);
    p += b.write(shelf, p, "utf8");
  }
  return b;
}

/** A FeedDelta or FeedSnapshot from PiStatus messages already encoded (repeated field `pis`: 1 in a delta, 2 in a snapshot). */
export function encodeFeedWithStatuses(name: "delta", rest: Omit<v1.FeedDelta.$Properties, "pis">, statuses: Uint8Array[]): Uint8Array;
export function encodeFeedWithStatuses(name: "snapshot", rest: Omit<v1.FeedSnapshot.$Properties, "pis">, statuses: Uint8Array[]): Uint8Array;
export function encodeFeedWithStatuses(name: SharedBodyName, rest: object, statuses: Uint8Array[]): Uint8Array {
  const head = (name === "delta" ? v1.FeedDelta.encode(rest as v1.FeedDelta.$Properties) : v1.FeedSnapshot.encode(rest as v1.FeedSnapshot.$Properties)).finish();
  const tag = ((name === "delta" ? 1 : 2) << 3) | 2;
  let size = head.byteLength;
  for (const st of statuses) size += 1 + varintSize(st.byteLength) + st.byteLength;
  const b = Buffer.allocUnsafe(size);
  b.set(head, 0);
  let p = head.byteLength;
  for (const st of statuses) {
    b[p++] = tag;
    p = writeVarint(b, p, st.byteLength);
    b.set(st, p);
    p += st.byteLength;
  }
  return b;
}

/** Bytes of a base-128 varint for a non-negative integer below 2^53. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(b: Buffer, p: number, v: number): number {
  while (v >= 128) {
    b[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  b[p++] = v;
  return p;
}

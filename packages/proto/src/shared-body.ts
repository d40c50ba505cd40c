import $protobuf from "protobufjs/minimal.js";
import { PROTOCOL_VERSION, v1 } from "./codec.js";

/** Envelope field numbers of the bodies a coordinator sends to many peers at once. */
const FIELD = { snapshot: 18, delta: 19 } as const;
export type SharedBodyName = keyof typeof FIELD;

/**
 * A feed delta goes to every watcher. Encoding it once and wrapping the same bytes in each
 * watcher's envelope (which differs only in `seq`) keeps the cost per watcher to a copy.
 */
export function encodeSharedBody(name: "delta", body: v1.FeedDelta.$Properties): Uint8Array;
export function encodeSharedBody(name: "snapshot", body: v1.FeedSnapshot.$Properties): Uint8Array;
export function encodeSharedBody(name: SharedBodyName, body: v1.FeedDelta.$Properties | v1.FeedSnapshot.$Properties): Uint8Array {
  return name === "delta" ? v1.FeedDelta.encode(body as v1.FeedDelta.$Properties).finish() : v1.FeedSnapshot.encode(body as v1.FeedSnapshot.$Properties).finish();
}

/** The Envelope{version, seq, <name>: body} that encodeEnvelope would produce, from pre-encoded body bytes. */
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
export function rawBodyOf(frame: Uint8Array, name: "piReport"): Uint8Array | undefined {
  const want = BODY_FIELD[name];
  const r = $protobuf.Reader.create(frame);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === want && (tag & 7) === 2) {
      const len = r.uint32();
      return frame.slice(r.pos, r.pos + len);
    }
    r.skipType(tag & 7);
  }
  return undefined;
}
const BODY_FIELD = { piReport: 14 } as const;

/** PiStatus bytes with `last_report` given already encoded (field 7); `status.lastReport` itself is not encoded. */
export function encodePiStatusWithReport(status: v1.PiStatus.$Properties, report: Uint8Array | null | undefined): Uint8Array {
  const w = v1.PiStatus.encode(status.lastReport == null ? status : { ...status, lastReport: null });
  if (report) w.uint32((7 << 3) | 2).bytes(report);
  return w.finish();
}

/** A FeedDelta or FeedSnapshot from PiStatus messages already encoded (repeated field `pis`: 1 in a delta, 2 in a snapshot). */
export function encodeFeedWithStatuses(name: "delta", rest: Omit<v1.FeedDelta.$Properties, "pis">, statuses: Uint8Array[]): Uint8Array;
export function encodeFeedWithStatuses(name: "snapshot", rest: Omit<v1.FeedSnapshot.$Properties, "pis">, statuses: Uint8Array[]): Uint8Array;
export function encodeFeedWithStatuses(name: SharedBodyName, rest: object, statuses: Uint8Array[]): Uint8Array {
  const w = name === "delta" ? v1.FeedDelta.encode(rest as v1.FeedDelta.$Properties) : v1.FeedSnapshot.encode(rest as v1.FeedSnapshot.$Properties);
  const tag = ((name === "delta" ? 1 : 2) << 3) | 2;
  for (const s of statuses) w.uint32(tag).bytes(s);
  return w.finish();
}

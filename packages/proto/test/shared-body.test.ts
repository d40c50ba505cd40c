import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, encodeFeedWithStatuses, encodePiStatusWith, envelopeAround, rawBodyOf, rawBodyRange, v1 } from "@pifleet/proto";

describe("envelopeAround", () => {
  it("wraps a once-encoded delta exactly as encodeEnvelope would, with each peer's seq", () => {
    const delta: v1.FeedDelta.$Properties = {
      pis: [{ name: "pi01", port: 1, state: v1.PiState.PI_STATE_HEALTHY, lastSample: { timeMs: 1_700_000_000_123 } }],
      events: [{ id: 7, kind: "state", subject: "pi01", message: "unknown → healthy" }],
      timeMs: 1_700_000_000_456,
    };
    const body = v1.FeedDelta.encode(delta).finish();
    for (const seq of [1, 2, 300, 2 ** 40]) {
      const framed = envelopeAround(seq, "delta", body);
      expect(Buffer.from(framed)).toEqual(Buffer.from(encodeEnvelope({ seq, delta })));
      const env = decodeEnvelope(framed);
      expect(env.body).toBe("delta");
      expect(env.seq).toBe(seq);
      expect(env.delta!.pis![0].lastSample!.timeMs).toBe(1_700_000_000_123);
    }
  });

  it("wraps a snapshot too", () => {
    const snap: v1.FeedSnapshot.$Properties = { fleet: "seed", pis: [{ name: "pi02", port: 2 }], fleetStatus: { pisTotal: 8 } };
    const env = decodeEnvelope(envelopeAround(1, "snapshot", v1.FeedSnapshot.encode(snap).finish()));
    expect(env.body).toBe("snapshot");
    expect(env.snapshot!.fleet).toBe("seed");
    expect(env.snapshot!.fleetStatus!.pisTotal).toBe(8);
  });
});

describe("forwarding a report without re-encoding it", () => {
  const sample: v1.PiSample.$Properties = { timeMs: 1_700_000_000_999, apache: { reachable: true, busyWorkers: 2, idleWorkers: 8, slots: [8, 0, 0, 2] }, net: [2 ** 40, 1, 2, 3, 4, 5] };
  const facts: v1.AgentFacts.$Properties = { memTotalKib: 947_840, interfaces: ["eth0"], scoreboardSlots: 10 };

  it("rawBodyOf finds the sample's own bytes in a frame", () => {
    const frame = encodeEnvelope({ seq: 77, piSample: sample });
    const raw = rawBodyOf(frame, "piSample")!;
    expect(Buffer.from(raw)).toEqual(Buffer.from(v1.PiSample.encode(sample).finish()));
    const [from, to] = rawBodyRange(frame, "piSample")!;
    expect(Buffer.from(frame.subarray(from, to))).toEqual(Buffer.from(raw));
    expect(rawBodyOf(encodeEnvelope({ seq: 1, hello: { identity: "pi03", nonce: new Uint8Array(32) } }), "piSample")).toBeUndefined();
    expect(rawBodyOf(new Uint8Array([0xb2, 0x01, 0x05, 1, 2]), "piSample")).toBeUndefined(); // truncated
    expect(rawBodyOf(new Uint8Array([0x08, 0xff, 0xff]), "piSample")).toBeUndefined(); // unterminated varint
    // the bytes are a copy: changing the frame afterwards does not change them
    const big = Buffer.from(encodeEnvelope({ seq: 2 ** 40, piSample: sample }));
    const copy = rawBodyOf(big, "piSample")!;
    big.fill(0);
    expect(v1.PiSample.decode(copy).timeMs).toBe(1_700_000_000_999);
    // a v1 report is found by its own field
    const old = encodeEnvelope({ seq: 3, piReport: { pi: "pi03", timeMs: 5 } });
    expect(v1.PiReport.decode(rawBodyOf(old, "piReport")!).pi).toBe("pi03");
    expect(rawBodyOf(old, "piSample")).toBeUndefined();
  });

  it("a delta assembled from spliced statuses decodes like one encoded whole", () => {
    const raw = rawBodyOf(encodeEnvelope({ seq: 77, piSample: sample }), "piSample")!;
    const factBytes = v1.AgentFacts.encode(facts).finish();
    const status = { name: "pi03", port: 3, state: v1.PiState.PI_STATE_SUSPECT, reason: "late", lastSeenMs: 1_700_000_001_000, connected: true };
    const spliced = encodeFeedWithStatuses("delta", { timeMs: 5, events: [{ id: 9, kind: "state" }] }, [encodePiStatusWith(status, raw, factBytes), encodePiStatusWith({ name: "pi04", port: 4 }, null, null)]);
    const whole = v1.FeedDelta.encode({ timeMs: 5, events: [{ id: 9, kind: "state" }], pis: [{ ...status, lastSample: sample, facts }, { name: "pi04", port: 4 }] }).finish();
    expect(v1.FeedDelta.toObject(v1.FeedDelta.decode(spliced))).toEqual(v1.FeedDelta.toObject(v1.FeedDelta.decode(whole)));
    const env = decodeEnvelope(envelopeAround(3, "delta", spliced));
    expect(env.delta!.pis![0].lastSample!.net![0]).toBe(2 ** 40);
    const snap = v1.FeedSnapshot.decode(encodeFeedWithStatuses("snapshot", { fleet: "seed" }, [encodePiStatusWith(status, raw, factBytes)]));
    expect(snap.fleet).toBe("seed");
    expect(snap.pis[0].facts!.interfaces).toEqual(["eth0"]);
    expect(snap.pis[0].lastSample!.apache!.slots).toEqual([8, 0, 0, 2]);
  });
});

describe("64-bit fields", () => {
  it("decode as plain numbers, as the generated types promise", () => {
    const env = decodeEnvelope(encodeEnvelope({ seq: 12, piSample: { timeMs: 1_795_625_305_529, uptimeS: 86_400, net: [2 ** 40, 0, 0, 0, 0, 0] } }));
    expect(typeof env.seq).toBe("number");
    expect(env.piSample!.timeMs).toBe(1_795_625_305_529);
    expect(env.piSample!.net![0]).toBe(2 ** 40);
    expect(Date.now() - (env.piSample!.timeMs as number)).not.toBeNaN();
  });
});

describe("64-bit defaults", () => {
  it("an absent uint64 field reads as 0, not a (truthy) Long zero", () => {
    const s = decodeEnvelope(encodeEnvelope({ seq: 1, delta: { pis: [{ name: "pi01", port: 1 }] } })).delta!.pis![0];
    expect(s.lastSeenMs).toBe(0);
    expect(v1.PiStatus.create().stateSinceMs).toBe(0);
  });
});

describe("the hand-written PiStatus encoder", () => {
  it("decodes exactly like protobufjs' own encoding, whatever fields are set", async () => {
    const fc = await import("fast-check");
    const sample = v1.PiSample.encode({ timeMs: 1_795_625_305_529, apache: { reachable: true, slots: [1, 0, 0, 1] } }).finish();
    const facts = v1.AgentFacts.encode({ interfaces: ["eth0", "eth0.131"], scoreboardSlots: 3 }).finish();
    fc.assert(
      fc.property(
        fc.record(
          {
            name: fc.string({ unit: "grapheme", maxLength: 70 }),
            port: fc.integer({ min: 0, max: 4096 }),
            state: fc.integer({ min: 0, max: 8 }),
            reason: fc.string({ unit: "grapheme", maxLength: 300 }),
            lastSeenMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
            stateSinceMs: fc.integer({ min: 0, max: 2 ** 45 }),
            attempts: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
            connected: fc.boolean(),
            held: fc.boolean(),
            shelf: fc.string({ unit: "grapheme", maxLength: 40 }),
          },
          { requiredKeys: [] },
        ),
        fc.boolean(),
        fc.boolean(),
        (status, withSample, withFacts) => {
          const mine = v1.PiStatus.decode(encodePiStatusWith(status, withSample ? sample : null, withFacts ? facts : null));
          const theirs = v1.PiStatus.decode(v1.PiStatus.encode({ ...status, lastSample: withSample ? v1.PiSample.decode(sample) : null, facts: withFacts ? v1.AgentFacts.decode(facts) : null }).finish());
          expect(v1.PiStatus.toObject(mine, { defaults: true })).toEqual(v1.PiStatus.toObject(theirs, { defaults: true }));
        },
      ),
      { numRuns: 300 },
    );
  });
});

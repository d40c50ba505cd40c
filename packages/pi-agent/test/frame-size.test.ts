import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope, readingOf, SampleEncoder, v1 } from "@pifleet/proto";
import { parseModStatus } from "../src/mod-status.js";

// What one report costs on the wire, pinned so it cannot creep back: issue 13's goal is ≤ 128
// bytes for a typical report (3 interfaces, busy Apache), where PiReport took 551.
const STATUS = readFileSync(new URL("./fixtures/server-status/event-extended-2.4.71.txt", import.meta.url), "utf8");
const LIMIT = 128;

/** A busy Pi 3 serving Apache+PHP, one second after `prev`: what the collectors would read. */
function reading(t: number, k: number): v1.PiReport.$Properties {
  const parsed = parseModStatus(STATUS);
  if (!parsed.ok) throw new Error(parsed.error);
  const iface = (name: string, rx: number, tx: number) => ({
    interface: name,
    rxBytes: 9_876_543_210 + k * rx,
    txBytes: 1_234_567_890_123 + k * tx,
    rxPackets: 7_654_321 + k * Math.ceil(rx / 600),
    txPackets: 2_345_678 + k * Math.ceil(tx / 1400),
    rxErrors: 3,
    txErrors: 0,
  });
  return {
    pi: "pi01",
    timeMs: t,
    load: { one: 1.37, five: 1.12, fifteen: 0.98 },
    cpuPercent: 43.7,
    memTotalBytes: 949_448 * 1024,
    memAvailableBytes: 512_345 * 1024,
    temperatureC: 58.432,
    uptimeS: 3_024_650 + k,
    // NFS root traffic on the private VLAN, visitors on the public one, eth0 carrying both.
    net: [iface("eth0", 450_000, 2_400_000), iface("eth0.131", 150_000, 2_200_000), iface("eth0.2", 300_000, 200_000)],
    rootfs: { stalled: false, latencyMs: 3 },
    // Apache up for 30 days (the fixture's 2 s would flatter the size).
    apache: { ...parsed.status, totalAccesses: 123_456_789 + k * 68, uptimeS: 2_592_000 + k },
    probe: { ok: true, status: 200, latencyMs: 14 },
  };
}

describe("a typical report on the wire", () => {
  it(`is at most ${LIMIT} bytes: 3 interfaces, busy Apache, a week of sequence numbers`, () => {
    const enc = new SampleEncoder({ agentVersion: "pi-agent/0.2.0", nodeVersion: "v18.20.4", arch: "arm64" });
    const t0 = 1_795_625_305_529;
    enc.encode(reading(t0, 0));
    const { sample, factsChanged } = enc.encode(reading(t0 + 1003, 1));
    expect(factsChanged).toBe(false);
    const frame = encodeEnvelope({ seq: 7 * 86_400, piSample: sample });
    expect(frame.byteLength, `${frame.byteLength} bytes`).toBeLessThanOrEqual(LIMIT);
    // The same reading as a pre-0.2 PiReport, for scale.
    const old = encodeEnvelope({ seq: 7 * 86_400, piReport: reading(t0 + 1003, 1) });
    expect(old.byteLength).toBeGreaterThan(4 * frame.byteLength);

    // Nothing the dashboard shows was lost on the way.
    const env = decodeEnvelope(frame);
    const r = readingOf({ lastSample: env.piSample, facts: enc.facts })!;
    expect(r.load).toEqual({ one: 1.37, five: 1.12, fifteen: 0.98 });
    expect(r.cpuPercent).toBe(43.7);
    expect(r.memTotalBytes).toBe(949_448 * 1024);
    expect(r.memAvailableBytes).toBe(512_345 * 1024);
    expect(r.temperatureC).toBe(58.432);
    expect(r.net.map((n) => [n.interface, n.rxBytes, n.txBytes])).toEqual([
      ["eth0", 450_000, 2_400_000],
      ["eth0.131", 150_000, 2_200_000],
      ["eth0.2", 300_000, 200_000],
    ]);
    expect(r.apache).toMatchObject({ reachable: true, busyWorkers: 6, idleWorkers: 94, accesses: 68 });
    expect(r.apache!.requestsPerSec).toBeCloseTo(68 / 1.003, 5);
    // The scoreboard's 400 characters as counts per state.
    expect(r.apache!.slots).toEqual({ _: 94, R: 5, W: 1, ".": 300 });
    expect(Object.values(r.apache!.slots).reduce((a, b) => a + b, 0)).toBe(enc.facts.scoreboardSlots);
    expect(r.probe).toEqual({ ok: true, status: 200, latencyMs: 14, error: "" });
  });
});

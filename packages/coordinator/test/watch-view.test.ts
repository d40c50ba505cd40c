import { describe, expect, it } from "vitest";
import { encodeEnvelope, decodeEnvelope, v1 } from "@pifleet/proto";
import { FeedMirror, piStatusJson, renderWatch } from "@pifleet/coordinator";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

function mirrorOf(pis: v1.PiStatus.$Properties[], events: v1.FleetEvent.$Properties[] = []): FeedMirror {
  const m = new FeedMirror();
  m.apply(decodeEnvelope(encodeEnvelope({ seq: 1, snapshot: { fleet: "seed", pis, events, fleetStatus: { pisTotal: pis.length, fileserverHealthy: true } } })));
  return m;
}

const sample = (load: number, busy: number, idle: number, probeMs: number): v1.PiSample.$Properties => ({
  timeMs: NOW - 400,
  spanMs: 1000,
  load: [Math.round(load * 100), 0, 0],
  apache: { reachable: true, busyWorkers: busy, idleWorkers: idle, accesses: 31 },
  probe: { ok: true, status: 200, latencyMs: probeMs },
});

describe("pifleet watch screen", () => {
  const pis: v1.PiStatus.$Properties[] = [
    { name: "pi01", port: 1, state: v1.PiState.PI_STATE_HEALTHY, connected: true, lastSeenMs: NOW - 400, reason: "reporting", lastSample: sample(0.42, 3, 7, 6) },
    { name: "pi02", port: 2, state: v1.PiState.PI_STATE_DOWN, connected: false, lastSeenMs: NOW - 95_000, reason: "no report for 3 s", lastSample: sample(0.1, 1, 9, 5), facts: { memTotalKib: 947_840, interfaces: ["eth0"] } },
    { name: "pi03", port: 3, state: v1.PiState.PI_STATE_POWER_CYCLING, connected: false, reason: "port 3 off" },
  ];

  it("shows every Pi with its port, state, load, Apache busy/idle, probe latency and last seen; trouble first", () => {
    const lines = renderWatch(mirrorOf(pis, [{ id: 4, timeMs: NOW - 1000, kind: "state", subject: "pi02", message: "suspect → down" }]), {
      now: NOW,
      columns: 200,
      rows: 40,
      connected: true,
      url: "ws://[::1]:7300/feed",
      color: false,
    });
    expect(lines[0]).toBe("fleet seed: 3 Pis · 1 healthy, 1 down, 1 power-cycling · fileserver healthy · 0 remediations");
    expect(lines[1]).toMatch(/^live · ws:\/\/\[::1\]:7300\/feed · 12:00:00$/);
    const header = lines.findIndex((l) => l.startsWith("PI "));
    expect(lines[header]).toMatch(/^PI\s+PORT\s+STATE\s+LOAD\s+APACHE B\/I\s+PROBE\s+LAST SEEN\s+REASON$/);
    const rows = lines.slice(header + 2, header + 5);
    expect(rows[0]).toMatch(/^pi02\s+2\s+down\s+0\.10\s+1\/9\s+5 ms\s+95 s ago\s+\(offline\) no report for 3 s$/);
    expect(rows[1]).toMatch(/^pi03\s+3\s+power-cycling\s+-\s+-\s+-\s+never\s+\(offline\) port 3 off$/);
    expect(rows[2]).toMatch(/^pi01\s+1\s+healthy\s+0\.42\s+3\/7\s+6 ms\s+0\.4 s ago\s+reporting$/);
    expect(lines.slice(-2)).toEqual(["recent events:", "11:59:59 state    pi02       suspect → down"]);
  });

  it("colours states on a terminal and fits a small one", () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ name: `pi${i}`, port: i + 1, state: v1.PiState.PI_STATE_HEALTHY, reason: "ok" }));
    const lines = renderWatch(mirrorOf([...pis, ...many]), { now: NOW, columns: 60, rows: 20, connected: false, url: "ws://x/feed", color: true });
    expect(lines.length).toBeLessThanOrEqual(20);
    expect(lines.join("\n")).toContain("\x1b[31;1mdown\x1b[0m");
    expect(lines.join("\n")).toContain("disconnected, reconnecting");
    expect(lines.at(-1)).toMatch(/^… and \d+ more$/);
    for (const l of lines) expect(l.replace(/\x1b\[[0-9;]*m/g, "").length).toBeLessThanOrEqual(60);
  });

  it("a mirror applies deltas over its snapshot, and JSON names states", () => {
    const m = mirrorOf(pis);
    m.apply(decodeEnvelope(encodeEnvelope({ seq: 2, delta: { pis: [{ ...pis[1], state: v1.PiState.PI_STATE_HEALTHY, connected: true }], events: [{ id: 9, kind: "state" }] } })));
    expect(m.pis.get("pi02")!.state).toBe(v1.PiState.PI_STATE_HEALTHY);
    expect(m.events.map((e) => e.id)).toEqual([9]);
    expect(m.complete).toBe(true);
    const j = piStatusJson(m.pis.get("pi02")!);
    expect(j).toMatchObject({ name: "pi02", port: 2, state: "healthy", connected: true });
    expect((j.lastReport as { apache: { idleWorkers: number; requestsPerSec: number } }).apache).toMatchObject({ idleWorkers: 9, requestsPerSec: 31 });
    expect((j.lastReport as { load: { one: number }; memTotalBytes: number })).toMatchObject({ load: { one: 0.1 }, memTotalBytes: 947_840 * 1024 });
  });

  it("shows a Pi refused for its credentials as such, coloured, with why and what a person does", () => {
    const refused = { name: "pi06", port: 6, state: v1.PiState.PI_STATE_CREDENTIALS_REFUSED, connected: false, reason: "its agent is refused for its credentials (revoked): \"pi06\" was revoked; no power or rebuild action until a person acts" };
    const lines = renderWatch(mirrorOf([...pis, refused]), { now: NOW, columns: 250, rows: 40, connected: true, url: "ws://x/feed", color: true });
    expect(lines[0]).toContain("1 credentials-refused");
    const row = lines.find((l) => l.startsWith("pi06"))!;
    expect(row).toContain("\x1b[33;7mcredentials-refused\x1b[0m");
    expect(row).toMatch(/\(offline\) its agent is refused for its credentials \(revoked\)/);
    expect(piStatusJson(v1.PiStatus.create(refused))).toMatchObject({ state: "credentials-refused" });
  });
});

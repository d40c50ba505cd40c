import { describe, it, expect } from "vitest";
import { readFileSync } from "node:fs";
import { parseModStatus, MAX_SCOREBOARD } from "@pifleet/pi-agent";

// Recorded from Debian's apache2 2.4.71 (event MPM) serving real requests; see test/apache for how.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/server-status/${name}`, import.meta.url), "utf8");

describe("parseModStatus on recorded server-status?auto output", () => {
  it("reads ExtendedStatus output (default event MPM: 16 × 25 slots)", () => {
    const r = parseModStatus(fixture("event-extended-2.4.71.txt"));
    expect(r).toEqual({
      ok: true,
      status: {
        reachable: true,
        busyWorkers: 6,
        idleWorkers: 94,
        requestsPerSec: 68.5,
        totalAccesses: 137,
        uptimeS: 2,
        scoreboard: expect.stringMatching(/^_RWR_+R_+R_R_+\.+$/),
      },
    });
    if (!r.ok) throw new Error(r.error);
    expect(r.status.scoreboard).toHaveLength(400);
  });

  it("computes nothing it was not given: Apache omits ReqPerSec at uptime 0", () => {
    const r = parseModStatus(fixture("event-extended-uptime0-2.4.71.txt"));
    if (!r.ok) throw new Error(r.error);
    expect(r.status).toMatchObject({ busyWorkers: 4, idleWorkers: 1, totalAccesses: 21, uptimeS: 0, requestsPerSec: 0, scoreboard: "RRRW_....." });
  });

  it("reads ExtendedStatus Off output: workers and scoreboard, no access counts", () => {
    const r = parseModStatus(fixture("event-basic-2.4.71.txt"));
    if (!r.ok) throw new Error(r.error);
    expect(r.status).toMatchObject({ busyWorkers: 4, idleWorkers: 1, totalAccesses: 0, requestsPerSec: 0, scoreboard: "RR_RW....." });
    // Uptime falls back to ServerUptimeSeconds, present without ExtendedStatus.
    expect(r.status.uptimeS).toBe(0);
  });

  it("refuses the HTML status page with a hint about ?auto", () => {
    expect(parseModStatus(fixture("html-page-2.4.71.html"))).toEqual({ ok: false, error: expect.stringContaining("?auto") });
  });
});

describe("parseModStatus robustness", () => {
  it("accepts CRLF line ends and extra whitespace", () => {
    const r = parseModStatus("host\r\nTotal Accesses:  12 \r\nUptime: 4\r\nBusyWorkers: 1\r\nIdleWorkers: 3\r\nScoreboard: W___\r\n");
    expect(r).toEqual({ ok: true, status: expect.objectContaining({ totalAccesses: 12, uptimeS: 4, busyWorkers: 1, idleWorkers: 3, scoreboard: "W___" }) });
  });

  it("derives ReqPerSec from Total Accesses / Uptime when the line is missing", () => {
    const r = parseModStatus("Total Accesses: 100\nUptime: 40\nBusyWorkers: 1\nIdleWorkers: 3\n");
    if (!r.ok) throw new Error(r.error);
    expect(r.status.requestsPerSec).toBe(2.5);
  });

  it("reads ReqPerSec written without a leading zero", () => {
    const r = parseModStatus("ReqPerSec: .142857\nBusyWorkers: 1\nIdleWorkers: 3\n");
    if (!r.ok) throw new Error(r.error);
    expect(r.status.requestsPerSec).toBeCloseTo(0.142857, 6);
  });

  it("refuses a page that is not mod_status", () => {
    expect(parseModStatus("It works!\n")).toEqual({ ok: false, error: "not mod_status ?auto output (no BusyWorkers or IdleWorkers line)" });
    expect(parseModStatus("")).toMatchObject({ ok: false });
  });

  it("names the field that is not a number instead of reading it as 0", () => {
    expect(parseModStatus("BusyWorkers: many\nIdleWorkers: 3\n")).toEqual({ ok: false, error: expect.stringContaining('BusyWorkers: "many" is not a whole number') });
    expect(parseModStatus("BusyWorkers: 1\nIdleWorkers: 3\nTotal Accesses: -4\n")).toEqual({ ok: false, error: expect.stringContaining("Total Accesses") });
    expect(parseModStatus("BusyWorkers: 1\nIdleWorkers: 3\nReqPerSec: fast\n")).toEqual({ ok: false, error: expect.stringContaining("ReqPerSec") });
  });

  it("needs both worker counts", () => {
    expect(parseModStatus("BusyWorkers: 1\n")).toEqual({ ok: false, error: expect.stringContaining("no IdleWorkers line") });
  });

  it("refuses a scoreboard with characters mod_status never writes", () => {
    expect(parseModStatus("BusyWorkers: 1\nIdleWorkers: 3\nScoreboard: W_<script>\n")).toMatchObject({ ok: false, error: expect.stringContaining("Scoreboard") });
  });

  it("keeps the first of duplicated keys", () => {
    const r = parseModStatus("BusyWorkers: 2\nIdleWorkers: 3\nBusyWorkers: 9\n");
    if (!r.ok) throw new Error(r.error);
    expect(r.status.busyWorkers).toBe(2);
  });

  it("truncates a scoreboard too long for one frame but keeps the counts", () => {
    const r = parseModStatus(`BusyWorkers: 1\nIdleWorkers: 9999\nScoreboard: W${"_".repeat(9999)}\n`);
    if (!r.ok) throw new Error(r.error);
    expect(r.status.scoreboard).toHaveLength(MAX_SCOREBOARD);
    expect(r.status.idleWorkers).toBe(9999);
  });
});

import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { connect, type Socket } from "node:net";
import { request } from "node:http";
import { checkAgentConfig, createCollectors, parseModStatus, ReportBuilder } from "@pifleet/pi-agent";
import type { v1 } from "@pifleet/proto";
import { startApache, type ApacheInstance } from "./apache-server.js";

/**
 * Debian's real apache2 with mod_status, and the agent's own report path (config → registry →
 * report builder) pointed at it. The test fetches server-status?auto itself just before and just
 * after the agent's report, so the agent's figures can be checked against what Apache served.
 */
let apache: ApacheInstance;
const held: Socket[] = [];

beforeAll(async () => {
  apache = await startApache({ extendedStatus: true });
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await apache?.stop();
});

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

async function served(): Promise<v1.ApacheStatus.$Properties> {
  const r = parseModStatus(await fetchText(apache.statusUrl));
  if (!r.ok) throw new Error(`${r.error}\n${apache.errorLog()}`);
  return r.status;
}

function builder(server: ApacheInstance = apache): ReportBuilder {
  const config = checkAgentConfig({
    coordinator: { url: "ws://[::1]:7300/agent" },
    identity: "pi1",
    secretFile: "/unused",
    collectors: {
      loadavg: false,
      cpu: false,
      memory: false,
      uptime: false,
      thermal: false,
      netdev: false,
      rootfs: false,
      apache: { url: server.statusUrl },
      probe: { url: `${server.base}/` },
    },
  });
  return new ReportBuilder("pi1", createCollectors(config.collectors, { paths: config.paths }));
}

/** Busy workers reading a request that never completes: the scoreboard shows them as R. */
async function holdWorkers(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = connect(apache.port, "127.0.0.1");
    await new Promise<void>((r) => s.once("connect", () => r()));
    s.write("GET / HTTP/1.1\r\nHost: pi1\r\n");
    held.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
}

describe("agent vs a real Apache (Debian apache2, mod_status, event MPM)", () => {
  it("reports the figures server-status?auto serves", async () => {
    await holdWorkers(3);
    const b = builder();
    const before = await served();
    const report = await b.build();
    const after = await served();

    const a = report.apache!;
    expect(a.reachable).toBe(true);
    expect(a.error ?? "").toBe("");
    // Every request (ours and the agent's) is counted once it completes: strictly between.
    expect(Number(a.totalAccesses)).toBeGreaterThan(Number(before.totalAccesses));
    expect(Number(a.totalAccesses)).toBeLessThan(Number(after.totalAccesses));
    // The three held connections plus the status request itself.
    for (const s of [before, a, after]) expect(s.busyWorkers).toBeGreaterThanOrEqual(4);
    expect(a.busyWorkers! + a.idleWorkers!).toBe(before.busyWorkers! + before.idleWorkers!);
    // One scoreboard slot per possible worker (ServerLimit 2 × ThreadsPerChild 5 here).
    expect(a.scoreboard).toHaveLength(before.scoreboard!.length);
    expect(a.scoreboard).toHaveLength(10);
    expect(a.scoreboard!.replace(/[^R]/g, "").length).toBeGreaterThanOrEqual(3);
    expect(Number(a.uptimeS)).toBeGreaterThanOrEqual(Number(before.uptimeS));
    expect(Number(a.uptimeS)).toBeLessThanOrEqual(Number(after.uptimeS));

    expect(report.probe).toMatchObject({ ok: true, status: 200, error: "" });
    expect(report.probe!.latencyMs).toBeLessThan(700);
  });

  it("after Apache stops: unreachable with the reason, and the probe fails", async () => {
    for (const s of held.splice(0)) s.destroy();
    const b = builder();
    expect((await b.build()).apache!.reachable).toBe(true);
    await apache.stop();
    const report = await b.build();
    expect(report.apache).toEqual({ reachable: false, error: expect.stringContaining("ECONNREFUSED") });
    expect(report.probe).toMatchObject({ ok: false, status: 0, error: expect.stringContaining("ECONNREFUSED") });
  });
});

describe("agent vs Apache without ExtendedStatus", () => {
  it("still reads workers and scoreboard; access counts are absent, not invented", async () => {
    const plain = await startApache({ extendedStatus: false });
    try {
      const raw = await fetchText(plain.statusUrl);
      expect(raw).not.toContain("Total Accesses");
      const a = (await builder(plain).build()).apache!;
      expect(a).toMatchObject({ reachable: true, totalAccesses: 0, requestsPerSec: 0 });
      expect(a.busyWorkers).toBeGreaterThanOrEqual(1);
      expect(a.scoreboard).toHaveLength(10);
    } finally {
      await plain.stop();
    }
  });
});

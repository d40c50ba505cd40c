import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_HTTP_LIMITS, parseCoordinatorConfig, SimFleet } from "@pifleet/coordinator";
import { startCoordinator, waitFor, type Harness } from "./harness.js";

// Slow, idle and too many sockets against the coordinator's real HTTP server on loopback.

let h: Harness | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await h?.stop();
  h = undefined;
});

interface Tracked {
  socket: net.Socket;
  openedAt: number;
  closedAt?: number;
}

function open(port: number, send?: string): Promise<Tracked> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    sockets.push(socket);
    const t: Tracked = { socket, openedAt: Date.now() };
    socket.on("error", () => undefined);
    socket.on("close", () => (t.closedAt = Date.now()));
    socket.on("connect", () => {
      if (send) socket.write(send);
      resolve(t);
    });
  });
}

describe("HTTP hardening", () => {
  it("has documented defaults for every limit, and coordinator.yaml sets them", () => {
    expect(DEFAULT_HTTP_LIMITS).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 20_000, maxPendingPerAddress: 256 });
    const c = parseCoordinatorConfig("fleet: f.yaml\nhttp: { headersTimeoutMs: 2000, requestTimeoutMs: 4000, maxPendingPerAddress: 16 }\n", "/etc/pifleet/coordinator.yaml");
    expect(c.settings).toMatchObject({ headersTimeoutMs: 2000, requestTimeoutMs: 4000, keepAliveTimeoutMs: 5000, maxConnections: 20_000, maxPendingPerAddress: 16 });
    expect(() => parseCoordinatorConfig("fleet: f.yaml\nhttp: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 }\n", "c.yaml")).toThrow(/http\.requestTimeoutMs: must be at least http\.headersTimeoutMs/);
  });

  it("closes idle and slow sockets after headersTimeout, not Node's 60–90 s", async () => {
    h = await startCoordinator({ settings: { headersTimeoutMs: 600, requestTimeoutMs: 1200 } });
    const server = (h.coord as unknown as { http: { server: import("node:http").Server } }).http.server;
    expect(server.headersTimeout).toBe(600);
    expect(server.requestTimeout).toBe(1200);
    const port = h.coord.address().port;
    const idle = await Promise.all(Array.from({ length: 20 }, () => open(port)));
    // Headers that never end: one more line every 100 ms.
    const slow = await open(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => slow.socket.write("X-Slow: 1\r\n"), 100);
    try {
      await waitFor("every socket closed", () => [...idle, slow].every((t) => t.closedAt !== undefined), 5000);
    } finally {
      clearInterval(drip);
    }
    for (const t of [...idle, slow]) {
      const held = t.closedAt! - t.openedAt;
      expect(held).toBeGreaterThanOrEqual(550);
      expect(held).toBeLessThan(600 + 1000); // the timeout plus one check interval at most
    }
    expect(h.coord.metrics.httpRefused.get({ reason: "timeout" })).toBeGreaterThanOrEqual(21);
    // A request that is on time is served as before.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it("caps unauthenticated sockets per address; authenticated agents do not count against it", async () => {
    h = await startCoordinator({ pis: Array.from({ length: 12 }, (_, i) => `pi${String(i + 1).padStart(2, "0")}`), settings: { maxPendingPerAddress: 8, headersTimeoutMs: 5000, requestTimeoutMs: 5000 } });
    const port = h.coord.address().port;
    const http = (h.coord as unknown as { http: { pendingFrom(a: string): number } }).http;
    const idle = await Promise.all(Array.from({ length: 30 }, () => open(port)));
    await waitFor("the 22 over the cap closed", () => idle.filter((t) => t.closedAt !== undefined).length === 22, 3000);
    for (const t of idle.filter((x) => x.closedAt !== undefined)) expect(t.closedAt! - t.openedAt).toBeLessThan(1000);
    expect(http.pendingFrom("127.0.0.1")).toBe(8);
    expect(h.coord.metrics.httpRefused.get({ reason: "max_pending_per_address" })).toBe(22);
    const line = h.log.find((l) => l.msg === "connection refused: too many unauthenticated connections from this address");
    expect(line).toMatchObject({ remote: "127.0.0.1", limit: 8 });

    // Freed: 12 agents from the same address connect and authenticate, and then hold no place.
    for (const t of idle) t.socket.destroy();
    await waitFor("the idle sockets gone", () => http.pendingFrom("127.0.0.1") === 0);
    const fleet = new SimFleet({ url: h.coord.url("agent"), agents: [...h.secrets].map(([identity, secret]) => ({ identity, secret })), intervalMs: 500 });
    try {
      await fleet.start();
      await waitFor("12 agents connected", () => h!.coord.connectedAgents().length === 12);
      expect(http.pendingFrom("127.0.0.1")).toBe(0);
      const more = await Promise.all(Array.from({ length: 8 }, () => open(port)));
      await new Promise((r) => setTimeout(r, 300));
      expect(more.every((t) => t.closedAt === undefined)).toBe(true);
    } finally {
      await fleet.stop();
    }
  });

  it("caps open connections in all", async () => {
    h = await startCoordinator({ settings: { maxConnections: 5, headersTimeoutMs: 5000, requestTimeoutMs: 5000 } });
    const port = h.coord.address().port;
    const socks = await Promise.all(Array.from({ length: 9 }, () => open(port)));
    await waitFor("4 refused", () => socks.filter((t) => t.closedAt !== undefined).length === 4, 3000);
    expect(h.coord.metrics.httpRefused.get({ reason: "max_connections" })).toBe(4);
  });

  it("logs refused static paths, rate-limited, and counts every one", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pifleet-static-"));
    try {
      writeFileSync(path.join(dir, "index.html"), "<p>dashboard</p>");
      h = await startCoordinator({ staticDir: dir });
      const port = h.coord.address().port;
      const get = (p: string) =>
        new Promise<number>((resolve, reject) => {
          // Raw, so the path reaches the server as written (fetch would normalise "..").
          const s = net.connect(port, "127.0.0.1", () => s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
          let text = "";
          s.on("data", (d) => (text += d.toString()));
          s.on("end", () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1])));
          s.on("error", reject);
        });
      expect(await get("/index.html")).toBe(200);
      expect(await get("/../../etc/passwd")).toBe(404);
      expect(await get("/%2e%2e/%2e%2e/etc/passwd")).toBe(404);
      expect(await get("/%E0%A4%A")).toBe(400);
      const first = h.log.find((l) => l.msg === "static path refused" && l.reason === "outside_root");
      expect(first).toMatchObject({ path: "/../../etc/passwd", status: 404, remote: "127.0.0.1" });
      expect(h.log.find((l) => l.msg === "static path refused" && l.reason === "bad_path")).toMatchObject({ status: 400 });
      // A scan: every refusal counted, the log kept to a trickle.
      for (let i = 0; i < 60; i++) await get(`/../secret-${i}`);
      expect(h.coord.metrics.httpRefused.get({ reason: "outside_root" })).toBe(62);
      const lines = h.log.lines.filter((l) => l.msg === "static path refused");
      expect(lines.length).toBeLessThanOrEqual(25);
      expect(lines.length).toBeGreaterThanOrEqual(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

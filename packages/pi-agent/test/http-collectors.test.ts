import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createServer, type Server, type IncomingMessage, type ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { ApacheCollector, ProbeCollector } from "@pifleet/pi-agent";

const STATUS = readFileSync(new URL("./fixtures/server-status/event-extended-2.4.71.txt", import.meta.url), "utf8");

let server: Server;
let base: string;
const seenHosts: string[] = [];
const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  "/server-status?auto": (_req, res) => res.end(STATUS),
  "/forbidden": (_req, res) => {
    res.statusCode = 403;
    res.end("Forbidden");
  },
  "/html": (_req, res) => res.end("<html><body>It works!</body></html>"),
  "/ok": (req, res) => {
    seenHosts.push(req.headers.host ?? "");
    res.end("hello");
  },
  "/moved": (_req, res) => {
    res.writeHead(301, { location: "/ok" });
    res.end();
  },
  "/error": (_req, res) => {
    res.statusCode = 500;
    res.end("boom");
  },
  // Accepts the request and never answers: a wedged Apache.
  "/hang": () => undefined,
  // Sends headers, then stalls in the body.
  "/stall-body": (_req, res) => {
    res.writeHead(200, { "content-length": "100" });
    res.write("partial");
  },
};

beforeAll(async () => {
  server = createServer((req, res) => (routes[req.url ?? ""] ?? ((_q, r) => ((r.statusCode = 404), r.end())))(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** What the report builder does: abort the collector's signal at its deadline. */
async function collectWithDeadline<T>(c: { collect(s: AbortSignal): Promise<T> }, ms: number): Promise<{ part: T; elapsed: number }> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new Error("deadline")), ms);
  const started = performance.now();
  try {
    const part = await c.collect(ac.signal);
    return { part, elapsed: performance.now() - started };
  } finally {
    clearTimeout(t);
  }
}

describe("apache collector", () => {
  it("reports mod_status figures when server-status answers", async () => {
    const { part } = await collectWithDeadline(new ApacheCollector(`${base}/server-status?auto`, 1000), 1000);
    expect(part.apache).toMatchObject({ reachable: true, busyWorkers: 6, idleWorkers: 94, totalAccesses: 137, uptimeS: 2, requestsPerSec: 68.5 });
    expect(part.apache!.scoreboard).toHaveLength(400);
  });

  it("is unreachable with the HTTP status when status is refused", async () => {
    const { part } = await collectWithDeadline(new ApacheCollector(`${base}/forbidden`, 1000), 1000);
    expect(part.apache).toEqual({ reachable: false, error: `HTTP 403 from ${base}/forbidden` });
  });

  it("is unreachable with the parser's reason when the page is not ?auto output", async () => {
    const { part } = await collectWithDeadline(new ApacheCollector(`${base}/html`, 1000), 1000);
    expect(part.apache).toMatchObject({ reachable: false, error: expect.stringContaining("HTML") });
  });

  it("is unreachable with the connect error when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { part } = await collectWithDeadline(new ApacheCollector(`http://127.0.0.1:${port}/server-status?auto`, 1000), 1000);
    expect(part.apache).toEqual({ reachable: false, error: expect.stringContaining("ECONNREFUSED") });
  });

  it("gives up at its deadline when Apache accepts and never answers", async () => {
    const { part, elapsed } = await collectWithDeadline(new ApacheCollector(`${base}/hang`, 150), 150);
    expect(part.apache).toEqual({ reachable: false, error: "no answer within 150 ms" });
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe("probe collector", () => {
  it("is ok on 2xx, with status and latency, and sends the configured Host", async () => {
    const { part } = await collectWithDeadline(new ProbeCollector(`${base}/ok`, 1000, "www.example.org"), 1000);
    expect(part.probe).toMatchObject({ ok: true, status: 200, error: "" });
    expect(part.probe!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(part.probe!.latencyMs).toBeLessThan(1000);
    expect(seenHosts.at(-1)).toBe("www.example.org");
  });

  it("reaches a server on 127.0.0.1 only through http://localhost/ (both loopback families are tried)", async () => {
    const { part } = await collectWithDeadline(new ProbeCollector(base.replace("127.0.0.1", "localhost") + "/ok", 1000), 1000);
    expect(part.probe).toMatchObject({ ok: true, status: 200 });
  });

  it("is ok on 3xx (a redirect is an answer) and does not follow it", async () => {
    const { part } = await collectWithDeadline(new ProbeCollector(`${base}/moved`, 1000), 1000);
    expect(part.probe).toMatchObject({ ok: true, status: 301 });
  });

  it("fails on 5xx", async () => {
    const { part } = await collectWithDeadline(new ProbeCollector(`${base}/error`, 1000), 1000);
    expect(part.probe).toMatchObject({ ok: false, status: 500, error: "HTTP 500" });
  });

  it("fails at the deadline when no answer comes", async () => {
    const { part, elapsed } = await collectWithDeadline(new ProbeCollector(`${base}/hang`, 150), 150);
    expect(part.probe).toMatchObject({ ok: false, status: 0, error: "no answer within 150 ms" });
    expect(elapsed).toBeLessThan(1000);
  });

  it("fails when headers arrive but the body stalls", async () => {
    const { part } = await collectWithDeadline(new ProbeCollector(`${base}/stall-body`, 150), 150);
    expect(part.probe).toMatchObject({ ok: false, error: "no answer within 150 ms" });
  });
});

describe("the HTTP connection", () => {
  it("is kept alive and shared: server-status and the probe, report after report, over one connection", async () => {
    const srv = createServer((req, res) => res.end(req.url === "/server-status?auto" ? STATUS : "hello"));
    let connections = 0;
    srv.on("connection", () => connections++);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const apache = new ApacheCollector(`${url}/server-status?auto`, 500);
      const probe = new ProbeCollector(`${url}/`, 500);
      for (let i = 0; i < 5; i++) {
        const [a, p] = await Promise.all([collectWithDeadline(apache, 500), collectWithDeadline(probe, 500)]);
        expect(a.part.apache!.reachable).toBe(true);
        expect(p.part.probe!.ok).toBe(true);
      }
      expect(connections).toBe(1);
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  it("a server that closed the idle connection is asked again on a new one, not reported down", async () => {
    // The race a kept-alive client meets: the server drops an idle connection just as the next
    // request goes out on it. Here each connection answers once and is cut at its second request.
    const perSocket = new WeakMap<object, number>();
    let connections = 0;
    const srv = createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n > 1) return req.socket.destroy();
      res.end("hello");
    });
    srv.on("connection", () => connections++);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    try {
      const probe = new ProbeCollector(url, 500);
      for (let i = 0; i < 5; i++) {
        const { part } = await collectWithDeadline(probe, 500);
        expect(part.probe, `request ${i}`).toMatchObject({ ok: true, status: 200 });
      }
      expect(connections).toBe(5);
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });
});

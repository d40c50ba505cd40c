import { createReadStream, readFileSync, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "@pifleet/core";
import type { Endpoint } from "./auth.js";
import { RateLimit } from "./event-log.js";
import type { Metrics } from "./metrics.js";

/** Slow, idle and too many sockets: what one HTTP server tolerates. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxPendingPerAddress: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnections: 20_000, maxPendingPerAddress: 256 };

export interface HttpOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  /** Largest WebSocket message accepted at all; anything larger is cut off by ws itself. */
  maxPayload: number;
  staticDir?: string;
  limits?: HttpLimits;
  metricsRegistry?: Metrics;
  logger: Logger;
  /** `authenticated` is to be called once the peer has proven who it is (it stops counting as pending). */
  onSocket(ws: WebSocket, req: http.IncomingMessage, endpoint: Endpoint, authenticated: () => void): void;
  healthz(): object;
  metrics(): string;
}

const ENDPOINTS: Record<string, Endpoint> = { "/agent": "agent", "/feed": "feed" };
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** One HTTP(S) server: WebSocket upgrades on /agent and /feed, /healthz, /metrics, and optional static files. */
export class CoordinatorServer {
  readonly server: http.Server | https.Server;
  readonly limits: HttpLimits;
  private readonly wss: WebSocketServer;
  private open = 0;
  /** Sockets not yet authenticated, per remote address; and which sockets those are (by address:port). */
  private readonly pendingBy = new Map<string, number>();
  private readonly pending = new Set<string>();
  /** Refused static paths are logged, but a scan of thousands must not flood the log. */
  private readonly refusalLines = new RateLimit(1, 20);
  private refusalsUnlogged = 0;

  constructor(private readonly o: HttpOptions) {
    const limits = (this.limits = o.limits ?? DEFAULT_HTTP_LIMITS);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.request(req, res);
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default): an idle or
    // slow socket would otherwise live up to that much past its headersTimeout.
    const options: http.ServerOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    };
    this.server = o.tls
      ? https.createServer({ ...options, cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key), handshakeTimeout: limits.headersTimeoutMs }, handler)
      : http.createServer(options, handler);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload, perMessageDeflate: false, clientTracking: false });
    this.server.on("connection", (socket: Socket) => this.admit(socket));
    this.server.on("upgrade", (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on("clientError", (err: Error & { code?: string }, socket) => {
      if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") o.metricsRegistry?.httpRefused.inc({ reason: "timeout" });
      o.logger.debug({ err: err.message }, "bad HTTP request");
      socket.destroy();
    });
  }

  /** Sockets from `address` not yet authenticated (for tests and /metrics). */
  pendingFrom(address: string): number {
    return this.pendingBy.get(address) ?? 0;
  }

  get connections(): number {
    return this.open;
  }

  /** Every TCP connection: counted against the total cap and, until it authenticates, its address's cap. */
  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? "?";
    const refuse = (reason: string, limit: number) => {
      this.o.metricsRegistry?.httpRefused.inc({ reason });
      this.logRefusal({ remote: address, reason, limit }, reason === "max_connections" ? "connection refused: too many open connections" : "connection refused: too many unauthenticated connections from this address");
      socket.destroy();
    };
    if (this.open >= this.limits.maxConnections) return refuse("max_connections", this.limits.maxConnections);
    if ((this.pendingBy.get(address) ?? 0) >= this.limits.maxPendingPerAddress) return refuse("max_pending_per_address", this.limits.maxPendingPerAddress);
    const key = `${address}:${socket.remotePort ?? "?"}`;
    this.open++;
    this.pending.add(key);
    this.pendingBy.set(address, (this.pendingBy.get(address) ?? 0) + 1);
    socket.once("close", () => {
      this.open--;
      this.settle(address, key);
    });
  }

  private settle(address: string, key: string): void {
    if (!this.pending.delete(key)) return;
    const n = (this.pendingBy.get(address) ?? 1) - 1;
    if (n > 0) this.pendingBy.set(address, n);
    else this.pendingBy.delete(address);
  }

  /** One warn line per refusal, at most one a second after a burst; the rest are counted into the next. */
  private logRefusal(fields: Record<string, unknown>, msg: string): void {
    if (!this.refusalLines.take()) {
      this.refusalsUnlogged++;
      return;
    }
    const unlogged = this.refusalsUnlogged;
    this.refusalsUnlogged = 0;
    this.o.logger.warn(unlogged ? { ...fields, unlogged } : fields, msg);
  }

  /** Listens; `::` is dual-stack (IPv4 clients appear as ::ffff:a.b.c.d), falling back to 0.0.0.0 where IPv6 is off. */
  async listen(): Promise<AddressInfo> {
    const attempt = (host: string) =>
      new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        this.server.once("error", onError);
        // A big fleet reconnects all at once after a restart: keep the accept queue deep.
        this.server.listen({ host, port: this.o.port, ipv6Only: false, backlog: 4096 }, () => {
          this.server.off("error", onError);
          resolve();
        });
      });
    try {
      await attempt(this.o.host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (this.o.host !== "::" || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw err;
      this.o.logger.warn({ code }, "IPv6 unavailable: listening on 0.0.0.0 only");
      await attempt("0.0.0.0");
    }
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.wss.close();
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const endpoint = ENDPOINTS[pathOf(req.url)];
    if (!endpoint) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const address = req.socket.remoteAddress ?? "?";
    const key = `${address}:${req.socket.remotePort ?? "?"}`;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.o.onSocket(ws, req, endpoint, () => this.settle(address, key)));
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = pathOf(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");
    if (p === "/healthz") return send(res, 200, "application/json", `${JSON.stringify(this.o.healthz())}\n`);
    if (p === "/metrics") return send(res, 200, "text/plain; version=0.0.4; charset=utf-8", this.o.metrics());
    if (this.o.staticDir) return this.serveStatic(p, req, res);
    send(res, 404, "text/plain", "not found\n");
  }

  /** A path that tried to leave the static root (traversal) or could not be decoded. */
  private staticRefused(req: http.IncomingMessage, p: string, reason: string, status: number): void {
    this.o.metricsRegistry?.httpRefused.inc({ reason });
    this.logRefusal({ remote: req.socket.remoteAddress, path: p.slice(0, 200), reason, status }, "static path refused");
  }

  private serveStatic(p: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const root = path.resolve(this.o.staticDir!);
    let file: string;
    try {
      file = path.resolve(root, `.${decodeURIComponent(p)}`);
    } catch {
      this.staticRefused(req, p, "bad_path", 400);
      return send(res, 400, "text/plain", "bad path\n");
    }
    if (file !== root && !file.startsWith(root + path.sep)) {
      this.staticRefused(req, p, "outside_root", 404);
      return send(res, 404, "text/plain", "not found\n");
    }
    try {
      if (statSync(file).isDirectory()) file = path.join(file, "index.html");
      const st = statSync(file);
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "content-length": st.size, "cache-control": "no-cache" });
      if (req.method === "HEAD") return void res.end();
      createReadStream(file).pipe(res);
    } catch {
      send(res, 404, "text/plain", "not found\n");
    }
  }
}

function pathOf(url: string | undefined): string {
  const q = (url ?? "/").indexOf("?");
  return q < 0 ? (url ?? "/") : url!.slice(0, q);
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

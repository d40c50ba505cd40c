import { createReadStream, readFileSync, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "@pifleet/core";
import type { Endpoint } from "./auth.js";

export interface HttpOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  /** Largest WebSocket message accepted at all; anything larger is cut off by ws itself. */
  maxPayload: number;
  staticDir?: string;
  logger: Logger;
  onSocket(ws: WebSocket, req: http.IncomingMessage, endpoint: Endpoint): void;
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
  private readonly wss: WebSocketServer;

  constructor(private readonly o: HttpOptions) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.request(req, res);
    this.server = o.tls ? https.createServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, handler) : http.createServer(handler);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload, perMessageDeflate: false, clientTracking: false });
    this.server.on("upgrade", (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on("clientError", (err, socket) => {
      o.logger.debug({ err: err.message }, "bad HTTP request");
      socket.destroy();
    });
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
    this.wss.handleUpgrade(req, socket, head, (ws) => this.o.onSocket(ws, req, endpoint));
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = pathOf(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");
    if (p === "/healthz") return send(res, 200, "application/json", `${JSON.stringify(this.o.healthz())}\n`);
    if (p === "/metrics") return send(res, 200, "text/plain; version=0.0.4; charset=utf-8", this.o.metrics());
    if (this.o.staticDir) return this.serveStatic(p, req, res);
    send(res, 404, "text/plain", "not found\n");
  }

  private serveStatic(p: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const root = path.resolve(this.o.staticDir!);
    let file: string;
    try {
      file = path.resolve(root, `.${decodeURIComponent(p)}`);
    } catch {
      return send(res, 400, "text/plain", "bad path\n");
    }
    if (file !== root && !file.startsWith(root + path.sep)) return send(res, 404, "text/plain", "not found\n");
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

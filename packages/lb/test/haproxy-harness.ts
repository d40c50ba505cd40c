import { freePort } from "@pifleet/core";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Debian's own haproxy, started by the test on loopback with its config and admin socket in a temp dir. */
export const HAPROXY = "/usr/sbin/haproxy";

export interface Backend {
  port: number;
  hits: number;
  close(): Promise<void>;
}

/** A tiny web server on [::1] that answers with its name: a stand-in for a Pi's Apache. */
export async function startBackend(name: string): Promise<Backend> {
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    res.setHeader("content-type", "text/plain");
    res.end(name);
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { freePort };

export interface Haproxy {
  dir: string;
  socket: string;
  frontendPort: number;
  stop(): Promise<void>;
}

/** `servers` become config-file servers of backend `pifleet` (fast checks so tests need not wait). */
export async function startHaproxy(servers: { name: string; port: number }[]): Promise<Haproxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-haproxy-"));
  const socket = path.join(dir, "admin.sock");
  const frontendPort = await freePort();
  const config = [
    "global",
    `  stats socket ${socket} level admin`,
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 5s",
    "  timeout server 5s",
    "frontend web",
    `  bind 127.0.0.1:${frontendPort}`,
    "  default_backend pifleet",
    "backend pifleet",
    "  balance roundrobin",
    "  option httpchk GET /",
    "  http-reuse never",
    ...servers.map((s) => `  server ${s.name} [::1]:${s.port} check inter 200ms rise 1 fall 1`),
    "",
  ].join("\n");
  writeFileSync(path.join(dir, "haproxy.cfg"), config);
  const child: ChildProcess = spawn(HAPROXY, ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
    if (await answers(socket)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`haproxy did not open ${socket}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dir,
    socket,
    frontendPort,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection({ path: socket });
    c.on("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.on("error", () => resolve(false));
  });
}

/** One request through HAProxy's frontend; resolves with the backend's name (or the status for errors). */
export function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(res.statusCode === 200 ? body : `HTTP ${res.statusCode}`));
    });
    req.on("error", reject);
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

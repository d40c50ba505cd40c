import http from "node:http";
import { rmSync } from "node:fs";

/**
 * The running demo's control socket (a unix socket in its folder): `pifleet fault` talks to it.
 * Only the local user can reach it; nothing listens on the network for faults.
 */
export type ControlHandler = (req: { action: string; pi?: string; kind?: string }) => Promise<{ ok: boolean; message: string; data?: unknown }>;

export async function startControlServer(socketPath: string, handler: ControlHandler): Promise<{ close(): Promise<void> }> {
  rmSync(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > 4096) req.destroy();
    });
    req.on("end", () => {
      let parsed: { action: string; pi?: string; kind?: string };
      try {
        parsed = JSON.parse(body || "{}");
      } catch {
        res.writeHead(400).end(JSON.stringify({ ok: false, message: "request body is not JSON" }));
        return;
      }
      handler(parsed)
        .then((r) => res.writeHead(r.ok ? 200 : 400, { "content-type": "application/json" }).end(JSON.stringify(r)))
        .catch((err: Error) => res.writeHead(500).end(JSON.stringify({ ok: false, message: err.message })));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        rmSync(socketPath, { force: true });
      }),
  };
}

export function controlRequest(socketPath: string, payload: object): Promise<{ ok: boolean; message: string; data?: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: "POST", path: "/", headers: { "content-type": "application/json" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error(`demo answered ${res.statusCode}: ${body.slice(0, 200)}`));
        }
      });
    });
    req.on("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === "ENOENT" || err.code === "ECONNREFUSED" ? `no demo is running (no control socket at ${socketPath})` : err.message)),
    );
    req.end(JSON.stringify(payload));
  });
}

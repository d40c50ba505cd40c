import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The web server of one emulated Pi: serves the site's content and a mod_status-compatible
 * `server-status?auto`, so the real Pi agent watches it exactly as it watches Apache. Faults
 * make it hang or slow down the way a wedged Apache would.
 */
export type SiteFault = "none" | "hang" | "slow";

export interface PiSite {
  readonly port: number;
  fault: SiteFault;
  close(): Promise<void>;
}

const WORKERS = 25;

export async function startPiSite(opts: { name: string; host?: string; port?: number; content: () => string; slowMs?: number }): Promise<PiSite> {
  const started = Date.now();
  let accesses = 0;
  let bytes = 0;
  let busy = 0;
  const hanging = new Set<http.ServerResponse>();
  const site: PiSite = { port: 0, fault: "none", close };

  const server = http.createServer((req, res) => {
    if (site.fault === "hang") {
      // A wedged Apache accepts the connection and never answers.
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }
    busy++;
    const respond = () => {
      busy--;
      accesses++;
      if (req.url?.startsWith("/server-status")) {
        const body = statusText();
        bytes += body.length;
        res.writeHead(200, { "content-type": "text/plain; charset=ISO-8859-1" }).end(body);
        return;
      }
      const body = opts.content();
      bytes += body.length;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", server: `pifleet-demo (${opts.name})` }).end(body);
    };
    if (site.fault === "slow") setTimeout(respond, opts.slowMs ?? 2500);
    else respond();
  });

  function statusText(): string {
    const uptime = Math.max(1, Math.round((Date.now() - started) / 1000));
    const busyNow = Math.min(WORKERS, busy + 1); // this request is being served
    const scoreboard = "W".repeat(busyNow) + "_".repeat(WORKERS - busyNow) + ".".repeat(150 - WORKERS);
    return [
      opts.name,
      "ServerVersion: Apache/2.4.62 (Debian) (pifleet demo)",
      "ServerMPM: event",
      `Total Accesses: ${accesses}`,
      `Total kBytes: ${Math.round(bytes / 1024)}`,
      `Uptime: ${uptime}`,
      `ReqPerSec: ${(accesses / uptime).toFixed(6)}`,
      `BytesPerSec: ${(bytes / uptime).toFixed(3)}`,
      `BusyWorkers: ${busyNow}`,
      `IdleWorkers: ${WORKERS - busyNow}`,
      `Scoreboard: ${scoreboard}`,
      "",
    ].join("\n");
  }

  async function close(): Promise<void> {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "::1", () => resolve());
  });
  (site as { port: number }).port = (server.address() as AddressInfo).port;
  return site;
}

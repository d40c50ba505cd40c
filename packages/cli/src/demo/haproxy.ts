import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import type { ProcessSet } from "./processes.js";

export const HAPROXY = "/usr/sbin/haproxy";

/**
 * The demo's load balancer: Debian's HAProxy when installed. Its servers are the emulated Pis'
 * loopback web servers, written statically (the plan's public IPv6 addresses do not exist on
 * this machine), so the coordinator only drains and readies them — it does not sync the list.
 */
export function startDemoHaproxy(opts: { dir: string; httpPort: number; servers: { name: string; port: number }[]; processes: ProcessSet }): { child: ChildProcess; socket: string; url: string } | undefined {
  if (!existsSync(HAPROXY)) return undefined;
  const socket = path.join(opts.dir, "haproxy.sock");
  const cfg = path.join(opts.dir, "haproxy.cfg");
  writeFileSync(
    cfg,
    [
      "global",
      `\tstats socket ${socket} mode 600 level admin`,
      "defaults",
      "\tmode http",
      "\ttimeout connect 2s",
      "\ttimeout client 10s",
      "\ttimeout server 10s",
      "frontend site",
      `\tbind 127.0.0.1:${opts.httpPort}`,
      "\tdefault_backend pifleet",
      "backend pifleet",
      "\tbalance roundrobin",
      "\toption httpchk GET /",
      ...opts.servers.map((s) => `\tserver ${s.name} 127.0.0.1:${s.port} check inter 1s fall 2 rise 2`),
      "",
    ].join("\n"),
  );
  const child = opts.processes.start("haproxy", HAPROXY, ["-f", cfg, "-db"], { logFile: path.join(opts.dir, "logs", "haproxy.log") });
  return { child, socket, url: `http://127.0.0.1:${opts.httpPort}/` };
}

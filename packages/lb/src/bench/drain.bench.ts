import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createLogger, type BenchRow } from "@pifleet/core";
import { HaproxyDriver } from "../drivers/haproxy.js";

const HAPROXY = "/usr/sbin/haproxy";

/** Runtime-API latency against a private haproxy on a temp admin socket; servers point at [::1] and are never checked. */
export async function run(): Promise<BenchRow[]> {
  if (!existsSync(HAPROXY)) return [{ name: "haproxy drain+ready round trip", value: "skipped", note: `${HAPROXY} not installed` }];
  const dir = mkdtempSync(path.join(os.tmpdir(), "pifleet-lb-bench-"));
  const socket = path.join(dir, "admin.sock");
  writeFileSync(
    path.join(dir, "haproxy.cfg"),
    `global\n  stats socket ${socket} level admin\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\nbackend pifleet\n  balance roundrobin\n  server s1 [::1]:9 \n`,
  );
  const child = spawn(HAPROXY, ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: "ignore" });
  try {
    await waitForSocket(socket);
    const driver = new HaproxyDriver({ socket, backend: "pifleet", check: false, logger: createLogger("lb-bench", { level: "silent" }) });
    for (let i = 0; i < 20; i++) {
      await driver.drain("s1");
      await driver.ready("s1");
    }
    const rounds = 300;
    let start = performance.now();
    for (let i = 0; i < rounds; i++) {
      await driver.drain("s1");
      await driver.ready("s1");
    }
    const roundTrip = (performance.now() - start) / rounds;

    const planned = Array.from({ length: 96 }, (_, i) => ({ name: `pi${i + 1}`, address: "::1", port: 20000 + i }));
    start = performance.now();
    await driver.sync(planned);
    const syncAdd = performance.now() - start;
    start = performance.now();
    const reads = 50;
    for (let i = 0; i < reads; i++) await driver.servers();
    const read = (performance.now() - start) / reads;
    start = performance.now();
    await driver.sync(planned);
    const syncNoop = performance.now() - start;
    return [
      { name: "haproxy drain+ready round trip", value: roundTrip, unit: "ms", note: `mean of ${rounds}, unix socket, HAProxy 2.6` },
      { name: "haproxy sync: add 96 servers", value: syncAdd, unit: "ms", note: "add server + enable, no checks" },
      { name: "haproxy sync: 96 servers, nothing to do", value: syncNoop, unit: "ms" },
      { name: "haproxy read state of 97 servers", value: read, unit: "ms", note: "show servers state + parse" },
    ];
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForSocket(socket: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.createConnection({ path: socket }, () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`haproxy did not open ${socket}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

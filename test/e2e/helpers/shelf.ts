import { freePorts } from "@pifleet/core";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger } from "@pifleet/core";
import { SqliteStore } from "@pifleet/coordinator";
import { createDriver, type LoadBalancerDriver } from "@pifleet/lb";
import { startDemo, type DemoHandle } from "../../../packages/cli/src/demo/run.js";
import { FeedWatch } from "./feed-watch.js";
import { holdShelfLock } from "./serial.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = path.join(ROOT, "packages/cli/dist/main.js");
const BUILT = ["packages/coordinator/dist/main.js", "packages/pi-agent/dist/main.js", "packages/fileserver-agent/dist/main.js", "packages/fileserver-agent/dist/cli.js", "packages/cli/dist/main.js"];

export interface PowerChange {
  at: number;
  port: number;
  on: boolean;
}

export interface Shelf {
  demo: DemoHandle;
  dir: string;
  feed: FeedWatch;
  /** Every port power change the switch emulator saw, in order. */
  power: PowerChange[];
  /** The demo's HAProxy, read through @pifleet/lb's driver on its admin socket. */
  lb: LoadBalancerDriver;
  feedUrl: string;
  /** Opens the coordinator's database beside the running coordinator (WAL: readers do not block it). */
  withStore<T>(fn: (store: SqliteStore) => T): T;
  stop(): Promise<void>;
}

export interface ShelfOptions {
  name: string;
  /** Pis per shelf. */
  pis: number;
  /** Shelves, each its own switch emulator (default 1); `power` records the first one's changes. */
  shelves?: number;
  recovery?: Record<string, number | boolean>;
  dwellSeconds?: number;
  /** High availability: this many coordinators electing on these etcd endpoints. */
  ha?: { etcdEndpoints: string[]; coordinators: number; leaseTtlS?: number };
}

/**
 * A whole emulated shelf from `startDemo` (real coordinator, switch emulator over SNMP, HAProxy,
 * fileserver agent, one Pi agent process per Pi) on free loopback ports, a watcher on its feed,
 * and a record of every power change. Returns once every Pi is healthy on the feed.
 */
export async function startShelf(o: ShelfOptions): Promise<Shelf> {
  for (const f of BUILT) if (!existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: build first (pnpm exec tsc -b)`);
  if (!existsSync("/usr/sbin/haproxy")) throw new Error("HAProxy is not installed (apt-get install haproxy): the recovery suites drive a real one");
  const release = await holdShelfLock(400_000);
  const dir = mkdtempSync(path.join(tmpdir(), `pifleet-e2e-${o.name}-`));
  let demo: DemoHandle | undefined;
  let feed: FeedWatch | undefined;
  let lb: LoadBalancerDriver | undefined;
  const cleanup = async () => {
    await feed?.stop();
    await lb?.close().catch(() => undefined);
    await demo?.stop();
    if (!process.env.PIFLEET_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    release();
  };
  try {
    const [port, httpPort, ...more] = await freePorts(2 + Math.max(0, (o.ha?.coordinators ?? 1) - 1));
    demo = await startDemo({
      pis: o.pis,
      shelves: o.shelves,
      dir,
      port,
      httpPort,
      dwellSeconds: o.dwellSeconds,
      recovery: o.recovery,
      ...(o.ha ? { ha: { etcdEndpoints: o.ha.etcdEndpoints, ports: [port, ...more], leaseTtlS: o.ha.leaseTtlS } } : {}),
      logger: createLogger("e2e-demo", { level: process.env.PIFLEET_E2E_LOG ?? "error" }),
      out: () => undefined,
    });
    if (!demo.haproxy) throw new Error("the demo started without HAProxy");
    const power: PowerChange[] = [];
    demo.emulator.on("power", (p: number, on: boolean) => power.push({ at: Date.now(), port: p, on }));
    const feedUrl = `ws://[::1]:${port}/feed`;
    feed = new FeedWatch(feedUrl, demo.watcherToken);
    lb = createDriver("haproxy", { socket: demo.haproxy.socket, backend: "pifleet" });
    const names = demo.pis.map((p) => p.name);
    await feed.until("every Pi healthy on the feed", () => names.every((n) => feed!.state(n) === "healthy"), 60_000);
    const d = demo;
    return {
      demo: d,
      dir,
      feed,
      power,
      lb,
      feedUrl,
      withStore(fn) {
        const store = new SqliteStore(path.join(dir, "coordinator.db"));
        try {
          return fn(store);
        } finally {
          store.close();
        }
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export { freePorts };

#!/usr/bin/env node
// The coordinator under test in the feed benchmark, in its own process:
//   node dist/bench/feed-coordinator.js --db FILE --pis N [--shelves S]
// A fleet file cannot plan 10,000 Pis (one trunk carries at most 4093 private VLANs), so the
// desired state is given directly: pi00001…piNNNNN on ports 1…N. Prints {"port": P} once listening.
import { parseArgs } from "node:util";
import { createLogger } from "@pifleet/core";
import { Coordinator } from "../coordinator.js";
import { SqliteStore } from "../store/sqlite.js";
import { benchPiName } from "./names.js";

const { values } = parseArgs({ options: { db: { type: "string" }, pis: { type: "string" }, shelves: { type: "string", default: "1" }, port: { type: "string", default: "0" } } });
const n = Number(values.pis);
// With --shelves S the Pis are spread over S shelves (ports 1… on each, as on real switches),
// so the feed carries per-shelf counts and every status its shelf.
const shelves = Math.max(1, Number(values.shelves));
const perShelf = Math.ceil(n / shelves);
const store = new SqliteStore(values.db!);
const coordinator = new Coordinator({
  desired: { fleet: "bench", pis: Array.from({ length: n }, (_, i) => (shelves > 1 ? { name: benchPiName(i), port: (i % perShelf) + 1, shelf: `shelf${Math.floor(i / perShelf) + 1}` } : { name: benchPiName(i), port: i + 1 })) },
  store,
  listen: { host: "127.0.0.1", port: Number(values.port) },
  logger: createLogger("coordinator", { level: "warn" }),
});
const { port } = await coordinator.start();
if (process.env.PIFLEET_BENCH_VERBOSE) {
  // Where the time goes when latency climbs: event-loop stalls, memory, connections.
  const { monitorEventLoopDelay } = await import("node:perf_hooks");
  const v8 = await import("node:v8");
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((sp) => [sp.space_name.replace(/_space$/, ""), Math.round(sp.space_size / 2 ** 20)]));
    const mb = (x: number) => Math.round(x / 2 ** 20);
    process.stderr.write(`${JSON.stringify({ lagMaxMs: Math.round(lag.max / 1e6), lagP99Ms: Math.round(lag.percentile(99) / 1e6), rssMiB: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), spaces, agents: coordinator.connectedAgents().length })}\n`);
    lag.reset();
  }, 1000).unref();
}
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on("SIGTERM", () => {
  void coordinator.stop().finally(() => {
    store.close();
    process.exit(0);
  });
});

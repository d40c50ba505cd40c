import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchRow } from "@pifleet/core";
import { EtcdBackend } from "../ha/etcd.js";
import { startEtcdCluster } from "../ha/etcd-cluster.js";

// HA on a real three-member etcd cluster (loopback): how long a fenced act adds, and how long a
// leader killed with SIGKILL leaves the fleet without one (killed → the new leader's first act).

const TTL_S = 5;
const met = (goal: string, ok: boolean) => `${goal}: ${ok ? "met" : "missed"}`;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

// The leader to be killed runs in its own process: SIGKILL leaves its lease to expire in etcd.
if (process.env.PIFLEET_HA_BENCH_CHILD) {
  const b = new EtcdBackend({ endpoints: JSON.parse(process.env.PIFLEET_HA_BENCH_CHILD) as string[], name: "old", fleet: "bench", leaseTtlS: TTL_S });
  await b.start();
  process.send?.("leading");
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "pifleet-ha-bench-"));
  const etcd = await startEtcdCluster(dir);
  try {
    const leader = new EtcdBackend({ endpoints: etcd.endpoints, name: "a", fleet: "bench", leaseTtlS: TTL_S });
    await leader.start();
    const lat: number[] = [];
    for (let i = 0; i < 300; i++) {
      leader.intents.openIntent("pi01", 1, "bench");
      const t = performance.now();
      await leader.fence("power off port 1");
      lat.push(performance.now() - t);
    }
    await leader.stop();

    const failovers: number[] = [];
    for (let round = 0; round < 2; round++) {
      const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, PIFLEET_HA_BENCH_CHILD: JSON.stringify(etcd.endpoints) }, stdio: "ignore" });
      await new Promise<void>((resolve) => child.once("message", () => resolve()));
      const next = new EtcdBackend({ endpoints: etcd.endpoints, name: `new${round}`, fleet: "bench", leaseTtlS: TTL_S });
      const elected = next.start();
      await new Promise((r) => setTimeout(r, 500));
      const killed = performance.now();
      child.kill("SIGKILL");
      await elected;
      await next.fence("first act");
      failovers.push(performance.now() - killed);
      await next.stop();
    }
    return [
      { name: "HA: fenced power intent (etcd txn guarded by the leader key), added latency p50", value: pct(lat, 50), unit: "ms", goal: met("≤ 10 ms", pct(lat, 50) <= 10), note: "3-member etcd on loopback, 300 acts, each with one queued intent write" },
      { name: "HA: fenced power intent, added latency p99", value: pct(lat, 99), unit: "ms", goal: met("≤ 50 ms", pct(lat, 99) <= 50), note: `max ${Math.max(...lat).toFixed(1)} ms (etcd fsyncs each txn)` },
      { name: "HA: failover, leader SIGKILLed → new leader's first fenced act", value: Math.max(...failovers), unit: "ms", goal: met(`≤ lease TTL ${TTL_S} s + 1 s`, Math.max(...failovers) <= TTL_S * 1000 + 1000), note: `worst of ${failovers.length} (${failovers.map((f) => f.toFixed(0)).join(", ")} ms); the lease must expire first` },
    ];
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

import { performance } from "node:perf_hooks";
import type { BenchRow } from "./row.js";
import { checkFleet, FleetError, plan, type FleetInput } from "../index.js";

/** One shelf of n Pis on one trunk. */
function fleetOf(n: number): FleetInput {
  const prefixLength = 32 - Math.ceil(Math.log2(Math.max(4, n * 4)));
  return {
    name: "bench",
    switch: { address: "127.0.0.1", snmp: { version: "2c", community: { env: "C" } }, trunkPort: n + 1 },
    fileserver: { goldenImage: "/srv/golden" },
    private: { range: `10.0.0.0/${Math.min(prefixLength, 30)}`, firstVlan: 2 },
    public: { vlan: 4094, prefix: "2001:db8::/64", gateway: "2001:db8::1" },
    pis: Array.from({ length: n }, (_, i) => ({ name: `pi${i + 1}`, port: i + 1 })),
  };
}

/** n Pis in shelves of 96 (a /23 and a switch each), 8 trunks per fileserver. */
function shelvesOf(n: number): FleetInput {
  const count = Math.ceil(n / 96);
  return {
    name: "bench",
    public: { prefix: "2001:db8::/64", gateway: "2001:db8::1", addressScheme: "{shelf}:{port}::2" },
    fileservers: Array.from({ length: Math.ceil(count / 8) }, (_, i) => ({ name: `fs${i + 1}`, goldenImage: "/srv/golden" })),
    shelves: Array.from({ length: count }, (_, s) => ({
      name: `shelf${s + 1}`,
      switch: { address: `192.0.2.${s + 1}`, snmp: { version: "2c" as const, community: { env: "C" } }, trunkPort: 97, uplinkPorts: [98] },
      fileserver: { name: `fs${Math.floor(s / 8) + 1}`, trunkInterface: `eth${s % 8}` },
      private: { range: `10.${Math.floor(s / 128)}.${(s % 128) * 2}.0/23`, firstVlan: 10 },
      pis: Array.from({ length: Math.min(96, n - s * 96) }, (_, i) => ({ name: `s${s + 1}-pi${i + 1}`, port: i + 1 })),
    })),
  };
}

function timePlan(input: FleetInput, iterations: number): { ms: number; heapMiB: number; error?: string } {
  let error: string | undefined;
  let heap = 0;
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    try {
      const before = process.memoryUsage().heapUsed;
      const p = plan(checkFleet(input));
      heap = Math.max(heap, process.memoryUsage().heapUsed - before);
      if (p.pis.length === 0) throw new Error("empty plan");
    } catch (err) {
      if (!(err instanceof FleetError)) throw err;
      error = `${err.issues.length} issues, first: ${err.issues[0].path}: ${err.issues[0].message}`;
    }
  }
  return { ms: (performance.now() - start) / iterations, heapMiB: heap / 2 ** 20, error };
}

export async function run(): Promise<BenchRow[]> {
  timePlan(fleetOf(96), 20); // warm-up
  const rows: BenchRow[] = [];
  for (const n of [96, 4000, 10_000]) {
    const r = timePlan(fleetOf(n), n <= 100 ? 200 : 5);
    rows.push({
      name: `plan ${n} Pis on one shelf (validate + derive)`,
      value: r.ms,
      unit: "ms",
      note: r.error ? `refused: one trunk carries at most 4093 private VLANs (${r.error.slice(0, 80)}…)` : "",
    });
  }
  const big = timePlan(shelvesOf(10_000), 5);
  rows.push(
    { name: "plan 10,000 Pis on 105 shelves (validate + derive)", value: big.ms, unit: "ms", goal: "≤ 1 s", note: big.error ?? "14 fileservers, 8 trunks each" },
    { name: "plan 10,000 Pis on 105 shelves: heap grown by one plan", value: big.heapMiB, unit: "MiB", goal: "≤ 64 MiB", note: "process heapUsed before/after, no GC forced" },
  );
  return rows;
}
